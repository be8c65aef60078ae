// A running node under bad input (SPEC 3.2: "malformed input of any kind gets
// an EBADMSG reply ... and never crashes or wedges the node"). One `dvsd run`
// on a nats-server of this file's own gets at least 100,000 seeded random and
// mutated messages (test/support/fuzz.ts) on every public subject and on the
// internal ones an admin may publish to, pipelined from an admin and a viewer
// connection. The node must stay up, answer every request subject exactly once
// with the RPLY the codec makes of the bytes, keep its memory bounded, and
// leave an action log whose every record still validates. Being the only
// server, the node is also the file store's coordinator: every message on the
// file subjects gets one file store answer (EBADMSG for a malformed one).
//
// DVS_FUZZ_MESSAGES sets the count (default 100,000), DVS_FUZZ_SEED the seed;
// a failure names the seed and the case index, which reproduce it.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type Msg, type NatsConnection, headers as natsHeaders } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEV_USERS } from "../../client/credentials.js";
import { decode, type Encoding, encode, encodingOf, parseRply } from "../../protocol/codec.js";
import { fileAnswerSchema, peerFileAnswerSchema } from "../../protocol/files.js";
import { heartbeatSchema, probeReplySchema } from "../../protocol/membershipMessages.js";
import {
  actionIdSchema,
  errorName,
  MUTATING_TYPES,
  nodeStatusSchema,
  PROTOCOL_VERSION,
  type Rply,
  rcode,
  registryAnswerSchema,
  type ServerMessage,
  serverMessageSchema,
} from "../../protocol/messages.js";
import { migrationReplySchema } from "../../protocol/processes.js";
import { subjects } from "../../protocol/subjects.js";
import type { ActionRecord, ActionSummary } from "../../transport/actionLog.js";
import { actionStreamName, JetStreamActionLog } from "../../transport/actionLogJetStream.js";
import { randomToken, seededRandom, sleep, systemClock } from "../../transport/clock.js";
import { isAlive, requireBuild } from "../support/cli.js";
import { DvsdNode } from "../support/dvsdProcess.js";
import {
  describeCase,
  FUZZ_FAMILIES,
  type FuzzCase,
  type FuzzFamily,
  type FuzzUser,
  fuzzCases,
  harmless,
} from "../support/fuzz.js";
import { startTestNatsServer, type TestNatsServer } from "../support/natsServer.js";

const CLUSTER = "dvs";
const NODE = 1;
const MESSAGES = Number(process.env.DVS_FUZZ_MESSAGES ?? 100_000);
const SEED = Number(process.env.DVS_FUZZ_SEED ?? 0x5eed_f022);
/** Replies awaited at once, and bytes published but not yet answered. */
const WINDOW = 64;
const MAX_BYTES_IN_FLIGHT = 16 * 1024 * 1024;
/** Every answer must come within this; they take tens of milliseconds here (queued behind the window). */
const REPLY_DEADLINE_MS = 15_000;
/**
 * Bounds on the node's resident memory. Measured on a 2-core machine: max 230-256 MB and 50-70 MB
 * of growth after the first 10% for 100,000 messages; max 233 MB and 17 MB for 300,000.
 */
const RSS_MAX_MB = 400;
const RSS_GROWTH_MB = 150;
const RSS_EVERY_MS = 500;
/** membership.unreachableAfterMissed × heartbeatMs (defaults): a longer silence is a PARTITION to peers. */
const HEARTBEAT_GAP_MS = 1_000;
/** Bad input is logged at most once per 10 s per kind (throttledWarn), with a little room for several kinds. */
const LOG_LINES_PER_10S = 5;
/** Refused host-changing requests are logged every time on purpose: an audit trail, not a flood. */
const AUDITED = ["KILL refused", "COMMAND refused"];
/**
 * About 120-125 s for 100,000 messages on a 2-core machine with the node's memory-saving V8 flags
 * (daemon/nodeFlags.ts: about 1.6× slower on this flood than V8's defaults); the rest is margin.
 */
const TEST_TIMEOUT_MS = 30_000 + MESSAGES * 2.4;
/** nats.conf's max_payload: a reply of the node must fit in it. */
const MAX_PAYLOAD = 1024 * 1024;

/** A change of the node's term this close to a gap on a file store subject explains it (ALIVE comes every second). */
const TERM_MARGIN_MS = 2_000;

const dvs = subjects(CLUSTER);
const dir = mkdtempSync(join(tmpdir(), "dvs-fuzz-"));
let server: TestNatsServer;
let node: DvsdNode;
const conns = {} as Record<FuzzUser, NatsConnection>;

