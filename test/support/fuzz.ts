// Seeded bad input for the fuzz test (issue item "Bad input"): each case is a
// subject of a running node, the bytes to publish there, optional headers and
// whether it carries a reply subject. The same seed gives the same cases, so a
// failure is reproduced by its seed and index. Nothing generated here may harm
// the machine: `harmless` vets every case before it is sent (no DVSEND on a
// subject that would honour it, no KILL of a pid that could exist).

import {
  decode,
  decodePlain,
  encode,
  encodingOf,
  JSON_CONTENT_TYPE,
  parseRqst,
} from "../../protocol/codec.js";
import {
  CHUNK_BYTES,
  commitRequestSchema,
  committedSchema,
  lsRequestSchema,
  peerFileMessageSchema,
  readRequestSchema,
  updateRequestSchema,
} from "../../protocol/files.js";
import { heartbeatSchema } from "../../protocol/membershipMessages.js";
import {
  ALL,
  type ErrorName,
  MAX_MESSAGE_BYTES,
  MUTATING_TYPES,
  type NodeId,
  PROTOCOL_VERSION,
  REQUEST_GROUPS,
  REQUEST_TYPES,
  type RequestType,
  rplySchema,
  rqstEnvelopeSchema,
  UNICAST_ONLY_TYPES,
} from "../../protocol/messages.js";
import { announcementSchema, migrationMessageSchema, proxyFrameSchema } from "../../protocol/processes.js";
import { subjects } from "../../protocol/subjects.js";
import { type Random, randomInt, randomToken, seededRandom } from "../../transport/clock.js";

export const FUZZ_FAMILIES = [
  "random-bytes",
  "truncated",
  "wrong-types",
  "huge-strings",
  "unknown-types",
  "bombs",
  "forged-identity",
  "mutated",
  "internal-garbage",
] as const;
export type FuzzFamily = (typeof FUZZ_FAMILIES)[number];

/** Share of the cases each family gets. Huge strings are few: each is up to ~1 MB on the wire. */
export const FAMILY_WEIGHTS: Readonly<Record<FuzzFamily, number>> = {
  "random-bytes": 13,
  truncated: 13,
  "wrong-types": 14,
  "huge-strings": 1.2,
  "unknown-types": 8,
  bombs: 4,
  "forged-identity": 14,
  mutated: 24.8,
  "internal-garbage": 8,
};

/**
 * What a subject is to the node, which decides the answer a message there must get:
 * - `request`, `readonly-request`, `passed-on` (`_mcast`, `_fwd.<N>`): exactly one RPLY;
 * - `status` (`_status`): one NodeStatus; `probe` (`_probe.<N>`): one `{ node, incarnation }`;
 * - `service` (`$SRV.*`): one micro-service JSON answer;
 * - `migration` (`_migr.<N>`, an offer is a request): one `{ ok: false, error }`;
 * - `registry` (`dns.who`, `dns.node.<N>.who`, `dns.failed`): one registry answer (OK, NOTHING or ERROR);
 * - `files` (`file.commit`, `file.update`, `file.ls`: the coordinator, here the node itself;
 *   `file.read.<N>`: the node as a holder): one file store answer (fileAnswerSchema), ERROR EBADMSG
 *   when the message is malformed; on the coordinator's subjects, "no responders" (or a message
 *   dropped with the subscription) only while the node holds no coordinator term, or as it changes;
 * - `file-peer` (`_file.<N>`, garbage only): one peer answer (peerFileAnswerSchema), ERROR EINVAL;
 * - `unserved` (events, a committing client's `file.src.<commit>`: nobody subscribes): NATS "no responders";
 * - `internal` (heartbeats, gathers, DC sync, processes, COMMITTED): never an answer.
 */
export type SubjectRole =
  | "request"
  | "readonly-request"
  | "passed-on"
  | "status"
  | "probe"
  | "service"
  | "migration"
  | "registry"
  | "files"
  | "file-peer"
  | "unserved"
  | "internal";

export type FuzzUser = "admin" | "viewer";

export interface FuzzCase {
  readonly index: number;
  readonly family: FuzzFamily;
  /** Which generator of the family made it (for the summary and failure reports). */
  readonly variant: string;
  readonly subject: string;
  readonly role: SubjectRole;
  readonly user: FuzzUser;
  readonly payload: Uint8Array;
  readonly headers?: Readonly<Record<string, string>>;
  readonly withReply: boolean;
  /** The one answer this case must get (a forged `role: "admin"` on a read-only subject: EPERM). */
  readonly mustBe?: ErrorName;
  /** For the subjects that read RQSTs (request, read-only, passed-on): what the codec makes of the bytes. */
  readonly verdict?: Verdict;
  /** For the file store's public subjects: whether the node reads the bytes as its message (else EBADMSG). */
  readonly fileMessage?: "well-formed" | "malformed";
}

export interface FuzzOptions {
  readonly seed: number;
  readonly count: number;
  readonly cluster: string;
  /** The node under test. */
  readonly node: NodeId;
  /** The host's pid_max: a KILL that a node would carry out only names a pid above it. */
  readonly pidMax: number;
  /** An action id already in the log, replayed by a few forged requests. */
  readonly knownAction?: string;
}

/** Kept under nats.conf's max_payload (1 MB) with room for headers. */
export const MAX_FUZZ_PAYLOAD = 1_000_000;

/** The cases, generated lazily: 100,000 of them never sit in memory at once. */
export function* fuzzCases(options: FuzzOptions): Generator<FuzzCase> {
  const gen = new CaseGenerator(options);
  for (let index = 0; index < options.count; index++) yield gen.next(index);
}

/** What the codec makes of a request-shaped case's bytes: what the node must answer. */
export type Verdict =
  | { readonly ok: false; readonly error: ErrorName }
  | {
      readonly ok: true;
      readonly type: RequestType;
      readonly seq: number;
      readonly dst: NodeId | typeof ALL;
      /** KILL's target. */
      readonly pid?: number;
    };

/** Runs the node's own decoder and validation (parseRqst) on the case's bytes. */
export function verdictOf(c: Pick<FuzzCase, "payload" | "headers">): Verdict {
  // Not a map of five or more entries: not an RQST whatever it decodes to (a bomb is spared a full parse).
  if (!mayBeMap(c, 5))
    return { ok: false, error: c.payload.byteLength > MAX_MESSAGE_BYTES ? "EMSGSIZE" : "EBADMSG" };
  const parsed = parseRqst({ data: c.payload, headers: c.headers ? { ...c.headers } : undefined });
  if (!parsed.ok) return { ok: false, error: parsed.error };
  const { type, seq, dst, params } = parsed.rqst;
  const pid = type === "KILL" ? (params as { pid: number }).pid : undefined;
  return { ok: true, type, seq, dst, ...(pid !== undefined ? { pid } : {}) };
}

