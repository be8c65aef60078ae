// The replicated file store's messages (SPEC 8, seed 002): what a client sends
// the coordinator (COMMIT, UPDATE, LS) and reads back, what servers send each
// other (COMMIT, REPLICA, UPDATE, REPAIR and their DONE, SUCCESS, FILE, BUSY
// answers), READ for the bytes, and the catalog record in the store.
import { z } from "zod";
import { epochSchema, nodeIdSchema, PROTOCOL_VERSION } from "./messages.js";

/** Bytes per READ: under the protocol's message limit with room for the envelope. */
export const CHUNK_BYTES = 192 * 1024;

/**
 * A file name: 1 to 180 characters (its base64url form is one directory entry on a holder's disk) of letters, digits, `.`, `_`, `-` and `/`,
 * not starting with `/` or `.`, with no empty, `.` or `..` segment.
 */
export const fileNameSchema = z
  .string()
  .min(1)
  .max(180)
  .regex(/^[A-Za-z0-9_-][A-Za-z0-9._/-]*$/, "letters, digits, '.', '_', '-' and '/' only")
  .refine(
    (name) => name.split("/").every((s) => s !== "" && s !== "." && s !== ".."),
    "no empty, '.' or '..' path segment",
  );

/** A file version: 1, 2, 3… per file, in the order the commits were recorded. */
export const fileVersionSchema = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);

/** SHA-256 of the bytes, lowercase hex. */
export const sha256Schema = z.string().regex(/^[0-9a-f]{64}$/, "64 lowercase hex digits");

/** How many earlier commit ids a catalog record keeps, for retries that come late. */
export const RECENT_COMMITS = 32;

/** A commit's id, chosen by the client (dvsctl: a ULID); a retry with the same id is the same commit. */
export const commitIdSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9_-]+$/);

const sizeSchema = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const v = z.literal(PROTOCOL_VERSION);
const opt = z.literal(PROTOCOL_VERSION).optional();

/** One version of one file: what identifies the bytes. */
export const fileIdentitySchema = z.strictObject({
  name: fileNameSchema,
  version: fileVersionSchema,
  sha256: sha256Schema,
  size: sizeSchema,
});
export type FileIdentity = z.infer<typeof fileIdentitySchema>;

/** A file error's name: EBADMSG, EINVAL, ENOENT, EBUSY, EAGAIN, ENOSPC, EROFS, EIO, ESTALE, ETIMEDOUT. */
export const FILE_ERRORS = [
  "EBADMSG",
  "EINVAL",
  "ENOENT",
  "EBUSY",
  "EAGAIN",
  "ENOSPC",
  "EROFS",
  "EIO",
  "ESTALE",
  "ETIMEDOUT",
] as const;
export type FileErrorName = (typeof FILE_ERRORS)[number];

// ---- public: client <-> coordinator, JSON or CBOR ----

/**
 * On `dvs.<c>.file.commit`. The client serves the bytes on
 * `dvs.<c>.file.src.<commit>` (READ) until it has the answer.
 */
export const commitRequestSchema = z.strictObject({
  v: opt,
  type: z.literal("COMMIT"),
  commit: commitIdSchema,
  name: fileNameSchema,
  size: sizeSchema,
  sha256: sha256Schema,
});
export type CommitRequest = z.infer<typeof commitRequestSchema>;

/** On `dvs.<c>.file.update`: the newest version of `name`. */
export const updateRequestSchema = z.strictObject({
  v: opt,
  type: z.literal("UPDATE"),
  name: fileNameSchema,
});
export type UpdateRequest = z.infer<typeof updateRequestSchema>;

/** On `dvs.<c>.file.ls`: the catalog, optionally the names under a prefix. */
export const lsRequestSchema = z.strictObject({
  v: opt,
  type: z.literal("LS"),
  prefix: z.string().max(200).optional(),
});
export type LsRequest = z.infer<typeof lsRequestSchema>;

