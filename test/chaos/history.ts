// What the chaos run recorded (every client operation with its outcome, every
// view a node announced, every settle check) and the pure checks over it
// (SPEC 9): one view and one coordinator after each heal, no acknowledged file
// version lost or read back older, every ALL reply accounts for its view, every
// acknowledged action in the action log, no daemon crashed.

import { rcode } from "../../protocol/messages.js";

/** ms since the run started (performance.now() based). */
export type Ms = number;

export type Outcome<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: string };

export interface AllOp {
  readonly kind: "all";
  readonly id: number;
  readonly client: number;
  readonly type: string;
  readonly issuedAt: Ms;
  readonly settledAt: Ms;
  readonly outcome: Outcome<{
    /** The node that gathered the answers. */
    readonly src: number;
    readonly count: number;
    readonly entries: readonly { readonly src: number | string; readonly rcode: number }[];
    readonly action?: string;
  }>;
}

export interface CommitOp {
  readonly kind: "commit";
  readonly id: number;
  readonly name: string;
  readonly sha256: string;
  readonly issuedAt: Ms;
  readonly settledAt: Ms;
  readonly outcome: Outcome<{ readonly version: number; readonly holders: readonly number[] }>;
}

export interface UpdateOp {
  readonly kind: "update";
  readonly id: number;
  readonly name: string;
  readonly issuedAt: Ms;
  readonly settledAt: Ms;
  readonly outcome: Outcome<{ readonly version: number; readonly sha256: string }>;
}

export interface WhoOp {
  readonly kind: "who";
  readonly id: number;
  /** The node whose registry was asked. */
  readonly node: number;
  readonly issuedAt: Ms;
  readonly settledAt: Ms;
  readonly outcome: Outcome<{ readonly coordinator: number; readonly epoch: number } | "NOTHING">;
}

export type Op = AllOp | CommitOp | UpdateOp | WhoOp;

/** A view a node announced (a membership event), as a watcher received it. */
export interface ViewSeen {
  readonly node: number;
  /** The announcing node's incarnation: a new one starts from a view of itself alone. */
  readonly incarnation: number;
  readonly members: readonly number[];
  readonly at: Ms;
}

export interface SettleCheck {
  readonly episode: number;
  readonly kind: string;
  readonly fault: string;
  /** When the fault was applied and healed (ms since the run started). */
  readonly appliedAt: Ms;
  readonly healedAt: Ms;
  /** From the heal to one view of every node and one coordinator; undefined when the bound ran out. */
  readonly settledMs: number | undefined;
  /** From the heal to one view of every node (the coordinator may come later); undefined if never. */
  readonly viewMs: number | undefined;
  /**
   * From the heal to the registry's KV stream having a leader and every
   * replica current (nats-server's part of the settle time); undefined if not
   * seen before the settle ended.
   */
  readonly streamMs?: number | undefined;
  /** The stream's leader and replicas as last sampled. */
  readonly stream?: string;
  readonly boundMs: number;
  /**
   * Between one view and one coordinator: each different set of WHO answers
   * seen, with when (ms after the heal), e.g. `1240 ms: 1→NOTHING 2→3@7 …`.
   */
  readonly whoTrail?: readonly string[];
  /** What was seen last when it did not settle. */
  readonly last: string;
}

export interface Violation {
  readonly check:
    | "settle"
    | "file-lost"
    | "file-older"
    | "file-order"
    | "all-view"
    | "action-lost"
    | "replica-desync"
    | "coordinator"
    | "crash";
  readonly message: string;
}

const EHOSTDOWN = rcode("EHOSTDOWN");

/** How far a watcher's receipt of a view may lag the gather that used it. */
export const VIEW_SLACK_MS = 1_000;

export function checkSettles(settles: readonly SettleCheck[]): Violation[] {
  return settles
    .filter((s) => s.settledMs === undefined)
    .map((s) => ({
      check: "settle" as const,
      message: `episode ${s.episode} (${s.fault}): no single view and coordinator within ${s.boundMs} ms after the heal; last: ${s.last}`,
    }));
}

/**
 * No acknowledged version lost or read back older: an UPDATE issued after a
 * COMMIT's SUCCESS returns that version or a newer one, with the bytes of the
 * version it names; two SUCCESSes never name one version with other bytes.
 * `final` is the newest version of each file read after the last heal.
 */