/** The schema the node reads a message on one of the file store's public subjects with. */
function fileSchemaOf(subject: string, s: ReturnType<typeof subjects>) {
  if (subject === s.fileCommit) return commitRequestSchema;
  if (subject === s.fileUpdate) return updateRequestSchema;
  if (subject === s.fileLs) return lsRequestSchema;
  return readRequestSchema;
}

/** Runs the node's decoder and the subject's schema on a file store case's bytes. */
export function fileVerdictOf(
  c: Pick<FuzzCase, "payload" | "headers" | "subject">,
  s: ReturnType<typeof subjects>,
): "well-formed" | "malformed" {
  const decoded = decodePlain(c.payload, encodingOf({ headers: c.headers ? { ...c.headers } : undefined }));
  return decoded.ok && fileSchemaOf(c.subject, s).safeParse(decoded.value).success
    ? "well-formed"
    : "malformed";
}

/**
 * Whether a case is safe to send: on the subjects a node serves as an admin's,
 * a request that parses must not be DVSEND (it would take the node out of the
 * DVS) nor a KILL of a pid that could exist; internal subjects get garbage only,
 * never a message their schema accepts (a forged heartbeat is real membership).
 * `verdict` defaults to the one the generator attached, else a fresh parse.
 */
export function harmless(c: FuzzCase, pidMax: number, verdict = c.verdict ?? verdictOf(c)): boolean {
  if (c.payload.byteLength > MAX_FUZZ_PAYLOAD) return false;
  switch (c.role) {
    case "internal":
    case "migration":
    case "passed-on":
    case "file-peer":
      return !verdict.ok && isGarbage(c);
    case "request":
      if (!verdict.ok) return true;
      if (verdict.type === "DVSEND") return false;
      if (verdict.type === "KILL") return verdict.pid !== undefined && verdict.pid > pidMax;
      return true;
    default:
      // Read-only subjects refuse every mutating type (EPERM); the others do not read RQSTs.
      return true;
  }
}

/** Garbage: no decoder a node runs on its internal subjects accepts it. */
function isGarbage(c: FuzzCase): boolean {
  const [first = 0, second = 0] = c.payload;
  const isArray = (byte: number) => byte >= 0x80 && byte <= 0x9f;
  // A one-element array holding an array (the nested-array bombs): no object at its top level.
  if (first === 0x81 && isArray(second)) return true;
  // Neither a map of two or more entries nor an array (nor a tag around one): no internal schema accepts it.
  if (!mayBeMap(c, 2) && !isArray(first)) return true;
  const decoded = decode(c.payload, "cbor", Number.MAX_SAFE_INTEGER);
  if (!decoded.ok) return true;
  const value = decoded.value;
  if (Array.isArray(value)) return value.every((e) => typeof e !== "object" || e === null);
  if (typeof value !== "object" || value === null) return true;
  const schemas = [
    rqstEnvelopeSchema,
    rplySchema,
    heartbeatSchema,
    proxyFrameSchema,
    announcementSchema,
    migrationMessageSchema,
    peerFileMessageSchema,
    committedSchema,
  ];
  return !schemas.some((s) => s.safeParse(value).success);
}

/**
 * Whether the payload could decode to a map of at least `minEntries` entries:
 * CBOR that starts with such a map head or with a tag, JSON that starts with
 * `{`. Anything else cannot be a request (five required fields) or internal
 * traffic, which spares the vetting a full parse of every bomb.
 */
function mayBeMap(c: Pick<FuzzCase, "payload">, minEntries: number): boolean {
  const first = c.payload[0];
  if (first === undefined) return false;
  if (first >= 0xa0 + minEntries && first <= 0xbf) return true;
  if (first >= 0xc0 && first <= 0xdf) return true;
  // JSON (or CBOR that happens to start like it): leading whitespace may precede the `{`.
  for (const byte of c.payload.subarray(0, 64)) {
    if (byte === 0x7b) return true;
    if (byte !== 0x20 && byte !== 0x09 && byte !== 0x0a && byte !== 0x0d) return false;
  }
  return true;
}

/** A short, reproducible description of a case: enough to send it again by hand. */
export function describeCase(c: FuzzCase, maxHexBytes = 96): string {
  const hex = Buffer.from(c.payload.subarray(0, maxHexBytes)).toString("hex");
  const more = c.payload.byteLength > maxHexBytes ? `… (${c.payload.byteLength} bytes)` : "";
  const headers = c.headers ? ` headers=${JSON.stringify(c.headers)}` : "";
  return `#${c.index} ${c.family}/${c.variant} ${c.user}@${c.subject}${headers} payload=${hex}${more}`;
}

// ---- drawing ----

/** Seeded choices over one Random. */
class Draw {
  constructor(readonly random: Random) {}

  int(n: number): number {
    return randomInt(this.random, n);
  }

  /** An integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  /** Log-uniform in [lo, hi]: small sizes are as likely as large ones per decade. */
  logRange(lo: number, hi: number): number {
    const a = Math.log(Math.max(lo, 1));
    const b = Math.log(hi);
    return Math.min(hi, Math.max(lo, Math.round(Math.exp(a + this.random.next() * (b - a)))));
  }

  chance(p: number): boolean {
    return this.random.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    const item = items[this.int(items.length)];
    if (item === undefined) throw new RangeError("pick from an empty list");
    return item;
  }

  weighted<T extends string>(weights: Readonly<Record<T, number>>): T {
    const entries = Object.entries(weights) as [T, number][];
    const total = entries.reduce((s, [, w]) => s + w, 0);
    let x = this.random.next() * total;
    for (const [k, w] of entries) {
      x -= w;
      if (x < 0) return k;
    }
    return entries[entries.length - 1]?.[0] as T;
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 4) {
      let word = Math.floor(this.random.next() * 0x1_0000_0000);
      for (let j = i; j < Math.min(i + 4, n); j++) {
        out[j] = word & 0xff;
        word >>>= 8;
      }
    }
    return out;
  }

  text(n: number, alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.:"): string {
    let out = "";
    for (let i = 0; i < n; i++) out += alphabet[this.int(alphabet.length)];
    return out;
  }
}

type Json = Record<string, unknown>;