/**
 * The node's coordinator terms as this test saw them on `_srv.all`, each
 * change kept with `performance.now()`: its ALIVE (every STATUS period) names
 * whom it takes for the coordinator, ELECTION says it lost its term, ELECTED
 * and STATUS that it holds one, with its epoch. The file store's client
 * subjects have a responder only while the node holds a term. (Not the
 * COORDINATOR events: a subscription on the events subject would answer the
 * fuzz's requests there, which must find no responders.)
 */
const terms: { at: number; epoch: number; mine: boolean }[] = [];

function observeTerm(m: ServerMessage): void {
  if (m.from !== NODE) return;
  let mine: boolean;
  if (m.type === "ALIVE") mine = m.coordinator === NODE;
  else if (m.type === "ELECTED" || m.type === "STATUS") mine = true;
  else if (m.type === "ELECTION") mine = false;
  else return;
  const last = terms.at(-1);
  if (last?.mine !== mine || last.epoch !== m.epoch)
    terms.push({ at: performance.now(), epoch: m.epoch, mine });
}

/**
 * Whether the node's terms explain a gap (no responders, or a message its
 * subscription dropped) on the coordinator's subjects at `at`: it held no term
 * then, or its term changed within TERM_MARGIN_MS. Asked once the run is over,
 * so that changes seen after the gap count too.
 */
function termGap(at: number): boolean {
  const before = terms.filter((t) => t.at <= at).at(-1);
  if (before === undefined || !before.mine) return true;
  return terms.slice(1).some((t) => Math.abs(t.at - at) <= TERM_MARGIN_MS);
}

/** The node's resident set size, sampled from /proc while the fuzz runs; a failed reading means it is gone. */
class RssSampler {
  readonly samples: { at: number; mb: number }[] = [];
  /** Samplings that found no process. */
  missed = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(readonly pid: number) {}

  read(): number {
    const status = readFileSync(`/proc/${this.pid}/status`, "utf8");
    const kb = Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1]);
    return kb / 1024;
  }

  start(): void {
    const sample = () => {
      try {
        this.samples.push({ at: performance.now(), mb: this.read() });
      } catch {
        this.missed++;
      }
    };
    sample();
    this.#timer = setInterval(sample, RSS_EVERY_MS);
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  get max(): number {
    return Math.max(...this.samples.map((s) => s.mb));
  }
}

/**
 * The gaps between the node's own heartbeats as seen here: a node whose event
 * loop the input blocks stops heartbeating, and its peers would declare it
 * unreachable after `unreachableAfterMissed` (5) heartbeats, 1 s. An upper
 * bound: this process's own delays count too.
 */
class HeartbeatWatch {
  maxGapMs = 0;
  beats = 0;
  #last: number | undefined;

  constructor(nc: NatsConnection) {
    nc.subscribe(dvs.heartbeat(NODE), {
      callback: (_err, msg) => {
        const decoded = decode(msg.data, "cbor", MAX_PAYLOAD);
        const hb = decoded.ok ? heartbeatSchema.safeParse(decoded.value) : undefined;
        // The fuzz sends garbage here too: only the node's real heartbeats count.
        if (!hb?.success || hb.data.node !== NODE) return;
        const now = performance.now();
        if (this.#last !== undefined) this.maxGapMs = Math.max(this.maxGapMs, now - this.#last);
        this.#last = now;
        this.beats++;
      },
    });
  }
}

/** The node's log lines (pino JSON) by message, with the error-level ones kept. */
function logLines(output: string): { byMsg: Map<string, number>; errors: string[] } {
  const byMsg = new Map<string, number>();
  const errors: string[] = [];
  for (const line of output.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      const entry = JSON.parse(line) as { level?: number; msg?: string };
      const key = `${entry.level}:${entry.msg}`;
      byMsg.set(key, (byMsg.get(key) ?? 0) + 1);
      if ((entry.level ?? 0) >= 50) errors.push(line.slice(0, 600));
    } catch {
      byMsg.set("unparsed", (byMsg.get("unparsed") ?? 0) + 1);
    }
  }
  return { byMsg, errors };
}

interface Pending {
  readonly c: FuzzCase;
  readonly sentAt: number;
}

/** What one fuzz run saw. */
interface Run {
  sent: number;
  tracked: number;
  answered: number;
  bytes: number;
  seconds: number;
  families: Record<FuzzFamily, number>;
  rcodes: Record<string, number>;
  byRole: Record<string, number>;
  byUser: Record<FuzzUser, number>;
  failures: Map<string, { count: number; examples: string[] }>;
  failureCount: number;
  unexpectedReplies: number;
  duplicateReplies: number;
  permissionErrors: string[];
  eperm: { sent: number; refused: number };
  /** Actions the node answered under an id, to find in the log afterwards. */
  actions: { action: string; type: string; seq: number; rcode: number; mutating: boolean; sent?: string }[];
  rss: { start: number; early: number; max: number; end: number; samples: number; missed: number };
  heartbeat: { beats: number; maxGapMs: number };
  /** Time replies took, by request type (or family for what does not parse): where the run's time goes. */
  latency: Map<string, { count: number; totalMs: number; maxMs: number }>;
  /**
   * The file store's answers by type (or error); its gaps on the coordinator's subjects (no
   * responders, no answer), judged once the run is over, and how many a change of term explained.
   */
  files: {
    answers: Record<string, number>;
    gaps: { c: FuzzCase; at: number; kind: "no-responders" | "no-answer" }[];
    explained: { "no-responders": number; "no-answer": number };
  };
}

