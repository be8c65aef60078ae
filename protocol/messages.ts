// The DVS wire protocol: RQST, RPLY and membership event messages (SPEC 3.1),
// the request types of SPEC 5 with the params each accepts, and the table of
// named error codes. Validation is by zod schemas, so the types and the checks
// cannot drift apart.
import { z } from "zod";
import { hostAddressSchema } from "./hostAddress.js";

export const PROTOCOL_VERSION = 1;

/**
 * Largest encoded RQST a node accepts (bytes); larger ones are answered EMSGSIZE.
 * Replies are bounded by the transport's max payload instead (nats.conf max_payload).
 */
export const MAX_MESSAGE_BYTES = 256 * 1024;

/** The destination meaning "every member of the current view" (the seed's DVS_ALLNODES). */
export const ALL = "ALL";

/**
 * Every request type of SPEC 5, grouped as there, plus three process requests of
 * this runtime (SPAWN, SEND, PROCEND) that start, message and end a process.
 * The seed's `RQST_` prefix is accepted on input.
 */
export const REQUEST_GROUPS = {
  dvs: ["DVSINIT", "GETDVSINFO", "DVSEND"],
  dc: ["DCINIT", "GETDCINFO", "DCEND"],
  node: ["ADDNODE", "GETNODEINFO", "DELNODE", "GETPROXYINFO", "GETPROXYSTS"],
  process: ["GETPROCINFO", "SETPRIV", "GETPRIV", "MIGRATE", "SPAWN", "SEND", "PROCEND"],
  host: [
    "COMMAND",
    "PS",
    "VMSTAT",
    "IFCONFIG",
    "NETSTAT",
    "DF",
    "MOUNT",
    "KILL",
    "PIDSTAT",
    "CONTAINER",
    "CONTROLLER",
  ],
} as const;

export type RequestGroup = keyof typeof REQUEST_GROUPS;
export type RequestType = (typeof REQUEST_GROUPS)[RequestGroup][number];
export const REQUEST_TYPES: readonly RequestType[] = Object.values(REQUEST_GROUPS).flat();

export function isRequestType(value: unknown): value is RequestType {
  return typeof value === "string" && (REQUEST_TYPES as readonly string[]).includes(value);
}

/** Requests that change a node or its host; refused with EPERM for requesters without the right. */
export const MUTATING_TYPES: ReadonlySet<RequestType> = new Set<RequestType>([
  "DVSINIT",
  "DVSEND",
  "DCINIT",
  "DCEND",
  "ADDNODE",
  "DELNODE",
  "SETPRIV",
  "MIGRATE",
  "SPAWN",
  "SEND",
  "PROCEND",
  "COMMAND",
  "KILL",
]);

/**
 * Who a requester is to a node. The subject a request arrives on decides it:
 * the read-only subjects (the `viewer` user of nats.conf) make it `viewer`, the
 * full ones `admin`; nodes pass a request on with its role in the RQST.
 */
export const ROLES = ["admin", "viewer"] as const;
export type Role = (typeof ROLES)[number];

/** Requests that act on one process (or one pid of one host): `dst: ALL` is refused with EINVAL. */
export const UNICAST_ONLY_TYPES: ReadonlySet<RequestType> = new Set<RequestType>([
  // A pid means something on one host only.
  "KILL",
  "SPAWN",
  "SEND",
  "MIGRATE",
  "PROCEND",
  "SETPRIV",
]);

/**
 * Named error codes, negative as in the original DVS (and as Linux errno where one fits).
 * A reply's `rcode` is 0, a positive result (DVSINIT: node id, DCINIT: DCID), or one of these.
 */
