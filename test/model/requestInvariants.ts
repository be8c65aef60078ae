// The invariants of requests in the model (SPEC 3.1, 5, 9): pure checks over
// one request a tool sent while the topology changed, once it has settled —
// what it asked, when, which node gathered it and with which view, and what came
// back. Each failure is an InvariantViolation naming the invariant.

import { ALL, type Rply, rcode, rplySchema } from "../../protocol/messages.js";
import { NoRespondersError, TimeoutError } from "../../transport/errors.js";
import { InvariantViolation } from "./invariants.js";

/** The request types the model sends: reads and idempotent-or-refused writes, none that leaves the view. */
export const MODEL_REQUEST_TYPES = ["GETDVSINFO", "GETNODEINFO", "DVSINIT", "DCINIT", "ADDNODE"] as const;
export type ModelRequestType = (typeof MODEL_REQUEST_TYPES)[number];

/** One request as a command describes it. */
export interface RequestSpec {
  readonly type: ModelRequestType;
  readonly params: Readonly<Record<string, unknown>>;
  readonly dst: number | typeof ALL;
  /** A unicast sent through the cluster's queue subject (any node takes it and forwards it). */
  readonly viaAnyNode: boolean;
  /** The RQST `timeout`; the node's default when absent. */
  readonly timeoutMs?: number;
}

/**
 * How much later than its timeout a reply may come: a few hops of simulated
 * latency (1–3 ms each: tool → node, node → members, members → node, node →
 * tool, or tool → node → forwarded node and back), with room to spare.
 */
export const REPLY_SLACK_MS = 100;
/** In a quiet cluster every member answers at once: an answer takes a few hops, far below any timeout. */
export const QUIET_REPLY_MS = 50;

/** Where a node gathered an ALL request: when, the members of its view and the nodes it knew at that moment. */
export interface Take {
  readonly node: number;
  readonly at: number;
  readonly view: readonly number[];
  /** Every node of the gatherer's views that had not left on purpose (ReplicationServer.knownNodes). */
  readonly known: readonly number[];
}

export type Outcome =
  | { readonly kind: "reply"; readonly rply: Rply }
  | { readonly kind: "error"; readonly error: unknown };

/** A request that has settled, with what the harness knew about the cluster while it was in flight. */
export interface SettledRequest {
  /** Position among the tool's requests (each sent by its own client, as RQST seq 1). */
  readonly seq: number;
  readonly spec: RequestSpec;
  /** The timeout in force: the RQST's, else the node default. */
  readonly timeoutMs: number;
  readonly issuedAt: number;
  readonly settledAt: number;
  readonly outcome: Outcome;
  /** Every gather of this request recorded on the nodes (ALL requests: exactly one when it was answered). */
  readonly takes: readonly Take[];
  /** Nodes that forwarded it (a unicast through the queue subject, a GETNODEINFO about another node). */
  readonly forwards: readonly { readonly node: number; readonly at: number }[];
  /** Node ids that had a running incarnation at some point while the request was in flight. */
  readonly ran: ReadonlySet<number>;
  /** Why losing this request is acceptable (a crash, a cut, no node to take it); undefined when it is owed a reply. */
  readonly lostExcuse: string | undefined;
  /**
   * The topology had been still for the stabilisation bound when the request
   * was sent and stayed so until it settled: the connected components, to
   * check the reply against; undefined otherwise.
   */
  readonly quietComponents: readonly (readonly number[])[] | undefined;
}

/** Each request has a client of its own, whose first request is seq 1. */
const RQST_SEQ = 1;
const ETIMEDOUT = rcode("ETIMEDOUT");
const EHOSTDOWN = rcode("EHOSTDOWN");

export const describeSpec = (s: RequestSpec): string =>
  `${s.type} ${JSON.stringify(s.params)} → ${s.dst === ALL ? "ALL" : `n${s.dst}${s.viaAnyNode ? " via any node" : ""}`}${
    s.timeoutMs === undefined ? "" : ` (timeout ${s.timeoutMs})`
  }`;

export const describeEntries = (entries: readonly Rply[]): string =>
  entries.map((e) => `${e.src}:${rcodeLabel(e.rcode)}`).join(" ");

export const rcodeLabel = (code: number): string =>
  code === ETIMEDOUT ? "ETIMEDOUT" : code === EHOSTDOWN ? "EHOSTDOWN" : String(code);

const sameList = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((n, i) => n === b[i]);