export function checkFiles(
  ops: readonly Op[],
  final: ReadonlyMap<string, Outcome<{ version: number; sha256: string }>>,
  attempted: ReadonlyMap<string, ReadonlySet<string>>,
): Violation[] {
  const violations: Violation[] = [];
  const acked = ops.filter(
    (o): o is CommitOp & { outcome: { ok: true } } => o.kind === "commit" && o.outcome.ok,
  );
  const shaOf = new Map<string, string>();
  for (const c of acked) {
    const key = `${c.name}@${c.outcome.value.version}`;
    const seen = shaOf.get(key);
    if (seen !== undefined && seen !== c.sha256) {
      violations.push({
        check: "file-order",
        message: `${c.name} version ${c.outcome.value.version} acknowledged for two contents (${seen.slice(0, 12)}…, ${c.sha256.slice(0, 12)}…)`,
      });
    }
    shaOf.set(key, c.sha256);
  }
  const newestAckedBefore = (name: string, at: Ms) => {
    let best: CommitOp | undefined;
    for (const c of acked) {
      if (c.name !== name || c.settledAt >= at) continue;
      if (!best || (c.outcome.ok && best.outcome.ok && c.outcome.value.version > best.outcome.value.version))
        best = c;
    }
    return best?.outcome.ok ? best.outcome.value.version : 0;
  };
  const readBack = (what: string, name: string, at: Ms, version: number, sha256: string) => {
    const floor = newestAckedBefore(name, at);
    if (version < floor) {
      violations.push({
        check: "file-older",
        message: `${what} of ${name} returned version ${version}, older than version ${floor} acknowledged before it began`,
      });
    }
    const expected = shaOf.get(`${name}@${version}`);
    if ((expected !== undefined && expected !== sha256) || !(attempted.get(name)?.has(sha256) ?? false)) {
      violations.push({
        check: "file-lost",
        message: `${what} of ${name} version ${version} returned bytes ${sha256.slice(0, 12)}… that no commit of that version sent`,
      });
    }
  };
  for (const u of ops) {
    if (u.kind !== "update" || !u.outcome.ok) continue;
    readBack(`UPDATE #${u.id}`, u.name, u.issuedAt, u.outcome.value.version, u.outcome.value.sha256);
  }
  const names = new Set(acked.map((c) => c.name));
  for (const name of names) {
    const got = final.get(name);
    if (!got?.ok) {
      violations.push({
        check: "file-lost",
        message: `${name}: the final UPDATE after the last heal failed (${got ? got.error : "not read"}), though versions of it were acknowledged`,
      });
      continue;
    }
    readBack("the final UPDATE", name, Number.POSITIVE_INFINITY, got.value.version, got.value.sha256);
  }
  return violations;
}

/**
 * The views `node` held around [from, to]: the last one it announced before
 * `from - slack` (or `initial`), and every one announced up to `to + slack`;
 * a new incarnation announced in that window also held the view of itself
 * alone before it heard from the others.
 */
export function viewsAround(
  views: readonly ViewSeen[],
  node: number,
  from: Ms,
  to: Ms,
  initial: readonly number[],
): (readonly number[])[] {
  const mine = views.filter((v) => v.node === node).sort((a, b) => a.at - b.at);
  let before: readonly number[] = initial;
  let incarnation: number | undefined;
  const during: (readonly number[])[] = [];
  for (const v of mine) {
    const fresh = incarnation !== undefined && v.incarnation > incarnation;
    incarnation = Math.max(incarnation ?? v.incarnation, v.incarnation);
    if (v.at < from - VIEW_SLACK_MS) before = v.members;
    else if (v.at <= to + VIEW_SLACK_MS) {
      if (fresh) during.push([node]);
      during.push(v.members);
    }
  }
  return [before, ...during];
}

/**
 * Every ALL reply accounts for its view: one entry per member of a view the
 * gathering node held while the request was in flight, no member twice, the
 * gatherer among them, `count` equal to the entries.
 */