/** Sends the cases with a window of replies in flight and checks each answer as it comes. */
async function runFuzz(pidMax: number, knownAction: string): Promise<Run> {
  const run: Run = {
    sent: 0,
    tracked: 0,
    answered: 0,
    bytes: 0,
    seconds: 0,
    families: Object.fromEntries(FUZZ_FAMILIES.map((f) => [f, 0])) as Record<FuzzFamily, number>,
    rcodes: {},
    byRole: {},
    byUser: { admin: 0, viewer: 0 },
    failures: new Map(),
    failureCount: 0,
    unexpectedReplies: 0,
    duplicateReplies: 0,
    permissionErrors: [],
    eperm: { sent: 0, refused: 0 },
    actions: [],
    rss: { start: 0, early: 0, max: 0, end: 0, samples: 0, missed: 0 },
    heartbeat: { beats: 0, maxGapMs: 0 },
    latency: new Map(),
    files: { answers: {}, gaps: [], explained: { "no-responders": 0, "no-answer": 0 } },
  };
  /** Failures grouped by kind, with the first few cases of each (enough to send them again). */
  const fail = (c: FuzzCase, kind: string, why: string) => {
    run.failureCount++;
    const group = run.failures.get(kind) ?? { count: 0, examples: [] };
    group.count++;
    if (group.examples.length < 3) group.examples.push(`${why}\n      seed=${SEED} ${describeCase(c)}`);
    run.failures.set(kind, group);
  };
  // One inbox per connection: a subscription on both would see every reply twice.
  const token = randomToken(seededRandom(SEED), 10);
  const inboxOf = (user: FuzzUser) => `_INBOX.${user}.fuzz.${token}.`;
  const pending = new Map<number, Pending>();
  const replied = new Uint8Array(MESSAGES);
  let inflightBytes = 0;
  let wake: (() => void) | undefined;
  const release = (index: number) => {
    const p = pending.get(index);
    if (!p) return undefined;
    pending.delete(index);
    inflightBytes -= p.c.payload.byteLength;
    wake?.();
    return p;
  };

  const onReply = (msg: Msg) => {
    const index = Number(msg.subject.slice(msg.subject.lastIndexOf(".") + 1));
    // nats-server's own "no responders" status (503, no payload) to a subject
    // nobody listens on — a heartbeat subject no observer watches — is not a
    // node's answer.
    if (msg.data.byteLength === 0 && msg.headers?.code === 503 && !pending.has(index)) return;
    const p = release(index);
    if (!p) {
      if (replied[index]) run.duplicateReplies++;
      else run.unexpectedReplies++;
      return;
    }
    replied[index] = 1;
    run.answered++;
    const kind = p.c.verdict?.ok ? p.c.verdict.type : p.c.family;
    const ms = performance.now() - p.sentAt;
    const latency = run.latency.get(kind) ?? { count: 0, totalMs: 0, maxMs: 0 };
    latency.count++;
    latency.totalMs += ms;
    latency.maxMs = Math.max(latency.maxMs, ms);
    run.latency.set(kind, latency);
    check(p, msg);
  };

  /** One file store answer, in the encoding asked; EBADMSG for what the node cannot read as its message. */
  const checkFileAnswer = (c: FuzzCase, sentAt: number, msg: Msg, noResponders: boolean) => {
    if (noResponders) {
      if (c.subject === dvs.fileRead(NODE))
        fail(c, "files-no-responders", `no responders on ${c.subject}: the holder does not serve READ`);
      else run.files.gaps.push({ c, at: sentAt, kind: "no-responders" });
      return;
    }
    const asked = encodingOf({ headers: c.headers ? { ...c.headers } : undefined });
    const answeredIn = encodingOf({
      headers: msg.headers ? { "Content-Type": msg.headers.get("Content-Type") } : undefined,
    });
    const decoded = decode(msg.data, answeredIn, MAX_PAYLOAD);
    const parsed = decoded.ok ? fileAnswerSchema.safeParse(decoded.value) : undefined;
    if (!parsed?.success) {
      const why = decoded.ok ? parsed?.error.issues[0]?.message : decoded.message;
      fail(
        c,
        "files-answer",
        `not a file store answer (${why}): ${Buffer.from(msg.data).toString("hex").slice(0, 200)}`,
      );
      return;
    }
    const answer = parsed.data;
    const kind = answer.type === "ERROR" ? answer.error : answer.type;
    run.files.answers[kind] = (run.files.answers[kind] ?? 0) + 1;
    if (answeredIn !== asked) fail(c, "files-encoding", `asked in ${asked}, answered in ${answeredIn}`);
    if (c.fileMessage === "malformed" && kind !== "EBADMSG")
      fail(
        c,
        "files-not-ebadmsg",
        `a malformed file store message was answered ${kind}: ${JSON.stringify(answer).slice(0, 300)}`,
      );
  };

  const check = ({ c, sentAt }: Pending, msg: Msg) => {
    const noResponders = msg.headers?.code === 503;
    switch (c.role) {
      case "files":
        checkFileAnswer(c, sentAt, msg, noResponders);
        return;
      case "file-peer": {
        const decoded = noResponders ? undefined : decode(msg.data, "cbor", MAX_PAYLOAD);
        const answer = decoded?.ok ? peerFileAnswerSchema.safeParse(decoded.value) : undefined;
        if (!answer?.success || answer.data.type !== "ERROR" || answer.data.error !== "EINVAL")
          fail(c, "file-peer", "garbage on a server's file store subject was not answered ERROR EINVAL");
        return;
      }
      case "unserved":
        if (!noResponders) fail(c, "answered-unserved", `expected "no responders" on ${c.subject}`);
        return;
      case "registry": {
        const headers = c.headers ? { ...c.headers } : undefined;
        const answer = noResponders ? undefined : decode(msg.data, encodingOf({ headers }), MAX_PAYLOAD);
        if (!answer?.ok || !registryAnswerSchema.safeParse(answer.value).success)
          fail(c, "registry", "the registry did not answer with OK, NOTHING or ERROR");
        return;
      }
      case "service": {
        const answer = noResponders ? undefined : (msg.json() as { type?: string });
        if (!answer?.type?.startsWith("io.nats.micro.v1."))
          fail(c, "service", "$SRV did not answer as a micro service");
        return;
      }
      case "status": {
        const status = decode(msg.data, "cbor", MAX_PAYLOAD);
        if (!status.ok || nodeStatusSchema.safeParse(status.value).data?.node !== NODE)
          fail(c, "status", "the status answer is not the node's NodeStatus");
        return;
      }
      case "probe": {
        const probe = decode(msg.data, "cbor", MAX_PAYLOAD);
        if (!probe.ok || probeReplySchema.safeParse(probe.value).data?.node !== NODE)
          fail(c, "probe", "the probe answer is not { node, incarnation }");
        return;
      }
      case "migration": {
        const answer = decode(msg.data, "cbor", MAX_PAYLOAD);
        const reply = answer.ok ? migrationReplySchema.safeParse(answer.value) : undefined;
        if (!reply?.success || reply.data.ok)
          fail(c, "migration", "a garbage migration offer was not refused");
        return;
      }
      case "internal":
        return;
      default:
        break;
    }
    if (noResponders) {
      fail(c, "no-responders", `no responders on ${c.subject}: the node does not serve it`);
      return;
    }
    const asked: Encoding = encodingOf({ headers: c.headers ? { ...c.headers } : undefined });
    const answeredIn: Encoding = encodingOf({
      headers: msg.headers ? { "Content-Type": msg.headers.get("Content-Type") } : undefined,
    });
    const parsed = parseRply(msg.data, answeredIn, MAX_PAYLOAD);
    if (!parsed.ok) {
      const raw = decode(msg.data, answeredIn, MAX_PAYLOAD);
      const shown = raw.ok
        ? JSON.stringify(raw.value, (_k, v) => (typeof v === "bigint" ? `${v}n` : v))
        : "?";
      fail(
        c,
        "not-a-rply",
        `the answer is not a valid RPLY (${parsed.message.replace(/\s+/g, " ").slice(0, 200)}): ${shown.slice(0, 300)}`,
      );
      return;
    }
    const rply: Rply = parsed.rply;
    const name = rply.rcode < 0 ? (errorName(rply.rcode) ?? `rcode ${rply.rcode}`) : "OK";
    run.rcodes[name] = (run.rcodes[name] ?? 0) + 1;
    if (answeredIn !== asked) fail(c, "encoding", `asked in ${asked}, answered in ${answeredIn}`);
    if (rply.src !== NODE) fail(c, "src", `answered by ${rply.src}, not node ${NODE}`);
    const verdict = c.verdict;
    if (verdict === undefined) return;
    if (!verdict.ok) {
      if (rply.rcode !== rcode(verdict.error))
        fail(
          c,
          `verdict-${verdict.error}-got-${name}`,
          `the codec says ${verdict.error}, the node answered ${name}: ${JSON.stringify(rply.data).slice(0, 300)}`,
        );
      return;
    }
    if (rply.type !== verdict.type || rply.seq !== verdict.seq)
      fail(
        c,
        "echo",
        `the RPLY names ${rply.type}/${rply.seq}, the request was ${verdict.type}/${verdict.seq}`,
      );
    if (c.mustBe !== undefined) {
      run.eperm.sent++;
      if (rply.rcode === rcode(c.mustBe)) run.eperm.refused++;
      else
        fail(
          c,
          `not-${c.mustBe}`,
          `expected ${c.mustBe}, got ${name}: ${JSON.stringify(rply.data).slice(0, 300)}`,
        );
    } else if (c.role === "readonly-request" && MUTATING_TYPES.has(verdict.type) && rply.rcode >= 0) {
      fail(
        c,
        "readonly-mutation",
        `a mutating ${verdict.type} on a read-only subject succeeded (rcode ${rply.rcode})`,
      );
    }
    if (rply.action !== undefined && rply.action !== knownAction) {
      const mutating = MUTATING_TYPES.has(verdict.type);
      run.actions.push({
        action: rply.action,
        type: verdict.type,
        seq: verdict.seq,
        rcode: rply.rcode,
        mutating,
        // Kept for the changes only (few): enough to send one again.
        ...(mutating && rply.rcode >= 0 ? { sent: `seed=${SEED} ${describeCase(c)}` } : {}),
      });
    }
  };

  for (const user of ["admin", "viewer"] as const) {
    conns[user].subscribe(`${inboxOf(user)}>`, { callback: (_err, msg) => onReply(msg) });
    void (async () => {
      for await (const s of conns[user].status()) {
        if (s.type === "error") run.permissionErrors.push(`${user}: ${String(s.error)}`);
      }
    })();
  }
  await Promise.all([conns.admin.flush(), conns.viewer.flush()]);

  const heartbeats = new HeartbeatWatch(conns.admin);
  const rss = new RssSampler(node.pid);
  rss.start();
  run.rss.start = rss.read();
  const sweeper = setInterval(() => {
    const now = performance.now();
    for (const [index, p] of pending) {
      if (now - p.sentAt < REPLY_DEADLINE_MS) continue;
      release(index);
      // The coordinator's subscriptions go with its term, and what they held is dropped: judged later.
      if (p.c.role === "files" && p.c.subject !== dvs.fileRead(NODE))
        run.files.gaps.push({ c: p.c, at: p.sentAt, kind: "no-answer" });
      else fail(p.c, "no-answer", `no answer within ${REPLY_DEADLINE_MS} ms`);
    }
  }, 1_000);

  const started = performance.now();
  let unflushed = 0;
  try {
    for (const c of fuzzCases({
      seed: SEED,
      count: MESSAGES,
      cluster: CLUSTER,
      node: NODE,
      pidMax,
      knownAction,
    })) {
      // Never send what could harm the host, whatever the generator's own vetting did.
      if (!harmless(c, pidMax)) throw new Error(`refusing to send a harmful case: ${describeCase(c)}`);
      // A node that died or stopped answering is not fed the rest: the assertions say what happened.
      if (c.index % 1_000 === 0 && !isAlive(node.pid)) break;
      if ((run.failures.get("no-answer")?.count ?? 0) > 4 * WINDOW) break;
      if (c.index === Math.floor(MESSAGES / 10)) run.rss.early = rss.read();
      const tracked = c.withReply && c.role !== "internal";
      while (
        tracked &&
        (pending.size >= WINDOW ||
          (pending.size > 0 && inflightBytes + c.payload.byteLength > MAX_BYTES_IN_FLIGHT))
      ) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
      }
      const headers = c.headers ? natsHeaders() : undefined;
      for (const [k, v] of Object.entries(c.headers ?? {})) headers?.set(k, v);
      if (tracked) {
        pending.set(c.index, { c, sentAt: performance.now() });
        inflightBytes += c.payload.byteLength;
        run.tracked++;
      }
      conns[c.user].publish(c.subject, c.payload, {
        ...(c.withReply ? { reply: `${inboxOf(c.user)}${c.index}` } : {}),
        ...(headers ? { headers } : {}),
      });
      run.sent++;
      run.bytes += c.payload.byteLength;
      run.families[c.family]++;
      run.byRole[c.role] = (run.byRole[c.role] ?? 0) + 1;
      run.byUser[c.user]++;
      // Plain publishes are not paced by replies: flush now and then so they do not pile up here.
      unflushed += c.payload.byteLength;
      if (!tracked && unflushed > 4 * 1024 * 1024) {
        await conns[c.user].flush();
        unflushed = 0;
      }
    }
    while (pending.size > 0) {
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  } finally {
    clearInterval(sweeper);
  }
  run.seconds = (performance.now() - started) / 1_000;
  await Promise.all([conns.admin.flush(), conns.viewer.flush()]);
  // Let the node finish what it was given (action log writes, GC) before the last reading.
  await sleep(systemClock, Math.max(3_000, TERM_MARGIN_MS));
  for (const gap of run.files.gaps) {
    if (termGap(gap.at)) run.files.explained[gap.kind]++;
    else
      fail(
        gap.c,
        `files-${gap.kind}`,
        `${gap.kind} on ${gap.c.subject} while node ${NODE} held its coordinator term`,
      );
  }
  run.rss.end = rss.read();
  rss.stop();
  run.rss.max = rss.max;
  run.rss.samples = rss.samples.length;
  run.rss.missed = rss.missed;
  run.heartbeat = { beats: heartbeats.beats, maxGapMs: heartbeats.maxGapMs };
  return run;
}