/**
 * On `dvs.<c>.file.read.<node>` (a holder's bytes) and `dvs.<c>.file.src.<commit>`
 * (a committing client's bytes): `length` bytes from `offset` of that version.
 */
export const readRequestSchema = z.strictObject({
  v: opt,
  type: z.literal("READ"),
  name: fileNameSchema,
  version: fileVersionSchema,
  sha256: sha256Schema,
  offset: sizeSchema,
  length: z.number().int().min(1).max(CHUNK_BYTES),
});
export type ReadRequest = z.infer<typeof readRequestSchema>;

export const fileListingSchema = z.strictObject({
  ...fileIdentitySchema.shape,
  /** Servers whose ALIVE lists this version (the catalog's holders when none has been heard yet). */
  holders: z.array(nodeIdSchema),
  /** When the version was recorded (coordinator's clock, ms since the epoch). */
  at: z.number(),
});
export type FileListing = z.infer<typeof fileListingSchema>;

/** The coordinator's answers, and a holder's answer to READ. */
export const fileAnswerSchema = z.discriminatedUnion("type", [
  z.strictObject({
    v,
    type: z.literal("SUCCESS"),
    ...fileIdentitySchema.shape,
    holders: z.array(nodeIdSchema),
  }),
  /** UPDATE: read the bytes from `source` (a holder) with READ. */
  z.strictObject({ v, type: z.literal("FILE"), ...fileIdentitySchema.shape, source: nodeIdSchema }),
  z.strictObject({ v, type: z.literal("LIST"), files: z.array(fileListingSchema) }),
  z.strictObject({
    v,
    type: z.literal("DATA"),
    offset: sizeSchema,
    data: z.custom<Uint8Array>((x) => x instanceof Uint8Array, "bytes"),
  }),
  z.strictObject({ v, type: z.literal("ERROR"), error: z.enum(FILE_ERRORS), message: z.string().max(1024) }),
]);
export type FileAnswer = z.infer<typeof fileAnswerSchema>;

/** Longest base64 text of one chunk: CHUNK_BYTES bytes, padded. */
export const MAX_CHUNK_BASE64 = 4 * Math.ceil(CHUNK_BYTES / 3);
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * The bytes of a chunk in JSON: standard base64, padded, canonical (no stray
 * bits in the last character), at most one chunk's worth; read as bytes.
 */
export const base64ChunkSchema = z
  .string()
  .max(MAX_CHUNK_BASE64)
  .regex(BASE64, "standard padded base64")
  .transform((text, ctx) => {
    const bytes = Buffer.from(text, "base64");
    if (bytes.toString("base64") === text)
      return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    ctx.addIssue({ code: "custom", message: "base64 with bits set past the end of the data" });
    return z.NEVER;
  });

/**
 * A READ answer in JSON, as a committing client without CBOR sends it on
 * `file.src.<commit>` (and a holder answers a JSON READ): DATA with base64
 * `data`, or ERROR. Anything else is malformed.
 */
export const jsonReadAnswerSchema = z.discriminatedUnion("type", [
  z.strictObject({ v, type: z.literal("DATA"), offset: sizeSchema, data: base64ChunkSchema }),
  z.strictObject({ v, type: z.literal("ERROR"), error: z.enum(FILE_ERRORS), message: z.string().max(1024) }),
]);

// ---- internal: server <-> server on `dvs.<c>._file.<node>`, CBOR ----

const from = { v, from: nodeIdSchema, epoch: epochSchema };
/** Where a holder READs the bytes: a client's source subject or another holder's read subject. */
const sourceSchema = z.string().min(1).max(256);
/**
 * How the holder asks `source`: absent is CBOR; "json" when the committing
 * client sent its COMMIT in JSON, so a client without CBOR can serve its bytes.
 */
const sourceEncodingSchema = z.literal("json").optional();