const sorted = (list: readonly number[]) => [...list].sort((a, b) => a - b);

/** Checks one settled request, sent by client `clientId` as its only one (seq 1); throws the first InvariantViolation. */
export function checkSettled(r: SettledRequest, clientId: string): void {
  const fail = (invariant: string, why: string): never => {
    throw new InvariantViolation(
      invariant,
      `${why}\n  request #${r.seq} ${describeSpec(r.spec)} sent at t=${r.issuedAt}, settled at t=${r.settledAt}`,
    );
  };
  if (r.takes.length > 1) {
    fail("a request is gathered by one node", `gathered by ${r.takes.map((t) => `n${t.node}`).join(", ")}`);
  }
  if (r.outcome.kind === "error") {
    checkLost(r, r.outcome.error, fail);
    return;
  }
  const rply = r.outcome.rply;
  if (rply.seq !== RQST_SEQ || rply.dst !== clientId || rply.type !== r.spec.type) {
    fail(
      "a reply answers its request",
      `reply seq ${rply.seq} dst ${rply.dst} type ${rply.type}, request seq ${RQST_SEQ} from ${clientId}`,
    );
  }
  const elapsed = r.settledAt - r.issuedAt;
  if (r.spec.dst === ALL) checkAllReply(r, rply, clientId, fail);
  else checkUnicastReply(r, rply, fail);
  if (r.quietComponents !== undefined) {
    const entries = r.spec.dst === ALL ? (rply.data as Rply[]) : [rply];
    const timedOut = entries.filter((e) => e.rcode === ETIMEDOUT);
    if (rply.rcode === ETIMEDOUT || timedOut.length > 0) {
      fail(
        "in a quiet cluster every member answers before the timeout",
        `ETIMEDOUT from ${timedOut.map((e) => `n${e.src}`).join(", ") || `n${rply.src}`}`,
      );
    }
    if (elapsed > QUIET_REPLY_MS) {
      fail("in a quiet cluster nobody waits for a timeout", `answered after ${elapsed} ms`);
    }
  }
}

function checkLost(r: SettledRequest, error: unknown, fail: (invariant: string, why: string) => never): void {
  if (!(error instanceof TimeoutError) && !(error instanceof NoRespondersError)) {
    fail("a request ends in a reply, a timeout or no responders", `it failed with ${String(error)}`);
  }
  if (r.lostExcuse === undefined) {
    const held = [
      ...r.takes.map((t) => `gathered by n${t.node} at t=${t.at} with view [${t.view.join(",")}]`),
      ...r.forwards.map((f) => `forwarded by n${f.node} at t=${f.at}`),
    ];
    fail(
      "every request gets a reply within its timeout and slack",
      `no reply within ${r.timeoutMs} + ${REPLY_SLACK_MS} ms (${(error as Error).name}); ${
        held.length ? held.join("; ") : "no node gathered or forwarded it"
      }; nothing excuses it (no crash, cut or stop of a node that had to answer)`,
    );
  }
}

