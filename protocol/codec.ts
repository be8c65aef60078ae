// Bytes ↔ protocol messages. CBOR (cbor-x) by default; a message whose header
// says `Content-Type: application/json` is read as JSON and answered in JSON.
// Decoding never throws: every failure is a result naming the error code. A
// request holds plain data only (what JSON can say), however it was encoded.
import { Encoder } from "cbor-x";
import type { z } from "zod";
import { type Headers, header, type Message } from "../transport/transport.js";
import { envelopeFastPath, isDecodedObject } from "./envelopeFastPath.js";
import {
  clientIdSchema,
  countOf,
  describeIssues,
  EMPTY_PARAMS,
  type ErrorData,
  type ErrorName,
  errorName,
  isRequestType,
  MAX_MESSAGE_BYTES,
  nodeIdSchema,
  PARAMS,
  PROTOCOL_VERSION,
  type RequestType,
  type Rply,
  type Rqst,
  rcode,
  rplySchema,
  rqstEnvelopeSchema,
} from "./messages.js";
import { cborBeyondPlainData, MAX_PLAIN_DEPTH } from "./plainCbor.js";

export { MAX_PLAIN_DEPTH };

export type Encoding = "cbor" | "json";

export const JSON_CONTENT_TYPE = "application/json";
export const JSON_HEADERS: Headers = { "Content-Type": JSON_CONTENT_TYPE };

// Plain maps and arrays only: no record extension, so any CBOR implementation can read us.
const cbor = new Encoder({ useRecords: false, mapsAsObjects: true });
const utf8 = new TextDecoder("utf-8", { fatal: true });
const utf8Encoder = new TextEncoder();

/** The encoding a message asks for, from its Content-Type header. */
export function encodingOf(msg: Pick<Message, "headers">): Encoding {
  const type = header(msg, "Content-Type");
  return type !== undefined && type.toLowerCase().split(";")[0]?.trim() === JSON_CONTENT_TYPE
    ? "json"
    : "cbor";
}

/** Headers to send with a message of this encoding. */
export function headersFor(encoding: Encoding): Headers | undefined {
  return encoding === "json" ? JSON_HEADERS : undefined;
}

export function encode(value: unknown, encoding: Encoding = "cbor"): Uint8Array {
  if (encoding === "json") return utf8Encoder.encode(JSON.stringify(value, jsonReplacer));
  return cbor.encode(value);
}

export type DecodeResult =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly error: ErrorName; readonly message: string };

export function decode(data: Uint8Array, encoding: Encoding, limit = MAX_MESSAGE_BYTES): DecodeResult {
  if (data.byteLength > limit) {
    return { ok: false, error: "EMSGSIZE", message: `message of ${data.byteLength} bytes exceeds ${limit}` };
  }
  if (data.byteLength === 0) return { ok: false, error: "EBADMSG", message: "empty message" };
  try {
    const value = encoding === "json" ? JSON.parse(utf8.decode(data)) : cbor.decode(data);
    return { ok: true, value };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return { ok: false, error: "EBADMSG", message: `undecodable ${encoding}: ${reason.slice(0, 200)}` };
  }
}

/**
 * What in a decoded message is beyond plain data, undefined when it is all
 * plain: in CBOR its bytes (a tag, a byte string, a map key that is not a text
 * string, too deep: protocol/plainCbor.ts), which cbor-x can only decode to
 * plain data when they pass; in JSON the value itself (notPlainData).
 */
export function beyondPlainData(data: Uint8Array, encoding: Encoding, value: unknown): string | undefined {
  return encoding === "cbor" ? cborBeyondPlainData(data) : notPlainData(value);
}

/**
 * `decode` for what a public subject takes (dns.*, file.*): a message that is
 * not plain data is EBADMSG like an undecodable one.
 */
export function decodePlain(data: Uint8Array, encoding: Encoding, limit = MAX_MESSAGE_BYTES): DecodeResult {
  const decoded = decode(data, encoding, limit);
  if (!decoded.ok) return decoded;
  const impure = beyondPlainData(data, encoding, decoded.value);
  return impure === undefined
    ? decoded
    : { ok: false, error: "EBADMSG", message: `message is not plain data (${impure})` };
}

/** Binary fields travel as base64 strings in JSON. */
function jsonReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Uint8Array) return Buffer.from(value).toString("base64");
  if (typeof value === "bigint") return value.toString();
  return value;
}