export const ERRORS = {
  EPERM: { code: -1, meaning: "not permitted for this requester" },
  ENOENT: { code: -2, meaning: "no such DVS, DC, node, process or file" },
  EAGAIN: { code: -11, meaning: "try again: the action log cannot be written, or no coordinator yet" },
  EBUSY: { code: -16, meaning: "resource busy" },
  EEXIST: { code: -17, meaning: "already exists" },
  EINVAL: { code: -22, meaning: "a parameter has a bad value" },
  ENOSPC: { code: -28, meaning: "a DVS or DC limit is reached (nr_dcs, nr_nodes, nr_procs, nr_tasks)" },
  EROFS: { code: -30, meaning: "read-only: this node's component holds no majority (quorum mode)" },
  ENOSYS: { code: -38, meaning: "unknown or unimplemented request type" },
  EBADMSG: { code: -74, meaning: "malformed message: undecodable, or not of the documented shape" },
  EMSGSIZE: { code: -90, meaning: "message larger than the protocol limit" },
  ETIMEDOUT: { code: -110, meaning: "the node did not answer in time" },
  EHOSTDOWN: { code: -112, meaning: "the node is not in the view" },
  ENOTINIT: { code: -300, meaning: "DVS not initialised on that node (send DVSINIT first)" },
} as const;

export type ErrorName = keyof typeof ERRORS;
export const rcode = (name: ErrorName): number => ERRORS[name].code;

/** The name of a negative rcode, or undefined for results and unknown codes. */
export function errorName(code: number): ErrorName | undefined {
  return (Object.keys(ERRORS) as ErrorName[]).find((n) => ERRORS[n].code === code);
}

// ---- shared field schemas ----

/** Node ids are small non-negative integers, as in the original DVS. */
/** The largest node id. */
const MAX_NODE_ID = 65_535;
export const nodeIdSchema = z.number().int().min(0).max(MAX_NODE_ID);
export type NodeId = z.infer<typeof nodeIdSchema>;

/** A tool's client id: letters, digits, `-`, `_`, `.`, `:`, at most 64 characters. */
const CLIENT_ID = /^[A-Za-z0-9_.:-]{1,64}$/;
export const clientIdSchema = z.string().min(1).max(64).regex(CLIENT_ID);

function isNodeId(value: unknown): value is NodeId {
  return typeof value === "number" && Number.isInteger(value) && value >= 0 && value <= MAX_NODE_ID;
}

/** A node id or a client id; `""` too where `alsoEmpty` (a reply's `dst`). */
export function isRequester(value: unknown, alsoEmpty = false): value is NodeId | string {
  return (
    isNodeId(value) || (typeof value === "string" && (CLIENT_ID.test(value) || (alsoEmpty && value === "")))
  );
}

/** A node id or ALL: a request's `dst`. */
export function isDestination(value: unknown): value is NodeId | typeof ALL {
  return isNodeId(value) || value === ALL;
}

/**
 * A node id or a client id (a request's `src`, a reply's `src` and `dst`;
 * `""` too where `alsoEmpty`). One predicate instead of a union of
 * nodeIdSchema and clientIdSchema: every request and every reply is checked
 * with it, and a union runs each option on its own payload, the failed one
 * building its issue, which took a quarter of a request's validation.
 */
function requesterSchema(options: { readonly alsoEmpty?: boolean } = {}) {
  const { alsoEmpty = false } = options;
  return z.custom<NodeId | string>((v) => isRequester(v, alsoEmpty), {
    message: `expected a node id (an integer 0–65535) or a client id (1–64 of A-Z a-z 0-9 _ . : -)${alsoEmpty ? ', or ""' : ""}`,
  });
}

/** A node id or ALL: a request's `dst`. The same single check as requesterSchema. */
const destinationSchema = z.custom<NodeId | typeof ALL>(isDestination, {
  message: `expected a node id (an integer 0–65535) or "${ALL}"`,
});

/**
 * An action id (SPEC 6.4): letters, digits, `-` and `_`, at most 64, so it is
 * one subject token of the action log. Nodes make ULIDs (time-ordered, unique).
 */
export const ACTION_ID = /^[A-Za-z0-9_-]{1,64}$/;
export const actionIdSchema = z.string().min(1).max(64).regex(ACTION_ID);

/** A process id: Linux never hands out one above 2^22 (PID_MAX_LIMIT). */
export const pidSchema = z.number().int().min(1).max(4_194_304);

export const dcidSchema = z.number().int().min(0).max(65_535);
export const endpointSchema = z.number().int().min(-65_536).max(65_536);
const count = z.number().int().min(0).max(1_000_000);
const name = z.string().min(1).max(64);

// ---- params per request type ----

/** The params of a type that takes none: only `{}`. */
export const EMPTY_PARAMS = z.strictObject({});

