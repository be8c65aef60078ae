// The contract between a process machine and the runtime that hosts it
// (actors/processes/): the events a process receives, and the events it
// emits (XState `emit`) to send messages and make requests. Types only, so
// any machine can depend on it without depending on the runtime.

/** Who sent a message: another process, or a requester (a node or a tool) through a node's SEND. */
export type Sender =
  | {
      readonly kind: "process";
      /** Stable per process incarnation: the unit of ordering (see docs/processes.md). */
      readonly key: string;
      readonly dcid: number;
      readonly endpoint: number;
    }
  | {
      readonly kind: "client";
      readonly key: string;
      /** The node that took the SEND request. */
      readonly node: number;
      /** The requester's `src`: a node id or a tool's client id. */
      readonly src: number | string;
    };

/** A message, delivered once and in order per sender (docs/processes.md, section 5). */
export interface DvsMessageEvent {
  readonly type: "dvs.message";
  readonly from: Sender;
  /** The sender's sequence number toward this process (1, 2, …). */
  readonly seq: number;
  readonly body: unknown;
}

/** The reply to a `dvs.rqst` the process emitted, matched by `id`. */
export interface DvsReplyEvent {
  readonly type: "dvs.rply";
  readonly id: string | number;
  readonly rply: {
    readonly type: string;
    readonly src: number | string;
    readonly rcode: number;
    readonly count: number;
    readonly data: unknown;
  };
}

/** A `dvs.send` or `dvs.rqst` the runtime refused or could not carry out. */
export interface DvsErrorEvent {
  readonly type: "dvs.error";
  readonly op: "dvs.send" | "dvs.rqst";
  /** The `id` of the refused `dvs.rqst`, when it had one. */
  readonly id?: string | number;
  /** EPERM (privileges), ENOENT (no such process), EHOSTDOWN, ETIMEDOUT, EMSGSIZE, EINVAL. */
  readonly error: string;
  readonly message: string;
}

/**
 * The process was started again from its snapshot: on a new node after a
 * migration, after its node restarted, or where it was after a failed move.
 * Delayed transitions (`after`) pending when the snapshot was taken are not
 * carried by XState snapshots: a machine that relies on one re-arms it here.
 */
export interface DvsRestoredEvent {
  readonly type: "dvs.restored";
  readonly cause: "migrated" | "restarted" | "resumed";
}

/** Everything the runtime sends to a process. */
export type DvsEvent = DvsMessageEvent | DvsReplyEvent | DvsErrorEvent | DvsRestoredEvent;

/** Emitted by a process: send `body` to endpoint `endpoint` of DC `dcid` (default: its own DC). */
export interface DvsSendEmitted {
  readonly type: "dvs.send";
  readonly dcid?: number;
  readonly endpoint: number;
  readonly body: unknown;
}

/**
 * Emitted by a process: make a request of type `request` to node `dst`
 * (default: the node hosting the process). Answered by a `dvs.rply` (or a
 * `dvs.error`) carrying the same `id`.
 */
export interface DvsRqstEmitted {
  readonly type: "dvs.rqst";
  readonly id: string | number;
  readonly request: string;
  readonly dst?: number;
  readonly params?: unknown;
}

/** Everything a process may emit that the runtime acts on. */
export type DvsEmitted = DvsSendEmitted | DvsRqstEmitted;

/** The body of a message, as an object with a string `type`, when it is one. */
export function bodyType(body: unknown): string | undefined {
  if (typeof body !== "object" || body === null) return undefined;
  const type = (body as { type?: unknown }).type;
  return typeof type === "string" ? type : undefined;
}

/** A numeric field of a message body, or `fallback`. */
export function bodyNumber(body: unknown, field: string, fallback: number): number {
  if (typeof body !== "object" || body === null) return fallback;
  const value = (body as Record<string, unknown>)[field];
  return typeof value === "number" && Number.isFinite(value) ? value : fallback;
}

/** A string field of a message body, if present. */
export function bodyString(body: unknown, field: string): string | undefined {
  if (typeof body !== "object" || body === null) return undefined;
  const value = (body as Record<string, unknown>)[field];
  return typeof value === "string" ? value : undefined;
}
