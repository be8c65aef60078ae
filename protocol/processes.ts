// The internal messages of processes between nodes (SPEC 3.3, internal and
// free to change): proxy frames on `dvs.<c>._px.<to>`, location announcements
// on `dvs.<c>._loc`, migration offers on `dvs.<c>._migr.<to>`, and the record
// a process is persisted as. zod schemas, so a bad internal message is dropped
// and counted rather than trusted.
import { z } from "zod";
import {
  clientIdSchema,
  dcidSchema,
  ERRORS,
  type ErrorName,
  endpointSchema,
  nodeIdSchema,
  PROTOCOL_VERSION,
} from "./messages.js";

const seqSchema = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
const keySchema = z.string().min(1).max(160);
const machineName = z.string().min(1).max(64);
const errorNameSchema = z.enum(Object.keys(ERRORS) as [ErrorName, ...ErrorName[]]);

export const senderSchema = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("process"), key: keySchema, dcid: dcidSchema, endpoint: endpointSchema }),
  z.strictObject({
    kind: z.literal("client"),
    key: keySchema,
    node: nodeIdSchema,
    src: z.union([nodeIdSchema, clientIdSchema]),
  }),
]);

/** One process message: who sent it, its per-(sender, destination) sequence number, where to. */
export const envelopeSchema = z.strictObject({
  sender: senderSchema,
  seq: seqSchema,
  dcid: dcidSchema,
  endpoint: endpointSchema,
  body: z.unknown(),
  /** Proxy hops so far; a message bounced more than MAX_HOPS times is dropped. */
  hops: z.number().int().min(0).max(64),
});
export type Envelope = z.infer<typeof envelopeSchema>;

export const MAX_HOPS = 8;

/**
 * A frame of the proxy pair `from` → `to`: `pseq` numbers the pair's frames
 * within `epoch` (the sending runtime's incarnation); `base` is the oldest frame
 * the sender has not settled (everything below it was acknowledged or given up).
 * A frame without `base` (an older node, which never resends) counts as `base = pseq`.
 */
export const proxyFrameSchema = z.strictObject({
  v: z.literal(PROTOCOL_VERSION),
  from: nodeIdSchema,
  to: nodeIdSchema,
  epoch: z.number().int().min(0),
  pseq: seqSchema,
  base: seqSchema.optional(),
  msg: envelopeSchema,
});
export type ProxyFrame = z.infer<typeof proxyFrameSchema>;

/** Most acknowledgements in one ack message. */
export const MAX_ACKS = 1_024;

/**
 * Acknowledgements of frames `to` sent `from` in `to`'s epoch `epoch`: each
 * frame delivered (no `error`) or refused for good (`error`, e.g. ENOENT).
 */
export const proxyAckSchema = z.strictObject({
  v: z.literal(PROTOCOL_VERSION),
  kind: z.literal("ack"),
  from: nodeIdSchema,
  to: nodeIdSchema,
  epoch: z.number().int().min(0),
  acks: z
    .array(z.strictObject({ pseq: seqSchema, error: errorNameSchema.optional() }))
    .min(1)
    .max(MAX_ACKS),
});
export type ProxyAckMessage = z.infer<typeof proxyAckSchema>;

/** What arrives on `dvs.<c>._px.<node>`: a frame, or acknowledgements (which carry `kind`). */
export const proxyMessageSchema = z.union([proxyFrameSchema, proxyAckSchema]);

/** Where a process runs: the higher `epoch` wins; `ended` marks a process that is gone. */
export const locationSchema = z.strictObject({
  dcid: dcidSchema,
  endpoint: endpointSchema,
  node: nodeIdSchema,
  epoch: z.number().int().min(1),
  ended: z.boolean(),
  machine: machineName,
  name: z.string().max(64),
});
export type Location = z.infer<typeof locationSchema>;

export const announcementSchema = z.strictObject({
  v: z.literal(PROTOCOL_VERSION),
  from: nodeIdSchema,
  entries: z.array(locationSchema).max(65_536),
});
export type Announcement = z.infer<typeof announcementSchema>;

/** What a process may use. `"*"` in `rqsts` and ANY_ENDPOINT in `endpoints` are wildcards. */
export const privilegesSchema = z.strictObject({
  rqsts: z.array(z.string().max(32)).max(64),
  endpoints: z.array(endpointSchema).max(4096),
});
export type Privileges = z.infer<typeof privilegesSchema>;

/** A message accepted out of order, waiting for the ones before it. */
export const pendingSchema = z.strictObject({ msg: envelopeSchema, since: z.number() });