// ---- requests ----

export type ParsedRqst =
  | { readonly ok: true; readonly rqst: Rqst; readonly encoding: Encoding }
  | {
      readonly ok: false;
      readonly encoding: Encoding;
      readonly error: ErrorName;
      readonly message: string;
      readonly issues?: readonly { path: string; message: string }[];
      /** What could be read of the envelope, so the error reply still names the request. */
      readonly partial: { type: string; src: number | string; seq: number };
    };

/**
 * Decodes and validates a RQST: undecodable, not plain data (a CBOR tag, a
 * map key that is not a string) or ill-shaped → EBADMSG, too large → EMSGSIZE,
 * an unknown type → ENOSYS, params not of the type's shape (`null` included) → EBADMSG.
 */
export function parseRqst(msg: Pick<Message, "data" | "headers">): ParsedRqst {
  const encoding = encodingOf(msg);
  const decoded = decode(msg.data, encoding);
  if (!decoded.ok) {
    return {
      ok: false,
      encoding,
      error: decoded.error,
      message: decoded.message,
      partial: partialOf(undefined),
    };
  }
  // Read only for an error reply: checking a client's src as a node id first costs a failed
  // zod parse (an issue list and its messages), which every good request would pay.
  const partial = () => partialOf(decoded.value);
  const impure = beyondPlainData(msg.data, encoding, decoded.value);
  if (impure !== undefined) {
    return {
      ok: false,
      encoding,
      error: "EBADMSG",
      message: `request is not plain data (${impure})`,
      partial: partial(),
    };
  }
  // The schema decides only what the fast path is not certain of (protocol/envelopeFastPath.ts).
  let envelope = envelopeFastPath(decoded.value);
  if (envelope === undefined) {
    const parsed = rqstEnvelopeSchema.safeParse(decoded.value);
    if (!parsed.success)
      return fail(encoding, "EBADMSG", "request is not a valid RQST", partial(), parsed.error);
    envelope = parsed.data;
  }
  const { params } = envelope;
  // The seeds name the types with an `RQST_` prefix (RQST_GETDVSINFO): taken, and dropped.
  const type = envelope.type.startsWith("RQST_") ? envelope.type.slice(5) : envelope.type;
  if (!isRequestType(type)) {
    return {
      ok: false,
      encoding,
      error: "ENOSYS",
      message: `unknown request type ${type}`,
      partial: partial(),
    };
  }
  const schema: z.ZodType = PARAMS[type];
  // A type that takes no params, asked without any: `{}` without a parse (the commonest read, GETDVSINFO).
  if (schema === EMPTY_PARAMS && (params === undefined || isEmptyObject(params)))
    return { ok: true, encoding, rqst: withParams(envelope, type, {}) };
  // Only an absent params means `{}`: null, like any other non-object, is not of the type's shape.
  const checked = schema.safeParse(params === undefined ? {} : params);
  if (!checked.success) {
    return fail(encoding, "EBADMSG", `params are not valid for ${type}`, partial(), checked.error, "params");
  }
  return { ok: true, encoding, rqst: withParams(envelope, type, checked.data) };
}

/** `{}` as decoders build it: an object of Object's prototype with no keys. */
function isEmptyObject(value: unknown): boolean {
  if (!isDecodedObject(value)) return false;
  for (const _ in value) return false;
  return true;
}

/**
 * The envelope's fields but `type` and `params` in their order, then those two:
 * what `{ ...rest, type, params }` makes, without object rest, which V8 runs
 * about ten times slower than this loop (3 µs a request with the node flags).
 */
function withParams(envelope: Record<string, unknown>, type: RequestType, params: unknown): Rqst {
  const rqst: Record<string, unknown> = {};
  for (const key of Object.keys(envelope)) if (key !== "type" && key !== "params") rqst[key] = envelope[key];
  rqst.type = type;
  rqst.params = params;
  return rqst as unknown as Rqst;
}

/**
 * What in `value` is not plain data ("Set", "shared or cyclic reference",
 * …), or undefined when it is all plain: only strings,
 * numbers, booleans, null, undefined, bigints, arrays and objects whose
 * prototype is Object's (or null), each object reached once, at most
 * MAX_PLAIN_DEPTH deep. cbor-x decodes tags into Sets, Maps, typed arrays,
 * Dates, RegExps and Errors, and tags 28/29 into shared and cyclic references;
 * none of them survives a JSON or CBOR round trip as the same value, a cycle
 * makes validation and snapshots loop, and a shared one lets a small message
 * unfold exponentially. The walk is iterative and visits each object once, so
 * its cost is bounded by the decoded size.
 */