/** `dvs_usr` of the seed: the DVS-wide limits, all optional at DVSINIT (defaults apply). */
export const dvsUsrSchema = z.strictObject({
  name: name.optional(),
  nr_dcs: count.optional(),
  nr_nodes: count.optional(),
  nr_procs: count.optional(),
  nr_tasks: count.optional(),
  nr_sysprocs: count.optional(),
  max_copybuf: count.optional(),
  max_copylen: count.optional(),
  dbglvl: z.number().int().min(0).max(0xffff_ffff).optional(),
  version: z.string().max(32).optional(),
});

/** `dc_usr` of the seed: a DC's configuration; `dcid` is required. */
export const dcUsrSchema = z.strictObject({
  dcid: dcidSchema,
  flags: z.number().int().min(0).optional(),
  nr_procs: count.optional(),
  nr_tasks: count.optional(),
  nr_sysprocs: count.optional(),
  nr_nodes: count.optional(),
  nodes: z.array(nodeIdSchema).max(65_536).optional(),
  warn2proc: endpointSchema.optional(),
  warnmsg: z.number().int().optional(),
  name: name.optional(),
});

const dcRef = z.strictObject({ dcid: dcidSchema });
const dcNode = z.strictObject({ dcid: dcidSchema, nodeid: nodeIdSchema });
const procRef = z.strictObject({ dcid: dcidSchema, endpoint: endpointSchema });

export const PARAMS = {
  DVSINIT: dvsUsrSchema,
  GETDVSINFO: EMPTY_PARAMS,
  DVSEND: EMPTY_PARAMS,
  DCINIT: dcUsrSchema,
  GETDCINFO: dcRef,
  /** `force`: end the DC's processes too (without it, DCEND refuses with EBUSY while any runs). */
  DCEND: z.strictObject({ dcid: dcidSchema, force: z.boolean().optional() }),
  ADDNODE: dcNode,
  DELNODE: dcNode,
  GETNODEINFO: z.strictObject({ nodeid: nodeIdSchema.optional() }),
  GETPROXYINFO: z.strictObject({ nodeid: nodeIdSchema }),
  GETPROXYSTS: z.strictObject({ nodeid: nodeIdSchema.optional() }),
  GETPROCINFO: procRef,
  SETPRIV: z.strictObject({
    dcid: dcidSchema,
    endpoint: endpointSchema,
    priv: z.strictObject({
      rqsts: z.array(z.string().max(32)).max(64),
      endpoints: z.array(endpointSchema).max(4096),
    }),
  }),
  GETPRIV: procRef,
  MIGRATE: z.strictObject({ dcid: dcidSchema, endpoint: endpointSchema, to: nodeIdSchema }),
  SPAWN: z.strictObject({
    dcid: dcidSchema,
    /** Chosen by the node (lowest free one it knows of) when absent. */
    endpoint: endpointSchema.optional(),
    /** The registered machine's name. */
    machine: name,
    name: name.optional(),
    /** The machine's input. */
    input: z.unknown().optional(),
  }),
  SEND: z.strictObject({ dcid: dcidSchema, endpoint: endpointSchema, body: z.unknown() }),
  PROCEND: procRef,
  COMMAND: z.strictObject({
    command: z.string().min(1).max(64),
    args: z.array(z.string().max(4096)).max(64).optional(),
  }),
  /** Host lists carry at most `limit` items (a default applies when absent); rcode says how many there were. */
  PS: z.strictObject({
    limit: z.number().int().min(1).max(2_000).optional(),
    sort: z.enum(["cpu", "mem", "pid"]).optional(),
  }),
  VMSTAT: EMPTY_PARAMS,
  IFCONFIG: z.strictObject({ limit: z.number().int().min(1).max(5_000).optional() }),
  NETSTAT: z.strictObject({
    limit: z.number().int().min(1).max(5_000).optional(),
    protocol: z.enum(["tcp", "udp"]).optional(),
    state: z
      .enum([
        "ESTABLISHED",
        "SYN_SENT",
        "SYN_RECV",
        "FIN_WAIT1",
        "FIN_WAIT2",
        "TIME_WAIT",
        "CLOSE",
        "CLOSE_WAIT",
        "LAST_ACK",
        "LISTEN",
        "CLOSING",
        "NEW_SYN_RECV",
        "UNCONN",
      ])
      .optional(),
  }),
  DF: z.strictObject({ limit: z.number().int().min(1).max(5_000).optional() }),
  MOUNT: z.strictObject({ limit: z.number().int().min(1).max(5_000).optional() }),
  /** `signal` is checked against KILL's allow-list by the node (EINVAL), not here. */
  KILL: z.strictObject({ pid: pidSchema, signal: z.string().max(16).optional() }),
  PIDSTAT: z.strictObject({
    pid: pidSchema.optional(),
    limit: z.number().int().min(1).max(2_000).optional(),
    sort: z.enum(["cpu", "mem", "pid"]).optional(),
  }),
  CONTAINER: z.strictObject({ limit: z.number().int().min(1).max(5_000).optional() }),
  CONTROLLER: EMPTY_PARAMS,
} satisfies Record<RequestType, z.ZodType>;