function checkAllReply(
  r: SettledRequest,
  rply: Rply,
  clientId: string,
  fail: (invariant: string, why: string) => never,
): void {
  const data = rply.data;
  if (!Array.isArray(data) || rply.count !== data.length) {
    fail("an ALL reply holds one RPLY per member", `count ${rply.count}, data ${JSON.stringify(data)}`);
  }
  const entries = data as unknown[];
  const parsed: Rply[] = [];
  for (const entry of entries) {
    const result = rplySchema.safeParse(entry);
    if (!result.success) fail("an ALL reply holds one RPLY per member", `entry ${JSON.stringify(entry)}`);
    else parsed.push(result.data);
  }
  for (const e of parsed) {
    if (e.seq !== RQST_SEQ || e.dst !== clientId || e.type !== r.spec.type) {
      fail(
        "every entry of an ALL reply answers the request",
        `entry from ${e.src} has seq ${e.seq} dst ${e.dst} type ${e.type}, request seq ${RQST_SEQ}`,
      );
    }
  }
  const srcs = parsed.map((e) => e.src);
  if (!srcs.every((s): s is number => typeof s === "number")) {
    fail("entries of an ALL reply come from nodes", `sources ${JSON.stringify(srcs)}`);
  }
  const nodes = srcs as number[];
  for (let i = 1; i < nodes.length; i++) {
    if (nodes[i - 1]! >= nodes[i]!) {
      fail("an ALL reply has one entry per member, in view order", `sources [${nodes.join(",")}]`);
    }
  }
  const take = r.takes[0];
  if (take === undefined || take.node !== rply.src) {
    fail(
      "an ALL reply comes from the node that gathered it",
      `reply from n${rply.src}, gathered by ${take ? `n${take.node}` : "no node"}`,
    );
  }
  const view = sorted(take.view);
  if (!view.includes(take.node)) {
    fail(
      "the gathering node is a member of its own view",
      `n${take.node} gathered with view [${view.join(",")}]`,
    );
  }
  const named = sorted([...new Set([...view, ...take.known])]);
  if (!sameList(nodes, named)) {
    fail(
      "an ALL reply has exactly one entry per member of the gathering node's view and per node it knows",
      `entries [${nodes.join(",")}], n${take.node}'s view at t=${take.at} was [${view.join(",")}], known [${take.known.join(",")}]`,
    );
  }
  for (const e of parsed) {
    if (!view.includes(e.src as number) && e.rcode !== EHOSTDOWN) {
      fail(
        "a known node out of the gathering node's view is named EHOSTDOWN",
        `n${e.src} answered ${rcodeLabel(e.rcode)} though out of n${take.node}'s view [${view.join(",")}]`,
      );
    }
  }
  const firstError = parsed.find((e) => e.rcode < 0)?.rcode ?? 0;
  if (rply.rcode !== firstError) {
    fail(
      "an ALL reply's rcode is 0 or its first entry's error",
      `rcode ${rply.rcode}: ${describeEntries(parsed)}`,
    );
  }
  for (const e of parsed) {
    if (
      e.rcode === ETIMEDOUT &&
      (r.settledAt - take.at < r.timeoutMs || r.settledAt - r.issuedAt < r.timeoutMs)
    ) {
      fail(
        "an ETIMEDOUT entry only after the timeout",
        `n${e.src} ETIMEDOUT in a reply ${r.settledAt - take.at} ms after the gather began (timeout ${r.timeoutMs})`,
      );
    }
    if (e.rcode >= 0 && !r.ran.has(e.src as number)) {
      fail(
        "an answer in an ALL reply comes from a running node",
        `n${e.src} answered ${e.rcode} but never ran`,
      );
    }
  }
  if (r.quietComponents !== undefined) {
    const component = r.quietComponents.find((c) => c.includes(take.node)) ?? [];
    const members = parsed.filter((e) => e.rcode !== EHOSTDOWN || view.includes(e.src as number));
    if (
      !sameList(
        members.map((e) => e.src as number),
        sorted(component),
      )
    ) {
      fail(
        "in a quiet cluster an ALL reply covers exactly the gathering node's component, and names the rest EHOSTDOWN",
        `entries [${describeEntries(parsed)}], component [${sorted(component).join(",")}]`,
      );
    }
    const forwarded = r.spec.type === "GETNODEINFO" && r.spec.params.nodeid !== undefined;
    const down = members.filter((e) => e.rcode === EHOSTDOWN);
    if (!forwarded && down.length > 0) {
      fail(
        "in a quiet cluster no member leaves the view during a gather",
        `EHOSTDOWN from ${down.map((e) => `n${e.src}`).join(", ")}`,
      );
    }
  }
}

function checkUnicastReply(
  r: SettledRequest,
  rply: Rply,
  fail: (invariant: string, why: string) => never,
): void {
  const dst = r.spec.dst as number;
  // Through the queue subject the taking node answers for a destination it cannot reach.
  const takerError = r.spec.viaAnyNode && (rply.rcode === ETIMEDOUT || rply.rcode === EHOSTDOWN);
  if (rply.src !== dst && !takerError) {
    fail("a unicast reply comes from its destination", `reply from n${rply.src} (rcode ${rply.rcode})`);
  }
  if (rply.rcode === ETIMEDOUT && r.settledAt - r.issuedAt < r.timeoutMs) {
    fail(
      "an ETIMEDOUT reply only after the timeout",
      `ETIMEDOUT ${r.settledAt - r.issuedAt} ms after the request (timeout ${r.timeoutMs})`,
    );
  }
  if (r.spec.type === "GETNODEINFO" && rply.rcode === 0) {
    const want = (r.spec.params.nodeid as number | undefined) ?? dst;
    const got = (rply.data as { nodeid?: unknown } | null)?.nodeid;
    if (got !== want)
      fail("GETNODEINFO describes the node asked about", `asked about n${want}, got ${String(got)}`);
  }
}