/** Sends one well-formed request and returns its RPLY. */
async function request(type: string, params: unknown, seq: number): Promise<Rply> {
  const rqst = { v: PROTOCOL_VERSION, type, src: "fuzz-check", dst: NODE, seq, params };
  const msg = await conns.admin.request(dvs.nodeRqst(NODE), encode(rqst), { timeout: 10_000 });
  const parsed = parseRply(msg.data, "cbor", MAX_PAYLOAD);
  if (!parsed.ok) throw new Error(`not a RPLY: ${parsed.message}`);
  return parsed.rply;
}

/** Waits until the node answers on its own request subject. */
async function answering(timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    try {
      await request("GETDVSINFO", {}, 0);
      return;
    } catch (error) {
      if (performance.now() > deadline || !node.running)
        throw new Error(`node ${NODE} does not answer: ${String(error)}\n${node.output()}`);
      await sleep(systemClock, 100);
    }
  }
}

/** Waits until the node, the only server, is the file store's coordinator: LS is answered with the catalog. */
async function coordinating(timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    try {
      const msg = await conns.admin.request(dvs.fileLs, encode({ v: PROTOCOL_VERSION, type: "LS" }), {
        timeout: 2_000,
      });
      const decoded = decode(msg.data, "cbor", MAX_PAYLOAD);
      if (decoded.ok && fileAnswerSchema.safeParse(decoded.value).data?.type === "LIST") return;
    } catch {
      // No coordinator yet ("no responders").
    }
    if (performance.now() > deadline)
      throw new Error(`node ${NODE} did not become the file store's coordinator:\n${node.output()}`);
    await sleep(systemClock, 100);
  }
}