export type Params<T extends RequestType> = z.infer<(typeof PARAMS)[T]>;

// ---- messages ----

/** The longest request type a RQST may name (with the seeds' `RQST_` prefix). */
export const MAX_TYPE_LENGTH = 32;
/** The `RQST_` prefix the seeds' names carry is accepted and dropped by parseRqst, not here (a transform costs each request). */
const typeField = z.string().max(MAX_TYPE_LENGTH);

/** The longest gather or forward timeout a RQST may ask for (ms). */
export const MAX_RQST_TIMEOUT_MS = 600_000;

/**
 * An admin's signature over a request (protocol/adminSignature.ts says what is
 * signed): nodes serve a mutating request that another node passed on only when
 * it carries one by a key they trust.
 */
export const rqstAuthSchema = z.strictObject({
  /** The admin's public nkey (a user key, `U…`). */
  key: z.string().regex(/^U[A-Z2-7]{55}$/),
  /** When it was signed (ms since the epoch, the admin's clock). */
  at: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  /** Unique per signed request: a node serves each (key, nonce) once. */
  nonce: z.string().regex(/^[A-Za-z0-9_-]{16,32}$/),
  /** The `dst` the admin addressed; relays rewrite the envelope's own `dst`. */
  dst: z.union([nodeIdSchema, z.literal(ALL)]),
  /** The Ed25519 signature, base64url without padding (64 bytes). */
  sig: z.string().regex(/^[A-Za-z0-9_-]{86}$/),
});
export type RqstAuth = z.infer<typeof rqstAuthSchema>;

/** The RQST envelope. `type` is checked against REQUEST_TYPES separately, so an unknown type is ENOSYS, not EBADMSG. */
export const rqstEnvelopeSchema = z.strictObject({
  v: z.literal(PROTOCOL_VERSION),
  type: typeField,
  src: requesterSchema(),
  dst: destinationSchema,
  seq: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  action: actionIdSchema.optional(),
  /** The requester's role; honoured only on the internal subjects nodes pass requests on. */
  role: z.enum(ROLES).optional(),
  /** How long a node may take gathering the answers of a forwarded or `ALL` request (ms). */
  timeout: z.number().int().min(1).max(MAX_RQST_TIMEOUT_MS).optional(),
  params: z.unknown().optional(),
  /** An admin's signature, required of a mutating request passed on between nodes. */
  auth: rqstAuthSchema.optional(),
});
export type RqstEnvelope = z.infer<typeof rqstEnvelopeSchema>;

export interface Rqst<T extends RequestType = RequestType> {
  readonly v: typeof PROTOCOL_VERSION;
  readonly type: T;
  readonly src: NodeId | string;
  readonly dst: NodeId | typeof ALL;
  readonly seq: number;
  readonly action?: string;
  readonly role?: Role;
  readonly timeout?: number;
  readonly params: Params<T>;
  readonly auth?: RqstAuth;
}