export function notPlainData(value: unknown, maxDepth = MAX_PLAIN_DEPTH): string | undefined {
  const seen = new Set<object>();
  const stack: { value: unknown; depth: number }[] = [{ value, depth: 0 }];
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const v = next.value;
    if (typeof v === "function" || typeof v === "symbol") return typeof v;
    if (typeof v !== "object" || v === null) continue;
    if (seen.has(v)) return "shared or cyclic reference";
    seen.add(v);
    if (next.depth >= maxDepth) return `nesting deeper than ${maxDepth}`;
    const proto: unknown = Object.getPrototypeOf(v);
    let children: unknown[];
    if (Array.isArray(v) && proto === Array.prototype) children = v;
    else if (proto === Object.prototype || proto === null) children = Object.values(v);
    else {
      const tag = Object.prototype.toString.call(v).slice(8, -1);
      return tag === "Object" ? "object with a class" : tag;
    }
    for (const child of children) stack.push({ value: child, depth: next.depth + 1 });
  }
  return undefined;
}

function fail(
  encoding: Encoding,
  error: ErrorName,
  message: string,
  partial: { type: string; src: number | string; seq: number },
  zodError: z.ZodError,
  prefix?: string,
): ParsedRqst {
  const issues = describeIssues(zodError).map((i) =>
    prefix ? { path: i.path === "(root)" ? prefix : `${prefix}.${i.path}`, message: i.message } : i,
  );
  return { ok: false, encoding, error, message, issues, partial };
}

function partialOf(value: unknown): { type: string; src: number | string; seq: number } {
  const v = (typeof value === "object" && value !== null ? value : {}) as Record<string, unknown>;
  const type = typeof v.type === "string" ? v.type.slice(0, 32) : "UNKNOWN";
  // Only a src a RPLY may carry as its dst is copied; anything else is answered to "".
  const src =
    nodeIdSchema.safeParse(v.src).success || clientIdSchema.safeParse(v.src).success
      ? (v.src as number | string)
      : "";
  const seq = typeof v.seq === "number" && Number.isSafeInteger(v.seq) && v.seq >= 0 ? v.seq : 0;
  return { type, src, seq };
}

// ---- replies ----

export type ParsedRply = { ok: true; rply: Rply } | { ok: false; message: string };

/** Decodes and validates a RPLY; never throws. */
export function parseRply(data: Uint8Array, encoding: Encoding, limit?: number): ParsedRply {
  const decoded = decode(data, encoding, limit);
  if (!decoded.ok) return { ok: false, message: decoded.message };
  const rply = rplySchema.safeParse(decoded.value);
  return rply.success
    ? { ok: true, rply: rply.data }
    : { ok: false, message: rply.error.message.slice(0, 300) };
}

/** A reply to a request, from node `src`: rcode 0 or a result, with `count` derived from `data`. */
export function makeRply(
  to: { type: string; src: number | string; seq: number },
  src: number,
  code: number,
  data: unknown = null,
): Rply {
  return {
    v: PROTOCOL_VERSION,
    type: to.type,
    src,
    dst: to.src,
    seq: to.seq,
    rcode: code,
    count: countOf(data),
    data,
  };
}

/** An error reply whose `data` says which error and why. */
export function errorRply(
  to: { type: string; src: number | string; seq: number },
  src: number,
  error: ErrorName,
  message: string,
  issues?: readonly { path: string; message: string }[],
): Rply {
  const data: ErrorData = issues?.length ? { error, message, issues } : { error, message };
  return makeRply(to, src, rcode(error), data);
}

/** The error a reply carries, if its rcode is negative. */
export function rplyError(rply: Pick<Rply, "rcode">): ErrorName | "EUNKNOWN" | undefined {
  if (rply.rcode >= 0) return undefined;
  return errorName(rply.rcode) ?? "EUNKNOWN";
}

export function makeRqst<T extends RequestType>(fields: Omit<Rqst<T>, "v">): Rqst<T> {
  return { v: PROTOCOL_VERSION, ...fields } as Rqst<T>;
}