/** The reorder state of one process: per sender key, the last seq delivered and what waits. */
export const mailboxStateSchema = z.strictObject({
  delivered: z.record(z.string(), z.number().int().min(0)),
  pending: z.record(z.string(), z.array(pendingSchema)),
});
export type MailboxState = z.infer<typeof mailboxStateSchema>;

/** A process as it moves or persists: everything needed to run it on from where it was. */
export const processRecordSchema = z.strictObject({
  v: z.literal(PROTOCOL_VERSION),
  dcid: dcidSchema,
  endpoint: endpointSchema,
  name: z.string().max(64),
  machine: machineName,
  epoch: z.number().int().min(1),
  /** Bumped at each restore from disk: a restored process is a new sender (its seqs may have been lost). */
  gen: z.number().int().min(0),
  priv: privilegesSchema,
  /** `actor.getPersistedSnapshot()` of the process's machine. */
  snapshot: z.unknown(),
  mailbox: mailboxStateSchema,
  /** Accepted in order but not yet handed to the actor; delivered first. */
  ready: z.array(envelopeSchema),
  /** Per destination `dcid:endpoint`, the last seq this process sent there. */
  sendSeq: z.record(z.string(), z.number().int().min(0)),
  delivered: z.number().int().min(0),
  spawnedAt: z.number(),
  /**
   * Set on a copy that arrived by migration and that its old host has not
   * confirmed yet: the old host's node. It holds new messages until confirmed.
   */
  provisional: nodeIdSchema.optional(),
});
export type ProcessRecord = z.infer<typeof processRecordSchema>;

/** Sent by the old host to the new one (request/reply on `_migr.<to>`). */
export const migrationOfferSchema = z.strictObject({
  v: z.literal(PROTOCOL_VERSION),
  kind: z.literal("offer"),
  from: nodeIdSchema,
  process: processRecordSchema,
  /** Messages that arrived while the process was stopped for the move, in arrival order. */
  stash: z.array(envelopeSchema),
});
export type MigrationOffer = z.infer<typeof migrationOfferSchema>;

/**
 * Sent by the old host when the offer timed out (request/reply, retried until
 * answered `{ok: true}`): the target drops the copy it may have started.
 */
export const migrationAbortSchema = z.strictObject({
  v: z.literal(PROTOCOL_VERSION),
  kind: z.literal("abort"),
  from: nodeIdSchema,
  dcid: dcidSchema,
  endpoint: endpointSchema,
  epoch: z.number().int().min(1),
});

/**
 * Sent by a node holding a provisional copy to the old host (request/reply,
 * resent until it gets a final answer): did the move at `epoch` happen?
 */
export const migrationQuerySchema = z.strictObject({
  v: z.literal(PROTOCOL_VERSION),
  kind: z.literal("query"),
  from: nodeIdSchema,
  dcid: dcidSchema,
  endpoint: endpointSchema,
  epoch: z.number().int().min(1),
});

export const migrationMessageSchema = z.discriminatedUnion("kind", [
  migrationOfferSchema,
  migrationAbortSchema,
  migrationQuerySchema,
]);

/** The old host's answer to a query: the move happened, did not (its copy runs), or is still under way. */
export const migrationQueryReplySchema = z.strictObject({
  outcome: z.enum(["committed", "aborted", "pending"]),
});
export type MigrationQueryReply = z.infer<typeof migrationQueryReplySchema>;

export const migrationReplySchema = z.discriminatedUnion("ok", [
  z.strictObject({ ok: z.literal(true), proc: z.unknown() }),
  z.strictObject({ ok: z.literal(false), error: errorNameSchema, message: z.string().max(512) }),
]);
export type MigrationReply = z.infer<typeof migrationReplySchema>;

/** Bits of `proc_usr.flags`. */
export const PROC_FLAGS = {
  /** Stopped for a move; messages are held (`waitmigr`). */
  MIGRATING: 1,
  /** Restored from its persisted snapshot when the node started. */
  RESTORED: 2,
  /** Its privileges are not the default (unrestricted) ones. */
  RESTRICTED: 4,
  /** Its machine failed (an action threw); messages to it are dropped. */
  FAILED: 8,
  /** Arrived by migration, not yet confirmed by its old host: new messages are held. */
  PROVISIONAL: 16,
} as const;

/** In `priv.endpoints`: any endpoint. The largest endpoint the protocol accepts, reserved (SPAWN refuses it). */
export const ANY_ENDPOINT = 65_536;
/** In `priv.rqsts`: any request type. */
export const ANY_RQST = "*";
/** What a process may do by default: everything. */
export const UNRESTRICTED: Privileges = { rqsts: [ANY_RQST], endpoints: [ANY_ENDPOINT] };