export const peerFileMessageSchema = z.discriminatedUnion("type", [
  /** Coordinator → active: store this new version on `rf` servers. */
  z.strictObject({
    ...from,
    type: z.literal("COMMIT"),
    ...fileIdentitySchema.shape,
    commit: commitIdSchema,
    rf: z.number().int().min(1).max(64),
    source: sourceSchema,
    sourceEncoding: sourceEncodingSchema,
  }),
  /** Active → holder: write this version to disk (fsync) from `source`, then DONE. */
  z.strictObject({
    ...from,
    type: z.literal("REPLICA"),
    ...fileIdentitySchema.shape,
    source: sourceSchema,
    sourceEncoding: sourceEncodingSchema,
  }),
  /** Coordinator → active, active → holder: who can serve this version. */
  z.strictObject({
    ...from,
    type: z.literal("UPDATE"),
    ...fileIdentitySchema.shape,
    holders: z.array(nodeIdSchema).max(1024),
  }),
  /** Coordinator → one server: delete this copy, which no record will ever name (a commit that failed, or an old version). */
  z.strictObject({
    ...from,
    type: z.literal("DISCARD"),
    name: fileNameSchema,
    version: fileVersionSchema,
    sha256: sha256Schema,
  }),
  /** Coordinator → active: copy this version from `holders` until `rf` servers hold it. */
  z.strictObject({
    ...from,
    type: z.literal("REPAIR"),
    ...fileIdentitySchema.shape,
    holders: z.array(nodeIdSchema).max(1024),
    rf: z.number().int().min(1).max(64),
  }),
]);
export type PeerFileMessage = z.infer<typeof peerFileMessageSchema>;

/** Coordinator → every server on `dvs.<c>._file.all`: this version is recorded; older copies may go. */
export const committedSchema = z.strictObject({
  ...from,
  type: z.literal("COMMITTED"),
  ...fileIdentitySchema.shape,
});
export type Committed = z.infer<typeof committedSchema>;

export const peerFileAnswerSchema = z.discriminatedUnion("type", [
  z.strictObject({ v, type: z.literal("DONE"), holder: nodeIdSchema }),
  z.strictObject({ v, type: z.literal("SUCCESS"), holders: z.array(nodeIdSchema) }),
  z.strictObject({ v, type: z.literal("FILE"), source: nodeIdSchema }),
  z.strictObject({ v, type: z.literal("BUSY") }),
  z.strictObject({ v, type: z.literal("ERROR"), error: z.enum(FILE_ERRORS), message: z.string().max(1024) }),
]);
export type PeerFileAnswer = z.infer<typeof peerFileAnswerSchema>;

// ---- the catalog (JSON in the coordinator store, key `file.<base64url name>`) ----

/** The recorded newest version of one file: written by the coordinator with a compare-and-set. */
export const catalogRecordSchema = z.strictObject({
  v,
  ...fileIdentitySchema.shape,
  /** The term of the coordinator that recorded it: no later write may carry a smaller one. */
  epoch: epochSchema,
  commit: commitIdSchema,
  /** Servers that wrote it to disk (DONE), updated by repair. */
  holders: z.array(nodeIdSchema).max(1024),
  at: z.number(),
  /**
   * The commits recorded before this one, newest first (at most
   * RECENT_COMMITS): a retried COMMIT whose first attempt was recorded is
   * answered with that version instead of becoming a new one.
   */
  earlier: z
    .array(
      z.strictObject({
        commit: commitIdSchema,
        version: fileVersionSchema,
        sha256: sha256Schema,
        size: sizeSchema,
      }),
    )
    .max(64)
    .optional(),
});
export type CatalogRecord = z.infer<typeof catalogRecordSchema>;

/** A file-store failure as the wire names it: `code` is the error a server answers with, or a client ends with. */
export class FileStoreError extends Error {
  override name = "FileStoreError";
  constructor(
    readonly code: FileErrorName,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}