/** Names in the file store's cases: valid ones, the longest one, and a few that must be refused. */
const FILE_NAMES: readonly string[] = [
  "a",
  "fuzz.bin",
  "dir/sub/file.txt",
  "x".repeat(180),
  "x".repeat(181),
  "../etc/passwd",
  "/abs",
  "a//b",
  ".hidden",
  "a b",
];

const FORGED_SOURCES: readonly (string | number)[] = [
  2,
  3,
  0,
  65_535,
  "fwd:2",
  "node:1",
  "admin",
  "dvsd",
  "_INBOX",
  "1",
];
const ODD_ACTION_IDS: readonly string[] = [
  "a.b",
  "*",
  ">",
  "a".repeat(65),
  "",
  "a b",
  "ä",
  "../x",
  "a\nb",
  "$SRV",
  "dvs.dvs.actions.x",
  "x>",
  "\u0000",
];
const WEIRD_VALUES: readonly unknown[] = [
  null,
  true,
  false,
  -1,
  1.5,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  2 ** 53,
  -(2 ** 53),
  1e308,
  -0,
  "",
  "1",
  "ALL",
  "all",
  [],
  {},
  [1, 2, 3],
  { a: 1 },
  { constructor: 1, toString: "x" },
  new Uint8Array([1, 2, 3]),
  2n ** 70n,
  -(2n ** 64n),
  new Date(0),
  "\u0000",
  "😀".repeat(20),
];
/**
 * Raw CBOR items spliced into an otherwise valid envelope: tags cbor-x gives
 * meaning to (RegExp, Error, shared and cyclic references, Set, Map, typed
 * arrays, bigints, dates), simple values, indefinite lengths, bad references.
 */
const RAW_CBOR_ITEMS: readonly string[] = [
  "f7", // undefined
  "f0", // simple(16)
  "f8ff", // simple(255)
  "f97e00", // NaN (half)
  "f97c00", // Infinity (half)
  "c2490100000000000000000000", // bignum 2^64
  "c34801ffffffffffffff", // negative bignum
  "c11a5f5e1000", // epoch date
  "c074323032302d30312d30315430303a30303a30305a", // date string
  "d81b8366526567457870652861272b292b6167", // RegExp("(a+)+", "g")
  "d81b826545727272726f72626869", // Error-ish tag 27 with an unknown constructor
  "d81b82654572726f726268690a", // Error("hi") then a stray byte
  "d81ca16161d81d00", // {a: <itself>}: a cycle
  "d81c81d81d00", // [<itself>]
  "d81d05", // a reference to a share that does not exist
  "d90102820102", // Set {1, 2}
  "d90103a10102", // Map {1 => 2}
  "d8404301020304", // Uint8Array with a stray byte
  "d8554801020304050607", // Float64Array of 7 bytes
  // Whole elements only: cbor-x decodes a typed array of a partial element or throws depending on
  // where the message sits in memory (its byte alignment), so the node's answer would not be the codec's here.
  "d84f480102030405060708", // BigInt64Array
  "d833840102030405", // packed values table
  "d80600", // packed reference without a table
  "d9d9f7f6", // self-described null
  "9f010203ff", // indefinite array
  "bf6161016162ff", // indefinite map with a missing value
  "7f61616162ff", // indefinite text
  "5f41614162ff", // indefinite bytes
  "a2617601617602", // duplicate keys
  "a1800102", // an array as a map key
  "a1a0a0", // a map as a map key
  "a16b5f5f70726f746f5f5f5fa1617801", // "__proto___" key
  "a1695f5f70726f746f5f5fa1617801", // "__proto__" key
  "a16b636f6e7374727563746f72a0", // "constructor" key
  "d869830102", // record-ish tag 105
  "dfffffffff00", // a huge tag number
];
/** Declared lengths far beyond the message: a decoder must not allocate on trust. */
const LENGTH_BOMBS: readonly string[] = [
  "9bffffffffffffffff",
  "9b00000000ffffffff",
  "bb00000000ffffffff",
  "bbffffffffffffffff",
  "5a7fffffff",
  "5bffffffffffffffff",
  "7a7fffffff",
  "7b7fffffffffffffff",
  "9a7fffffff01",
  "ba7fffffff6161",
  "da7fffffff",
  "d81cd81cd81cd81c",
];
/**
 * How often each type is the base of a request. The host probes (PS, DF, …)
 * run ps, df and friends for every valid request, which would make the run a
 * benchmark of process spawning; they keep a quarter of the others' share.
 */
const TYPE_WEIGHTS = Object.fromEntries(
  REQUEST_TYPES.map((t) => [t, (REQUEST_GROUPS.host as readonly string[]).includes(t) ? 1 : 4]),
) as Record<RequestType, number>;

const JSON_HEADER_VARIANTS: readonly Readonly<Record<string, string>>[] = [
  { "Content-Type": JSON_CONTENT_TYPE },
  { "Content-Type": JSON_CONTENT_TYPE },
  { "content-type": "application/json; charset=utf-8" },
  { "CONTENT-TYPE": "APPLICATION/JSON" },
];
const ODD_HEADERS: readonly Readonly<Record<string, string>>[] = [
  { "Content-Type": "text/plain" },
  { "Content-Type": "application/cbor" },
  { "Content-Type": "application/jsonx" },
  { "Content-Type": ";application/json" },
  { "Content-Type": "" },
  { "X-Fuzz": "1", "Nats-Msg-Id": "x" },
  { "Content-Type": "application/json;;;;", "Content-Length": "-1" },
];

class CaseGenerator {
  readonly #o: FuzzOptions;
  readonly #d: Draw;
  readonly #s: ReturnType<typeof subjects>;
  readonly #safePids: readonly number[];