function pidMax(): number {
  return Number(readFileSync("/proc/sys/kernel/pid_max", "utf8").trim());
}

beforeAll(async () => {
  requireBuild();
  server = await startTestNatsServer();
  conns.admin = await connect({ servers: server.url, ...DEV_USERS.admin, name: "fuzz-admin" });
  conns.viewer = await connect({
    servers: server.url,
    ...DEV_USERS.viewer,
    inboxPrefix: "_INBOX.viewer",
    name: "fuzz-viewer",
  });
  conns.admin.subscribe(dvs.servers, {
    callback: (_err, msg) => {
      const decoded = decode(msg.data, "cbor", MAX_PAYLOAD);
      const parsed = decoded.ok ? serverMessageSchema.safeParse(decoded.value) : undefined;
      // The fuzz publishes garbage here too: only the node's own messages count.
      if (parsed?.success) observeTerm(parsed.data);
    },
  });
  await conns.admin.flush();
  node = new DvsdNode({ node: NODE, dir, natsUrl: server.url, config: { log: { level: "warn" } } });
  node.start();
  await answering(20_000);
  await coordinating(20_000);
}, 40_000);

afterAll(async () => {
  await Promise.all(Object.values(conns).map((nc) => nc?.close()));
  await node?.kill();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("a node under random and mutated input", () => {
  it(
    "stays up, answers every request subject once, keeps its memory bounded and its action log intact",
    async () => {
      const init = await request("DVSINIT", {}, 1);
      expect(init.rcode).toBe(NODE);
      expect(init.action).toBeDefined();
      const initAction = init.action as string;
      // A DC with this node in it, so that SPAWN, SEND and the other process requests reach their handlers.
      expect((await request("DCINIT", { dcid: 1, nodes: [NODE] }, 2)).rcode).toBe(1);
      const log = new JetStreamActionLog(conns.admin, { cluster: CLUSTER });
      const initRecords = await log.show(initAction);
      expect(initRecords.map((r) => r.kind)).toEqual(["request", "reply", "outcome"]);

      const run = await runFuzz(pidMax(), initAction);
      report(run);

      // The node was up all along (sampled every 500 ms), is up now and still serves a normal request.
      expect(run.rss.missed, node.output().slice(-5_000)).toBe(0);
      expect(isAlive(node.pid), node.output().slice(-5_000)).toBe(true);
      expect(node.running).toBe(true);
      const info = await request("GETDVSINFO", {}, 3);
      expect(info.rcode).toBe(0);
      expect(info.data).toMatchObject({ name: "dvs", nr_dcs: 32 });
      expect(run.sent).toBe(MESSAGES);

      // Every request-shaped case got exactly one answer, the one the codec's verdict calls for.
      const failures = [...run.failures].map(
        ([kind, g]) => `${kind} ×${g.count}:\n    ${g.examples.join("\n    ")}`,
      );
      expect.soft(failures, `${run.failureCount} answers were wrong or missing`).toEqual([]);
      // Less the file store messages dropped with a coordinator term (counted and explained above).
      expect.soft(run.answered + run.files.explained["no-answer"]).toBe(run.tracked);
      expect.soft(run.duplicateReplies).toBe(0);
      expect.soft(run.unexpectedReplies, "answers on subjects that never answer").toBe(0);
      expect.soft(run.permissionErrors).toEqual([]);
      for (const family of FUZZ_FAMILIES) expect.soft(run.families[family]).toBeGreaterThan(MESSAGES / 200);
      // Every viewer (and admin) that claimed role "admin" on a read-only subject was refused.
      expect.soft(run.eperm.sent).toBeGreaterThan(MESSAGES / 100);
      expect.soft(run.eperm.refused).toBe(run.eperm.sent);

      // Memory stays bounded, and the node kept heartbeating: a peer declares it unreachable after 1 s.
      expect.soft(run.rss.max, "max RSS (MB)").toBeLessThan(RSS_MAX_MB);
      expect
        .soft(run.rss.end - run.rss.early, "RSS growth after the first 10% (MB)")
        .toBeLessThan(RSS_GROWTH_MB);
      expect.soft(run.heartbeat.beats).toBeGreaterThan(run.seconds * 2);
      expect
        .soft(run.heartbeat.maxGapMs, "longest silence between heartbeats (ms)")
        .toBeLessThan(HEARTBEAT_GAP_MS);

      // Bad input is logged with a throttle (SPEC 3.2); nothing it does is an internal error.
      const logged = logLines(node.output());
      const budget = LOG_LINES_PER_10S * Math.ceil(run.seconds / 10 + 2);
      const flooded = [...logged.byMsg].filter(
        ([msg, n]) => n > budget && !AUDITED.some((a) => msg.includes(a)),
      );
      expect.soft(flooded, `log lines over ${budget} per message in ${run.seconds.toFixed(0)} s`).toEqual([]);
      expect.soft(logged.errors, "error-level log lines").toEqual([]);

      // The action log: every record validates, every id is a valid one, what was answered is there.
      await expectActionLogIntact(log, run, initAction, initRecords);
    },
    TEST_TIMEOUT_MS,
  );
});

/**
 * The action log after the run: every stored record validates and sits on a
 * subject a valid id makes, under the node that wrote it; no action has a
 * second request record; every change the node made (a mutating type
 * answered rcode ≥ 0) has its own request record; where an id was used once,
 * its records agree with the answer; and an old action replayed by id is
 * unchanged.
 */
async function expectActionLogIntact(
  log: JetStreamActionLog,
  run: Run,
  initAction: string,
  initRecords: ActionRecord[],
): Promise<void> {
  const listed: ActionSummary[] = await log.list({ limit: 1_000_000 });
  expect(log.skipped, "records that fail validation").toBe(0);
  const byId = new Map(listed.map((a) => [a.request.action, a]));
  const seen = new Set<string>();
  const twice = listed.filter((a) => seen.has(a.request.action) || !seen.add(a.request.action));
  expect
    .soft(
      twice.slice(0, 5).map((a) => a.request),
      `${twice.length} actions with a second request record`,
    )
    .toEqual([]);
  const badIds = listed.filter((a) => !actionIdSchema.safeParse(a.request.action).success);
  expect(badIds).toEqual([]);
  // A change that was made (rcode ≥ 0) was logged, as itself, before it ran.
  const isItself = (a: Run["actions"][number], logged: ActionSummary | undefined) =>
    logged !== undefined && logged.request.type === a.type && logged.request.seq === a.seq;
  const unaudited = run.actions.filter((a) => a.mutating && a.rcode >= 0 && !isItself(a, byId.get(a.action)));
  const shown = unaudited.slice(0, 5).map((a) => {
    const held = byId.get(a.action)?.request;
    return { ...a, logHas: held ? { type: held.type, seq: held.seq, src: held.src } : "nothing" };
  });
  expect.soft(shown, `${unaudited.length} changes made without their own request record`).toEqual([]);
  // Where a requester's id is unique, the log tells its story: its request and, if logged, the outcome it was told.
  const uses = new Map<string, number>();
  for (const a of run.actions) uses.set(a.action, (uses.get(a.action) ?? 0) + 1);
  const unique = run.actions.filter((a) => uses.get(a.action) === 1);
  const contradicted = unique.filter((a) => {
    const logged = byId.get(a.action);
    return (
      logged !== undefined &&
      (!isItself(a, logged) || (logged.outcome !== undefined && logged.outcome.rcode !== a.rcode))
    );
  });
  expect
    .soft(contradicted.slice(0, 5), `${contradicted.length} logged actions disagree with their answer`)
    .toEqual([]);
  const outcomes = run.actions.filter((a) => byId.get(a.action)?.outcome !== undefined).length;
  const reused = run.actions.length - unique.length;
  console.log(
    `action log: ${listed.length} actions listed; ${run.actions.length} answers named an action id ` +
      `(${reused} under an id more than one request used), ${outcomes} with an outcome logged`,
  );
  // A replayed id did not add to, or rewrite, the action it belongs to.
  expect.soft(await log.show(initAction)).toEqual(initRecords);
  const step = Math.max(1, Math.floor(listed.length / 200));
  for (let i = 0; i < listed.length; i += step) {
    const id = (listed[i] as ActionSummary).request.action;
    const records: ActionRecord[] = await log.show(id);
    expect
      .soft(
        records.filter((r) => r.kind === "request"),
        id,
      )
      .toHaveLength(1);
    expect.soft(records.filter((r) => r.kind === "outcome").length, id).toBeLessThanOrEqual(1);
    expect.soft(records.every((r) => r.action === id)).toBe(true);
  }
  expect(log.skipped, "records that fail validation").toBe(0);
  // Underneath the reader: every subject in the stream is one a valid action id makes.
  const jsm = await jetstreamManager(conns.admin);
  const stream = await jsm.streams.info(actionStreamName(CLUSTER), { subjects_filter: ">" });
  const streamSubjects = Object.keys(stream.state.subjects ?? {});
  expect(streamSubjects.length).toBeGreaterThanOrEqual(listed.length);
  const shape = new RegExp(
    `^dvs\\.${CLUSTER}\\.actions\\.${NODE}\\.[A-Za-z0-9_-]{1,64}\\.(request|outcome|event|reply\\.\\d+)$`,
  );
  expect(streamSubjects.filter((s) => !shape.test(s))).toEqual([]);
}

/** One line of figures, the slowest answers and the node's log by message. */
function report(run: Run): void {
  const rate = Math.round(run.sent / run.seconds);
  const families = FUZZ_FAMILIES.map((f) => `${f}=${run.families[f]}`).join(" ");
  const rcodes = Object.entries(run.rcodes)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k}=${v}`)
    .join(" ");
  console.log(
    `fuzz seed=${SEED}: ${run.sent} messages (${(run.bytes / 1e6).toFixed(0)} MB) in ${run.seconds.toFixed(1)} s = ${rate} msg/s; ` +
      `${run.answered}/${run.tracked} answered; families ${families}; rcodes ${rcodes}; ` +
      `EPERM ${run.eperm.refused}/${run.eperm.sent}; actions ${run.actions.length}; ` +
      `RSS MB start ${run.rss.start.toFixed(0)} early ${run.rss.early.toFixed(0)} max ${run.rss.max.toFixed(0)} ` +
      `end ${run.rss.end.toFixed(0)} (bounds: max < ${RSS_MAX_MB}, end - early < ${RSS_GROWTH_MB}); ` +
      `heartbeat max gap ${run.heartbeat.maxGapMs.toFixed(0)} ms (< ${HEARTBEAT_GAP_MS}); ` +
      `file store answers ${Object.entries(run.files.answers)
        .map(([k, v]) => `${k}=${v}`)
        .join(" ")}, gaps at a change of term: no responders ${run.files.explained["no-responders"]}, ` +
      `no answer ${run.files.explained["no-answer"]}; node ${NODE}'s terms seen ${terms.length}; ` +
      `subjects ${Object.entries(run.byRole)
        .map(([k, v]) => `${k}=${v}`)
        .join(" ")}; sent as admin=${run.byUser.admin} viewer=${run.byUser.viewer}; ` +
      `replies on internal subjects ${run.unexpectedReplies}`,
  );
  const slowest = [...run.latency]
    .sort((a, b) => b[1].totalMs - a[1].totalMs)
    .slice(0, 8)
    .map(([k, l]) => `${k} ${l.count}× avg ${(l.totalMs / l.count).toFixed(0)} max ${l.maxMs.toFixed(0)} ms`);
  console.log(`reply latency (most total time first): ${slowest.join(", ")}`);
  const logged = logLines(node.output());
  const byMsg = [...logged.byMsg].sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k}=${v}`);
  console.log(`node log (level:msg=lines): ${byMsg.join(", ")}`);
}