export const rplySchema = z.strictObject({
  v: z.literal(PROTOCOL_VERSION),
  type: z.string().max(32),
  src: requesterSchema(),
  dst: requesterSchema({ alsoEmpty: true }),
  seq: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  rcode: z.number().int(),
  count: z.number().int().min(0),
  /** The action id the request was logged under (6.4), when it was. */
  action: actionIdSchema.optional(),
  /** The answering node's host address (seed 001 `ipaddr`), on answers passed between nodes. */
  addr: hostAddressSchema.optional(),
  data: z.unknown(),
});
export type Rply = z.infer<typeof rplySchema>;

/** What an error reply carries in `data`: a readable message and, for EBADMSG, the failing paths. */
export interface ErrorData {
  readonly error: ErrorName | "EUNKNOWN";
  readonly message: string;
  readonly issues?: readonly { readonly path: string; readonly message: string }[];
}

/** `count` is the number of entries in `data` (an array's length, 1 for any other value, 0 for none). */
export function countOf(data: unknown): number {
  if (data === undefined || data === null) return 0;
  return Array.isArray(data) ? data.length : 1;
}

// ---- membership events ----

export const MEMBERSHIP_EVENTS = ["JOIN", "DISCONNECT", "PARTITION", "MERGE"] as const;
export type MembershipEventName = (typeof MEMBERSHIP_EVENTS)[number];

/** A node incarnation: a restart of the same node id is a new incarnation. */
export interface Member {
  readonly node: NodeId;
  readonly incarnation: number;
}

/** A view (SPEC 4): its id and its members. */
export interface View {
  readonly id: number;
  /** Node ids, sorted ascending. */
  readonly members: readonly NodeId[];
}

export const memberSchema = z.strictObject({
  node: nodeIdSchema,
  incarnation: z.number().int().min(0),
}) satisfies z.ZodType<Member>;

export const viewSchema = z.strictObject({
  id: z.number().int().min(0),
  members: z.array(nodeIdSchema),
}) satisfies z.ZodType<View>;

export const eventSchema = z.strictObject({
  v: z.literal(PROTOCOL_VERSION),
  node: nodeIdSchema,
  /** The observing node's incarnation. */
  incarnation: z.number().int().min(0),
  event: z.enum(MEMBERSHIP_EVENTS),
  view: viewSchema,
  changed: z.array(memberSchema),
  cause: z.string().max(256),
  at: z.number(),
});
export type EventMessage = z.infer<typeof eventSchema>;

// ---- election and registry (SPEC 7) ----

/** A server's type (seed 002): active servers take the file store's work; passive ones hold replicas. */
export const SERVER_TYPES = ["active", "passive"] as const;
export type ServerType = (typeof SERVER_TYPES)[number];

/** A coordinator term: the store revision of the write that opened it (the fencing token). */
export const epochSchema = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);

/** Public, on `dvs.<c>.dns.who`: an empty payload also counts as WHO. */
export const whoSchema = z.strictObject({
  v: z.literal(PROTOCOL_VERSION).optional(),
  type: z.literal("WHO"),
});

/** Public, on `dvs.<c>.dns.failed`: a client could not reach the coordinator of `epoch`. */
export const failedSchema = z.strictObject({
  v: z.literal(PROTOCOL_VERSION).optional(),
  type: z.literal("FAILED"),
  coordinator: nodeIdSchema,
  epoch: epochSchema,
});

/** The registry's answer to WHO and FAILED. */
export const registryAnswerSchema = z.discriminatedUnion("type", [
  z.strictObject({
    v: z.literal(PROTOCOL_VERSION),
    type: z.literal("OK"),
    coordinator: nodeIdSchema,
    epoch: epochSchema,
  }),
  z.strictObject({ v: z.literal(PROTOCOL_VERSION), type: z.literal("NOTHING") }),
  /**
   * The question could not be read (undecodable, not plain data, not WHO or FAILED, or not of its
   * shape): EBADMSG. Nodes before strict decoding answered EINVAL, which is still read.
   */
  z.strictObject({
    v: z.literal(PROTOCOL_VERSION),
    type: z.literal("ERROR"),
    error: z.enum(["EBADMSG", "EINVAL"]),
  }),
]);
export type RegistryAnswer = z.infer<typeof registryAnswerSchema>;

/** A file version a server holds on disk, as ALIVE lists it (protocol/files.ts). */
export const heldFileSchema = z.strictObject({
  name: z.string().min(1).max(200),
  version: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});