  constructor(options: FuzzOptions) {
    this.#o = options;
    this.#d = new Draw(seededRandom(options.seed));
    this.#s = subjects(options.cluster);
    // Above pid_max no process can exist: these are the only pids a KILL may name.
    this.#safePids = [
      options.pidMax + 1,
      options.pidMax + 1 + randomInt(seededRandom(options.seed ^ 0x5eed), 1_000),
      ...(999_999 > options.pidMax ? [999_999] : []),
      4_194_305,
      2_147_483_647,
    ];
  }

  next(index: number): FuzzCase {
    const family = this.#d.weighted(FAMILY_WEIGHTS);
    // A rare case the vetting refuses is drawn again (same family), then falls back to random bytes.
    for (let attempt = 0; ; attempt++) {
      const drawn = attempt < 8 ? this.#family(index, family) : this.#randomBytes(index);
      const reads =
        drawn.role === "request" || drawn.role === "readonly-request" || drawn.role === "passed-on";
      const c: FuzzCase = reads
        ? { ...drawn, verdict: verdictOf(drawn) }
        : drawn.role === "files"
          ? { ...drawn, fileMessage: fileVerdictOf(drawn, this.#s) }
          : drawn;
      if (harmless(c, this.#o.pidMax)) return c;
      if (attempt > 100) throw new Error(`no harmless case for #${index} (${family})`);
    }
  }

  #family(index: number, family: FuzzFamily): FuzzCase {
    switch (family) {
      case "random-bytes":
        return this.#randomBytes(index);
      case "truncated":
        return this.#truncated(index);
      case "wrong-types":
        return this.#wrongTypes(index);
      case "huge-strings":
        return this.#hugeStrings(index);
      case "unknown-types":
        return this.#unknownTypes(index);
      case "bombs":
        return this.#bombs(index);
      case "forged-identity":
        return this.#forged(index);
      case "mutated":
        return this.#mutated(index);
      case "internal-garbage":
        return this.#internal(index);
    }
  }

  // ---- subjects ----

  /** A public subject for a request-shaped message, and who sends it there. */
  #publicTarget(): Pick<FuzzCase, "subject" | "role" | "user" | "withReply"> {
    const d = this.#d;
    const s = this.#s;
    const node = this.#o.node;
    const which = d.weighted({
      node: 34,
      any: 20,
      roNode: 20,
      roAny: 16,
      registry: 4,
      files: 4,
      unserved: 1,
      service: 5,
    });
    const withReply = d.chance(0.95);
    switch (which) {
      case "node":
        return { subject: s.nodeRqst(node), role: "request", user: "admin", withReply };
      case "any":
        return { subject: s.anyRqst, role: "request", user: "admin", withReply };
      case "roNode":
        return {
          subject: s.roNodeRqst(node),
          role: "readonly-request",
          user: d.chance(0.5) ? "viewer" : "admin",
          withReply,
        };
      case "roAny":
        return {
          subject: s.roAnyRqst,
          role: "readonly-request",
          user: d.chance(0.5) ? "viewer" : "admin",
          withReply,
        };
      case "registry":
        // The viewer may ask the registry too.
        return {
          subject: d.pick([s.dnsWho, s.nodeDnsWho(this.#o.node), s.dnsFailed]),
          role: "registry",
          user: d.chance(0.5) ? "viewer" : "admin",
          withReply: true,
        };
      case "files": {
        // The viewer may read files (UPDATE, LS, READ), not commit one.
        const subject = d.pick([s.fileCommit, s.fileUpdate, s.fileLs, s.fileRead(node)]);
        const user = subject !== s.fileCommit && d.chance(0.5) ? "viewer" : "admin";
        return { subject, role: "files", user, withReply };
      }
      case "unserved":
        return {
          subject: d.pick([s.events, s.fileSource(`fuzz${d.int(1_000)}`)]),
          role: "unserved",
          user: "admin",
          withReply,
        };
      case "service":
        return {
          subject: d.pick([
            "$SRV.PING",
            "$SRV.INFO",
            "$SRV.STATS",
            "$SRV.PING.dvsd",
            "$SRV.INFO.dvsd",
            "$SRV.STATS.dvsd",
          ]),
          role: "service",
          user: d.chance(0.3) ? "viewer" : "admin",
          withReply,
        };
    }
  }

  /** A read-only request subject, and who sends there. */
  #readonlyTarget(user: FuzzUser): Pick<FuzzCase, "subject" | "role" | "user" | "withReply"> {
    const subject = this.#d.chance(0.5) ? this.#s.roNodeRqst(this.#o.node) : this.#s.roAnyRqst;
    return { subject, role: "readonly-request", user, withReply: true };
  }

  #internalTarget(): Pick<FuzzCase, "subject" | "role" | "user" | "withReply"> {
    const d = this.#d;
    const s = this.#s;
    const node = this.#o.node;
    const other = d.pick([node, node, 2, 3, 0, 65_535]);
    const which = d.weighted({
      hb: 16,
      probe: 8,
      status: 8,
      mcast: 14,
      fwd: 14,
      gather: 10,
      dcsync: 10,
      px: 8,
      loc: 6,
      migr: 6,
      srv: 8,
      filePeer: 6,
      fileAll: 4,
    });
    const withReply = d.chance(0.6);
    switch (which) {
      case "hb":
        return { subject: s.heartbeat(other), role: "internal", user: "admin", withReply };
      case "probe":
        return { subject: s.probe(node), role: "probe", user: "admin", withReply: true };
      case "status":
        return {
          subject: s.status,
          role: "status",
          user: d.chance(0.3) ? "viewer" : "admin",
          withReply: true,
        };
      case "mcast":
        return { subject: s.multicast, role: "passed-on", user: "admin", withReply: true };
      case "fwd":
        return { subject: s.forward(node), role: "passed-on", user: "admin", withReply: true };
      case "gather":
        return { subject: s.gather(node), role: "internal", user: "admin", withReply };
      case "dcsync":
        return { subject: s.dcSync(node), role: "internal", user: "admin", withReply };
      case "px":
        return { subject: s.proxy(node), role: "internal", user: "admin", withReply };
      case "loc":
        return { subject: s.procLocation, role: "internal", user: "admin", withReply };
      case "migr":
        return { subject: s.migrate(node), role: "migration", user: "admin", withReply };
      case "srv":
        // A well-formed PING would be answered with ALIVE; garbage never is.
        return {
          subject: d.chance(0.5) ? s.servers : s.serverPing(node),
          role: "internal",
          user: "admin",
          withReply,
        };
      case "filePeer":
        // Another server's COMMIT, REPLICA, UPDATE or REPAIR: garbage is answered ERROR EINVAL.
        return { subject: s.filePeer(node), role: "file-peer", user: "admin", withReply: true };
      case "fileAll":
        return { subject: s.fileCommitted, role: "internal", user: "admin", withReply };
    }
  }

  // ---- valid requests, the raw material of most families ----

  #dst(type: RequestType): NodeId | typeof ALL {
    const d = this.#d;
    const roll = d.int(100);
    if (roll < 70) return this.#o.node;
    if (roll < 88 && !UNICAST_ONLY_TYPES.has(type)) return ALL;
    return d.pick([2, 3, 0, 65_535]);
  }

  /** A request of `type` that a node would accept as well formed. */
  #validRqst(index: number, type: RequestType = this.#d.weighted(TYPE_WEIGHTS)): Json {
    const d = this.#d;
    const rqst: Json = {
      v: PROTOCOL_VERSION,
      type: d.chance(0.1) ? `RQST_${type}` : type,
      src: d.pick(["fuzz", "fuzz-tool", "fz:1", 7, 1_000]),
      dst: this.#dst(type),
      seq: d.chance(0.5) ? index : d.int(2 ** 31),
    };
    if (d.chance(0.15)) rqst.action = `FUZZ${index}${d.text(4, "ABCDEFGHJKMNPQRSTVWXYZ")}`;
    if (d.chance(0.1)) rqst.timeout = d.pick([1, 50, 2_000]);
    if (d.chance(0.05)) rqst.role = d.pick(["admin", "viewer"]);
    const params = this.#validParams(type);
    if (Object.keys(params).length > 0 || d.chance(0.7)) rqst.params = params;
    return rqst;
  }

  #validParams(type: RequestType): Json {
    const d = this.#d;
    const dcid = d.pick([1, 1, 1, 2, d.int(40)]);
    const endpoint = d.range(-4, 12);
    const limit = d.range(1, 20);
    switch (type) {
      case "DVSINIT":
        return d.chance(0.5) ? {} : { name: "fuzz", nr_dcs: 8, dbglvl: 1 };
      case "GETDVSINFO":
      case "DVSEND":
      case "VMSTAT":
      case "CONTROLLER":
        return {};
      case "DCINIT":
        return { dcid, nodes: [this.#o.node], name: `dc${dcid}`, ...(d.chance(0.5) ? { nr_procs: 16 } : {}) };
      case "GETDCINFO":
      case "DCEND":
        return { dcid };
      case "ADDNODE":
      case "DELNODE":
        return { dcid, nodeid: d.pick([this.#o.node, 2, 3]) };
      case "GETNODEINFO":
      case "GETPROXYSTS":
        return d.chance(0.5) ? {} : { nodeid: d.pick([this.#o.node, 2]) };
      case "GETPROXYINFO":
        return { nodeid: d.pick([this.#o.node, 2]) };
      case "GETPROCINFO":
      case "GETPRIV":
      case "PROCEND":
        return { dcid, endpoint };
      case "SETPRIV":
        return { dcid, endpoint, priv: { rqsts: ["SEND", "*"], endpoints: [1, 2] } };
      case "MIGRATE":
        return { dcid, endpoint, to: d.pick([2, 3, this.#o.node]) };
      case "SPAWN":
        return {
          dcid,
          machine: d.pick(["counter", "kvCell", "nope"]),
          ...(d.chance(0.7) ? { endpoint } : {}),
          ...(d.chance(0.5) ? { input: { count: d.int(10) } } : {}),
        };
      case "SEND":
        return { dcid, endpoint, body: d.pick([{ type: "inc" }, { type: "get" }, "x", null, [1]]) };
      case "COMMAND":
        return {
          command: d.pick(["uptime", "ls", "sh", "constructor"]),
          ...(d.chance(0.3) ? { args: ["-la"] } : {}),
        };
      case "PS":
        return { limit, ...(d.chance(0.5) ? { sort: d.pick(["cpu", "mem", "pid"]) } : {}) };
      case "IFCONFIG":
      case "DF":
      case "MOUNT":
      case "CONTAINER":
        return { limit };
      case "NETSTAT":
        return { limit, ...(d.chance(0.5) ? { protocol: "tcp", state: "LISTEN" } : {}) };
      case "PIDSTAT":
        return { limit, ...(d.chance(0.3) ? { pid: d.pick(this.#safePids) } : {}) };
      case "KILL":
        return {
          pid: d.pick(this.#safePids),
          ...(d.chance(0.5) ? { signal: d.pick(["SIGTERM", "SIGKILL", "HUP", "0"]) } : {}),
        };
    }
  }

  /** A message the file store would accept on `subject` (COMMIT, UPDATE, LS or READ), the raw material of its cases. */
  #validFileMessage(index: number, subject: string): Json {
    const d = this.#d;
    const s = this.#s;
    const name = d.pick(FILE_NAMES);
    const sha256 = Buffer.from(d.bytes(32)).toString("hex");
    const head: Json = d.chance(0.7) ? { v: PROTOCOL_VERSION } : {};
    if (subject === s.fileCommit)
      // Nobody serves the source subject of these commits: the holder's READ finds no responders.
      return {
        ...head,
        type: "COMMIT",
        commit: `fuzz${index}`,
        name,
        size: d.pick([1, 5, CHUNK_BYTES, 10_000_000]),
        sha256,
      };
    if (subject === s.fileUpdate) return { ...head, type: "UPDATE", name };
    if (subject === s.fileLs)
      return { ...head, type: "LS", ...(d.chance(0.5) ? { prefix: d.pick(["", "a", "dir/", "😀"]) } : {}) };
    return {
      ...head,
      type: "READ",
      name,
      version: d.range(1, 3),
      sha256,
      offset: d.pick([0, CHUNK_BYTES, 2 ** 40]),
      length: d.pick([1, 100, CHUNK_BYTES]),
    };
  }

  /** The well-formed message a case of `target` starts from: a file store message on its subjects, else an RQST. */
  #baseFor(index: number, target: Pick<FuzzCase, "subject" | "role">): Json {
    return target.role === "files" ? this.#validFileMessage(index, target.subject) : this.#validRqst(index);
  }

  /** CBOR or JSON (with one of the spellings of its header). */
  #encoded(value: unknown): Pick<FuzzCase, "payload" | "headers"> {
    if (this.#d.chance(0.3)) {
      return { payload: encode(value, "json"), headers: this.#d.pick(JSON_HEADER_VARIANTS) };
    }
    return { payload: encode(value, "cbor") };
  }

  // ---- families ----

  #randomBytes(index: number): FuzzCase {
    const d = this.#d;
    const size = d.chance(0.05) ? 0 : d.logRange(1, 4_096);
    const payload = d.bytes(size);
    const variant = d.pick(["plain", "plain", "json-header", "odd-header"] as const);
    const headers =
      variant === "json-header"
        ? d.pick(JSON_HEADER_VARIANTS)
        : variant === "odd-header"
          ? d.pick(ODD_HEADERS)
          : undefined;
    const target = d.chance(0.85) ? this.#publicTarget() : this.#internalTarget();
    return { index, family: "random-bytes", variant, ...target, payload, ...(headers ? { headers } : {}) };
  }

  #truncated(index: number): FuzzCase {
    const d = this.#d;
    const target = this.#publicTarget();
    const variant = d.weighted({ cut: 60, "trailing-garbage": 15, "length-bomb": 15, "json-cut": 10 });
    const base = this.#baseFor(index, target);
    if (variant === "length-bomb") {
      const bomb = Buffer.from(d.pick(LENGTH_BOMBS), "hex");
      const full = encode(base, "cbor");
      // Whole, or in place of a value inside the envelope.
      const payload = d.chance(0.5) ? bomb : Buffer.concat([full.subarray(0, d.int(full.length)), bomb]);
      return { index, family: "truncated", variant, ...target, payload };
    }
    if (variant === "json-cut") {
      const full = encode(base, "json");
      return {
        index,
        family: "truncated",
        variant,
        ...target,
        payload: full.subarray(0, d.int(full.length)),
        headers: d.pick(JSON_HEADER_VARIANTS),
      };
    }
    const full = encode(base, "cbor");
    if (variant === "trailing-garbage") {
      return {
        index,
        family: "truncated",
        variant,
        ...target,
        payload: Buffer.concat([full, d.bytes(d.range(1, 16))]),
      };
    }
    return { index, family: "truncated", variant, ...target, payload: full.subarray(0, d.int(full.length)) };
  }

  #wrongTypes(index: number): FuzzCase {
    const d = this.#d;
    const target = this.#publicTarget();
    const variant = d.weighted({ field: 45, "params-field": 20, "raw-cbor": 25, "not-a-map": 10 });
    if (variant === "not-a-map") {
      const value = d.pick<unknown>([
        [1, "PS", "fuzz", 1, 1, {}],
        "GETDVSINFO",
        42,
        null,
        true,
        new Uint8Array(8),
        [{ v: 1, type: "PS" }],
      ]);
      return { index, family: "wrong-types", variant, ...target, ...this.#encoded(value) };
    }
    const rqst = this.#baseFor(index, target);
    if (variant === "raw-cbor") {
      // Splice a raw CBOR item in place of a field's value.
      const field = d.pick(
        target.role === "files"
          ? ["v", ...Object.keys(rqst)]
          : ["v", "type", "src", "dst", "seq", "action", "timeout", "role", "params", "params.x"],
      );
      const marker = "@@FUZZ-MARKER@@";
      const withMarker: Json = { ...rqst };
      if (field === "params.x") withMarker.params = { ...(rqst.params as Json | undefined), input: marker };
      else withMarker[field] = marker;
      const encoded = Buffer.from(encode(withMarker, "cbor"));
      const needle = Buffer.from(encode(marker, "cbor"));
      const at = encoded.indexOf(needle);
      const item = Buffer.from(d.pick(RAW_CBOR_ITEMS), "hex");
      const payload =
        at < 0
          ? encoded
          : Buffer.concat([encoded.subarray(0, at), item, encoded.subarray(at + needle.length)]);
      return { index, family: "wrong-types", variant: `${variant}:${field}`, ...target, payload };
    }
    if (variant === "params-field") {
      const params: Json = { ...((rqst.params as Json | undefined) ?? {}) };
      const keys = Object.keys(params);
      const key =
        keys.length > 0 && d.chance(0.8) ? d.pick(keys) : d.pick(["extra", "__proto__", "constructor"]);
      // An own property even for "__proto__" (an assignment would set the prototype).
      Object.defineProperty(params, key, { value: d.pick(WEIRD_VALUES), enumerable: true, writable: true });
      return { index, family: "wrong-types", variant, ...target, ...this.#encoded({ ...rqst, params }) };
    }
    const field = d.pick(
      target.role === "files"
        ? ["v", ...Object.keys(rqst)]
        : ["v", "type", "src", "dst", "seq", "action", "timeout", "role", "params"],
    );
    const weird: Json = { ...rqst, [field]: d.pick(WEIRD_VALUES) };
    if (d.chance(0.1)) delete weird[field];
    return {
      index,
      family: "wrong-types",
      variant: `${variant}:${field}`,
      ...target,
      ...this.#encoded(weird),
    };
  }

  #hugeStrings(index: number): FuzzCase {
    const d = this.#d;
    const target = this.#publicTarget();
    // Mostly tens of KiB; a quarter beyond the node's 256 KiB limit, up to ~1 MB.
    const size = d.chance(0.75)
      ? d.logRange(4_096, MAX_MESSAGE_BYTES - 1_024)
      : d.range(MAX_MESSAGE_BYTES - 64, 990_000);
    const unit = d.pick(["x", "é", "😀", "\u0000", '"', "\\"]);
    const make = (bytes: number) => unit.repeat(Math.max(1, Math.floor(bytes / Buffer.byteLength(unit))));
    const where = d.pick([
      "type",
      "src",
      "action",
      "params.name",
      "params.input",
      "params.key",
      "whole",
      "seq-string",
    ]);
    for (let budget = size; ; budget = Math.floor(budget * 0.8)) {
      const huge = make(budget);
      let value: unknown;
      if (where === "whole") value = huge;
      else if (where === "params.name")
        value = { ...this.#validRqst(index, "DCINIT"), params: { dcid: 1, name: huge } };
      else if (where === "params.input")
        // The one place a long value is valid: a SPAWN input (of a machine that does not exist, mostly).
        value = {
          ...this.#validRqst(index, "SPAWN"),
          dst: this.#o.node,
          params: { dcid: 1, machine: d.chance(0.8) ? "nope" : "counter", input: { blob: huge } },
        };
      else if (where === "params.key")
        value = { ...this.#validRqst(index, "GETDVSINFO"), params: { [huge]: 1 } };
      else if (where === "seq-string") value = { ...this.#validRqst(index), seq: huge };
      else value = { ...this.#validRqst(index), [where]: huge };
      const encoded = this.#encoded(value);
      if (encoded.payload.byteLength <= MAX_FUZZ_PAYLOAD) {
        return { index, family: "huge-strings", variant: where, ...target, ...encoded };
      }
    }
  }

  #unknownTypes(index: number): FuzzCase {
    const d = this.#d;
    const target = this.#publicTarget();
    const type = d.pick([
      () => d.text(d.range(1, 32), "ABCDEFGHIJKLMNOPQRSTUVWXYZ_"),
      () => d.pick(REQUEST_TYPES).toLowerCase(),
      () => `RQST_${d.text(d.range(1, 20), "ABCDEFGHIJKLMNOPQRSTUVWXYZ")}`,
      () => `RQST_RQST_${d.pick(REQUEST_TYPES)}`,
      () => "RQST_",
      () => d.pick(["__proto__", "constructor", "toString", "hasOwnProperty", "valueOf", "then"]),
      () => ` ${d.pick(REQUEST_TYPES)}`,
      () => `${d.pick(REQUEST_TYPES)}\u0000`,
      () => d.pick(["ÉTAT", "😀", "P\u200bS", "PS\n"]),
      () => "",
      () => d.text(d.range(33, 200)),
    ])();
    const rqst = { ...this.#validRqst(index), type };
    return { index, family: "unknown-types", variant: "type", ...target, ...this.#encoded(rqst) };
  }

  #bombs(index: number): FuzzCase {
    const d = this.#d;
    const target = this.#publicTarget();
    const json = d.pick(JSON_HEADER_VARIANTS);
    const variant = d.weighted({
      "deep-array": 25,
      "deep-object": 15,
      "deep-in-params": 15,
      "wide-object": 15,
      "wide-array": 5,
      "big-numbers": 5,
      escapes: 5,
      "cbor-deep": 15,
    });
    const depth = d.chance(0.9) ? d.range(10_000, 14_000) : d.range(14_000, 100_000);
    const text = (s: string) => ({ payload: Buffer.from(s, "utf8"), headers: json });
    const base = () =>
      JSON.stringify(this.#validRqst(index, d.pick(["SPAWN", "SEND", "GETDVSINFO", "PS"]))).slice(0, -1);
    switch (variant) {
      case "deep-array":
        return {
          index,
          family: "bombs",
          variant,
          ...target,
          ...text(`${"[".repeat(depth)}${"]".repeat(depth)}`),
        };
      case "deep-object":
        return {
          index,
          family: "bombs",
          variant,
          ...target,
          ...text(`${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`),
        };
      case "deep-in-params": {
        // In SPAWN's input or SEND's body (z.unknown) the bomb gets past the schema to the node.
        const rqst = this.#validRqst(index, d.pick(["SPAWN", "SEND", "GETDVSINFO"]));
        const field = rqst.type === "SPAWN" || rqst.type === "RQST_SPAWN" ? "input" : "body";
        const params = JSON.stringify({ ...(rqst.params as Json), [field]: "@@" });
        const nested = `${"[".repeat(depth)}${"]".repeat(depth)}`;
        const withParams = JSON.stringify({ ...rqst, params: "@@P@@" }).replace(
          '"@@P@@"',
          params.replace('"@@"', nested),
        );
        return { index, family: "bombs", variant, ...target, ...text(withParams) };
      }
      case "wide-object": {
        const keys = d.range(2_000, 12_000);
        const parts: string[] = [];
        for (let i = 0; i < keys; i++) parts.push(`"k${i}":${i}`);
        const body = parts.join(",");
        return {
          index,
          family: "bombs",
          variant,
          ...target,
          ...text(d.chance(0.5) ? `{${body}}` : `${base()},"params":{${body}}}`),
        };
      }
      case "wide-array":
        return {
          index,
          family: "bombs",
          variant,
          ...target,
          ...text(`${base()},"params":[${"0,".repeat(d.range(10_000, 100_000))}0]}`),
        };
      case "big-numbers":
        return {
          index,
          family: "bombs",
          variant,
          ...target,
          ...text(`${base()},"seq":${"9".repeat(d.range(400, 50_000))},"timeout":1e999}`),
        };
      case "escapes":
        return {
          index,
          family: "bombs",
          variant,
          ...target,
          ...text(`${base()},"src":"${"\\ud800".repeat(d.range(100, 20_000))}"}`),
        };
      case "cbor-deep": {
        // Nested one-element arrays or maps: a recursive decoder runs out of stack.
        const unit = d.pick([[0x81], [0xa1, 0x61, 0x61], [0xd8, 0x1c, 0x81]]);
        const out = new Uint8Array(unit.length * depth + 1);
        for (let i = 0; i < depth; i++) out.set(unit, i * unit.length);
        return { index, family: "bombs", variant, ...target, payload: out };
      }
    }
  }

  #forged(index: number): FuzzCase {
    const d = this.#d;
    const variant = d.weighted({
      "viewer-claims-admin": 35,
      "forged-src": 20,
      "odd-action": 20,
      "forged-action": 12,
      "claimed-role": 10,
      "replayed-action": this.#o.knownAction ? 3 : 0,
    });
    const node = this.#o.node;
    switch (variant) {
      case "viewer-claims-admin": {
        // A mutating request with role "admin" on a read-only subject, for this node or ALL: EPERM.
        const type = d.pick([...MUTATING_TYPES]);
        const rqst: Json = {
          ...this.#validRqst(index, type),
          role: "admin",
          src: d.pick(FORGED_SOURCES),
          dst: UNICAST_ONLY_TYPES.has(type) || d.chance(0.7) ? node : ALL,
        };
        // The default gather timeout: a 1 ms one would rightly answer ETIMEDOUT under load.
        delete rqst.timeout;
        const target = this.#readonlyTarget(d.chance(0.8) ? "viewer" : "admin");
        return {
          index,
          family: "forged-identity",
          variant,
          ...target,
          ...this.#encoded(rqst),
          mustBe: "EPERM",
        };
      }
      case "forged-src": {
        const rqst = { ...this.#validRqst(index), src: d.pick(FORGED_SOURCES) };
        return { index, family: "forged-identity", variant, ...this.#publicTarget(), ...this.#encoded(rqst) };
      }
      case "odd-action": {
        const rqst = { ...this.#validRqst(index), action: d.pick(ODD_ACTION_IDS) };
        return { index, family: "forged-identity", variant, ...this.#publicTarget(), ...this.#encoded(rqst) };
      }
      case "forged-action": {
        // Valid but chosen by the requester: logged under it, like dvsctl's own ids.
        const rqst = {
          ...this.#validRqst(index),
          action: `forged_${index}-${randomToken(this.#d.random, 6)}`,
        };
        return { index, family: "forged-identity", variant, ...this.#publicTarget(), ...this.#encoded(rqst) };
      }
      case "claimed-role": {
        const role = d.pick<unknown>(["admin", "viewer", "root", "ADMIN", 1, null, ["admin"]]);
        const rqst = { ...this.#validRqst(index), role };
        return { index, family: "forged-identity", variant, ...this.#publicTarget(), ...this.#encoded(rqst) };
      }
      case "replayed-action": {
        // Another action's id on a harmless read: it must not rewrite that action's records.
        const rqst = { ...this.#validRqst(index, "GETDVSINFO"), dst: node, action: this.#o.knownAction };
        const target = {
          subject: this.#s.nodeRqst(node),
          role: "request" as const,
          user: "admin" as const,
          withReply: true,
        };
        return { index, family: "forged-identity", variant, ...target, ...this.#encoded(rqst) };
      }
    }
  }

  #mutated(index: number): FuzzCase {
    const d = this.#d;
    const target = this.#publicTarget();
    const rqst = this.#baseFor(index, target);
    const variant = d.weighted({
      "bit-flips": 30,
      "byte-edit": 15,
      "value-tweak": 25,
      "field-swap": 10,
      "field-drop": 8,
      "field-dup": 4,
      "json-text": 8,
    });
    if (variant === "value-tweak") {
      // A boundary value of the right type: mostly still a valid request, so it reaches a handler.
      // A file store message has no params: its own fields are tweaked.
      const out: Json =
        target.role === "files"
          ? { ...rqst }
          : { ...rqst, params: { ...((rqst.params as Json | undefined) ?? {}) } };
      const params = (out.params ?? {}) as Json;
      const holder = Object.keys(params).length > 0 && d.chance(0.7) ? params : out;
      const key = d.pick(Object.keys(holder));
      holder[key] = tweak(d, holder[key]);
      return { index, family: "mutated", variant, ...target, ...this.#encoded(out) };
    }
    if (variant === "field-swap" || variant === "field-drop" || variant === "field-dup") {
      const out: Json = { ...rqst };
      const keys = Object.keys(out);
      const a = d.pick(keys);
      const b = d.pick(keys);
      if (variant === "field-swap") [out[a], out[b]] = [out[b], out[a]];
      else if (variant === "field-drop") delete out[a];
      else out[`${a}_`] = out[a];
      return { index, family: "mutated", variant, ...target, ...this.#encoded(out) };
    }
    if (variant === "json-text") {
      const bytes = Buffer.from(encode(rqst, "json"));
      for (let i = d.range(1, 3); i > 0; i--)
        bytes[d.int(bytes.length)] = d.pick([...'{}[]":,0919aZ\\ ']).charCodeAt(0);
      return {
        index,
        family: "mutated",
        variant,
        ...target,
        payload: bytes,
        headers: d.pick(JSON_HEADER_VARIANTS),
      };
    }
    const encoded = Buffer.from(encode(rqst, "cbor"));
    let bytes: Buffer = encoded;
    if (variant === "bit-flips") {
      for (let i = d.range(1, 8); i > 0; i--) {
        const at = d.int(bytes.length);
        bytes[at] = (bytes[at] ?? 0) ^ (1 << d.int(8));
      }
    } else {
      for (let i = d.range(1, 3); i > 0; i--) {
        const at = d.int(bytes.length + 1);
        const op = d.int(4);
        if (op === 0)
          bytes = Buffer.concat([bytes.subarray(0, at), d.bytes(d.range(1, 4)), bytes.subarray(at)]);
        else if (op === 1) bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + d.range(1, 4))]);
        else if (op === 2)
          bytes = Buffer.concat([
            bytes.subarray(0, at),
            bytes.subarray(Math.max(0, at - 8), at),
            bytes.subarray(at),
          ]);
        else if (at < bytes.length) bytes[at] = d.int(256);
      }
    }
    return { index, family: "mutated", variant, ...target, payload: bytes };
  }

  #internal(index: number): FuzzCase {
    const d = this.#d;
    const target = this.#internalTarget();
    const variant = d.weighted({ "random-bytes": 40, truncated: 20, "wrong-shape": 25, bomb: 10, huge: 5 });
    const node = this.#o.node;
    let value: Pick<FuzzCase, "payload" | "headers">;
    switch (variant) {
      case "random-bytes":
        value = { payload: d.bytes(d.logRange(1, 4_096)) };
        break;
      case "truncated": {
        const full = encode(this.#validRqst(index), "cbor");
        value = { payload: full.subarray(0, d.int(full.length)) };
        break;
      }
      case "wrong-shape": {
        // The shapes of internal traffic, each with a field of the wrong type.
        const shapes: Json[] = [
          { v: 1, node: "2", incarnation: 1, seq: 1, view: { id: 1, members: [1, 2] }, down: [] },
          { v: 1, node: 2, incarnation: -1, seq: 1, view: { id: 1, members: "all" }, down: [] },
          { v: 2, node, incarnation: 1, seq: 1, view: { id: 1, members: [1] }, down: [{}] },
          { v: 1, type: "PS", src: "x", dst: 1, seq: -5, params: {} },
          { v: 1, type: "GETDVSINFO", src: "x", dst: "1", seq: 1 },
          { v: 1, from: 2, entries: [{ dcid: "1", endpoint: 1 }] },
          { v: 1, from: 2, to: node, epoch: 0, pseq: 0, msg: null },
          { kind: "offer", record: 42 },
          { v: 1, type: "X", src: 2, dst: "fuzz", seq: 1, rcode: "0", count: 0, data: null },
          { node: "x", incarnation: null },
        ];
        value = this.#encoded(d.pick(shapes));
        break;
      }
      case "bomb": {
        const depth = d.range(10_000, 14_000);
        value = d.chance(0.5)
          ? { payload: new Uint8Array(depth).fill(0x81) }
          : {
              payload: Buffer.from(`${"[".repeat(depth)}${"]".repeat(depth)}`),
              headers: d.pick(JSON_HEADER_VARIANTS),
            };
        break;
      }
      case "huge":
        value = { payload: encode({ v: 1, node: "x".repeat(d.logRange(100_000, 900_000)) }, "cbor") };
        break;
    }
    return { index, family: "internal-garbage", variant, ...target, ...value };
  }
}

/** A value of the same type as `value`, at or just past a limit of the protocol. */
function tweak(d: Draw, value: unknown): unknown {
  if (typeof value === "number") {
    return d.pick([
      0,
      -1,
      1,
      2,
      31,
      32,
      255,
      65_535,
      65_536,
      -65_536,
      -65_537,
      2 ** 31,
      2 ** 32,
      600_000,
      600_001,
      Number.MAX_SAFE_INTEGER,
      1_000_000,
      1_000_001,
      0.5,
    ]);
  }
  if (typeof value === "string") {
    return d.pick([
      "",
      "x".repeat(32),
      "x".repeat(33),
      "x".repeat(64),
      "x".repeat(65),
      d.text(d.range(1, 16)),
      `RQST_${value}`,
      value.toLowerCase(),
      `${value} `,
    ]);
  }
  if (Array.isArray(value))
    return d.pick([[], [...value, ...value], Array.from({ length: 65 }, (_, i) => i), [value]]);
  if (typeof value === "object" && value !== null) return d.pick([{}, { ...value, extra: 1 }, [value]]);
  return d.pick([null, true, 0, "x"]);
}