export function checkAllReplies(
  ops: readonly Op[],
  views: readonly ViewSeen[],
  initial: readonly number[],
): Violation[] {
  const violations: Violation[] = [];
  for (const op of ops) {
    if (op.kind !== "all" || !op.outcome.ok) continue;
    const { src, count, entries } = op.outcome.value;
    const srcs = entries.map((e) => e.src);
    const bad = (why: string) =>
      violations.push({
        check: "all-view",
        message: `ALL ${op.type} #${op.id} gathered by node ${src}: ${why}`,
      });
    if (count !== entries.length) bad(`count ${count} but ${entries.length} entries`);
    if (new Set(srcs).size !== srcs.length) bad(`a member answered twice: [${srcs.join(", ")}]`);
    if (!srcs.includes(src)) bad(`the gatherer is not among the entries [${srcs.join(", ")}]`);
    const got = [...srcs].map(Number).sort((a, b) => a - b);
    const candidates = viewsAround(views, src, op.issuedAt, op.settledAt, initial);
    // One entry per member of a view, and any other entry a known node out of that view: EHOSTDOWN.
    const down = new Set(entries.filter((e) => e.rcode === EHOSTDOWN).map((e) => Number(e.src)));
    const matches = candidates.some(
      (v) => v.every((m) => got.includes(m)) && got.every((n) => v.includes(n) || down.has(n)),
    );
    if (!matches) {
      bad(
        `entries [${entries.map((e) => `${e.src}:${e.rcode}`).join(", ")}] match none of its views while in flight: ${candidates.map((v) => `[${[...v].join(", ")}]`).join(" ")}`,
      );
    }
  }
  return violations;
}

/** How many of the action log's replicas hold an action's request record, and its outcome. */
export interface ActionHeld {
  readonly request: number;
  readonly outcome: number;
}

/**
 * Every action a reply named is in the action log with its outcome, on every
 * replica of the stream (each read while it was the stream's leader). On a
 * majority but not all is `replica-desync`: JetStream acknowledged the write,
 * then a replica kept another record at its sequence (a nats-server defect the
 * run reports apart: whenever that replica leads, the action is missing). On
 * no majority, the acknowledged action is lost.
 */
export function checkActions(
  ops: readonly Op[],
  held: ReadonlyMap<string, ActionHeld>,
  replicas: number,
): Violation[] {
  const violations: Violation[] = [];
  const majority = Math.floor(replicas / 2) + 1;
  for (const op of ops) {
    if (op.kind !== "all" || !op.outcome.ok || op.outcome.value.action === undefined) continue;
    const action = op.outcome.value.action;
    const h = held.get(action) ?? { request: 0, outcome: 0 };
    const on = Math.min(h.request, h.outcome);
    if (on >= replicas) continue;
    const what = `action ${action} (ALL ${op.type} #${op.id}) was answered`;
    const where = `its request is on ${h.request} of ${replicas} replicas, its outcome on ${h.outcome}`;
    violations.push(
      on >= majority
        ? {
            check: "replica-desync",
            message: `${what}; ${where}: a replica diverged after JetStream acknowledged it`,
          }
        : { check: "action-lost", message: `${what} but is not in the action log: ${where}` },
    );
  }
  return violations;
}

/** At most one coordinator per epoch: two WHO answers naming one epoch name one node. */
export function checkCoordinators(ops: readonly Op[]): Violation[] {
  const byEpoch = new Map<number, { coordinator: number; id: number }>();
  const violations: Violation[] = [];
  for (const op of ops) {
    if (op.kind !== "who" || !op.outcome.ok || op.outcome.value === "NOTHING") continue;
    const { coordinator, epoch } = op.outcome.value;
    const seen = byEpoch.get(epoch);
    if (seen && seen.coordinator !== coordinator) {
      violations.push({
        check: "coordinator",
        message: `epoch ${epoch} named node ${seen.coordinator} (WHO #${seen.id}) and node ${coordinator} (WHO #${op.id})`,
      });
    }
    if (!seen) byEpoch.set(epoch, { coordinator, id: op.id });
  }
  return violations;
}

/**
 * A daemon's output shows a crash: a fatal log line, or text that is not a
 * pino line (an uncaught exception's stack goes to stderr as plain text).
 */
export function crashLines(output: string): string[] {
  const found: string[] = [];
  for (const line of output.split("\n")) {
    const text = line.trim();
    if (text === "") continue;
    if (!text.startsWith("{")) {
      found.push(text);
      continue;
    }
    try {
      const parsed = JSON.parse(text) as { level?: number; msg?: string };
      if ((parsed.level ?? 0) >= 60) found.push(text);
    } catch {
      found.push(text);
    }
  }
  return found;
}