export type HeldFile = z.infer<typeof heldFileSchema>;

const serverHeader = {
  v: z.literal(PROTOCOL_VERSION),
  from: nodeIdSchema,
  incarnation: z.number().int().min(0),
  /** The highest coordinator epoch the sender knows (the coordinator's own, when it sends). */
  epoch: z.number().int().min(0),
};

/** Internal, on `dvs.<c>._srv.*`: the servers' liveness and election messages. */
export const serverMessageSchema = z.discriminatedUnion("type", [
  z.strictObject({ ...serverHeader, type: z.literal("SERVER"), server: z.enum(SERVER_TYPES) }),
  z.strictObject({
    ...serverHeader,
    type: z.literal("ALIVE"),
    server: z.enum(SERVER_TYPES),
    /** Whom the sender takes for the coordinator. */
    coordinator: nodeIdSchema.nullable(),
    files: z.array(heldFileSchema).max(100_000),
  }),
  z.strictObject({ ...serverHeader, type: z.literal("STATUS") }),
  z.strictObject({ ...serverHeader, type: z.literal("PING") }),
  z.strictObject({ ...serverHeader, type: z.literal("ELECTION") }),
  z.strictObject({ ...serverHeader, type: z.literal("ELECTED") }),
]);
export type ServerMessage = z.infer<typeof serverMessageSchema>;
export type ServerMessageType = ServerMessage["type"];

/** The registry's record in the store (JSON, so `nats kv get` shows it). */
export const coordinatorRecordSchema = z.strictObject({
  v: z.literal(PROTOCOL_VERSION),
  /** Null while the registry has no coordinator (after ELECTION, or a graceful step-down). */
  coordinator: nodeIdSchema.nullable(),
  /** The term; null in the write that opens it, whose revision is then the epoch. */
  epoch: epochSchema.nullable(),
  /** Who wrote this revision. */
  writer: nodeIdSchema,
  at: z.number(),
});
export type CoordinatorRecord = z.infer<typeof coordinatorRecordSchema>;

/** On `dvs.<c>.events`: the coordinator changed (a node won a term, or stepped down from one). */
export const coordinatorEventSchema = z.strictObject({
  v: z.literal(PROTOCOL_VERSION),
  node: nodeIdSchema,
  incarnation: z.number().int().min(0),
  event: z.literal("COORDINATOR"),
  /** The coordinator from now on, or null when `node` stepped down from `epoch`. */
  coordinator: nodeIdSchema.nullable(),
  epoch: epochSchema,
  cause: z.string().max(256),
  at: z.number(),
});
export type CoordinatorEvent = z.infer<typeof coordinatorEventSchema>;

/** Anything on `dvs.<c>.events`. */
export const clusterEventSchema = z.union([eventSchema, coordinatorEventSchema]);
export type ClusterEvent = z.infer<typeof clusterEventSchema>;

/** What a node reports about itself on `dvs.<c>._status` (for `dvsctl members`). */
export const nodeStatusSchema = z.strictObject({
  v: z.literal(PROTOCOL_VERSION),
  node: nodeIdSchema,
  incarnation: z.number().int().min(0),
  state: z.string().max(32),
  view: viewSchema,
  minority: z.boolean(),
  peers: z.array(
    z.strictObject({ node: nodeIdSchema, incarnation: z.number().int().min(0), state: z.string().max(16) }),
  ),
  pid: z.number().int(),
});
export type NodeStatus = z.infer<typeof nodeStatusSchema>;

/** Flattens zod issues into `path: message` pairs for error replies and logs. */
export function describeIssues(error: z.ZodError): { path: string; message: string }[] {
  return error.issues.slice(0, 16).map((i) => ({
    path: i.path.length ? i.path.map(String).join(".") : "(root)",
    message: i.message,
  }));
}

/** A message followed by its issues, one `  - path: message` line each (errors that list every bad key). */
export function withIssues(message: string, issues: readonly { path: string; message: string }[]): string {
  return issues.length
    ? `${message}\n${issues.map((i) => `  - ${i.path}: ${i.message}`).join("\n")}`
    : message;
}

/** `node_usr` flags. */
export const NODE_FLAGS = { initialized: 1, inView: 2, minority: 4 } as const;
