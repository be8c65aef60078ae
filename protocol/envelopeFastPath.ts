// The common RQST envelope, checked without zod. Every request a node serves
// has its envelope validated; rqstEnvelopeSchema's safeParse allocates a
// payload per field and was one of the largest costs of a request's path
// (bench/README.md, "Requests to one node"). This check accepts only an
// envelope it is certain the schema accepts unchanged, and answers undefined
// on any doubt (an unknown key, a signed request, a field out of range), so
// the schema stays the authority: it decides every other envelope and names
// its issues. test/unit/envelopeFastPath.test.ts holds the two together.
import {
  ACTION_ID,
  isDestination,
  isRequester,
  MAX_RQST_TIMEOUT_MS,
  MAX_TYPE_LENGTH,
  PROTOCOL_VERSION,
  type RqstEnvelope,
} from "./messages.js";

/** The envelope keys this check knows: a test holds them equal to rqstEnvelopeSchema's. */
export const FAST_PATH_KEYS: ReadonlySet<string> = new Set([
  "v",
  "type",
  "src",
  "dst",
  "seq",
  "action",
  "role",
  "timeout",
  "params",
  "auth",
]);

/** An object as cbor-x and JSON.parse build one: of Object's prototype (the schema's output is one too). */
export function isDecodedObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && Object.getPrototypeOf(value) === Object.prototype;
}

/**
 * `value` as an envelope when rqstEnvelopeSchema would accept it and return
 * the same fields, undefined when it might not (then ask the schema). A
 * signed envelope (`auth`) is always left to the schema.
 */
export function envelopeFastPath(value: unknown): RqstEnvelope | undefined {
  if (!isDecodedObject(value)) return undefined;
  const e = value;
  for (const key of Object.keys(e)) if (!FAST_PATH_KEYS.has(key)) return undefined;
  if (e.auth !== undefined || e.v !== PROTOCOL_VERSION) return undefined;
  if (typeof e.type !== "string" || e.type.length > MAX_TYPE_LENGTH) return undefined;
  if (!isRequester(e.src) || !isDestination(e.dst)) return undefined;
  if (!Number.isSafeInteger(e.seq) || (e.seq as number) < 0) return undefined;
  if (e.action !== undefined && !(typeof e.action === "string" && ACTION_ID.test(e.action))) return undefined;
  if (e.role !== undefined && e.role !== "admin" && e.role !== "viewer") return undefined;
  const { timeout } = e;
  if (
    timeout !== undefined &&
    !(
      typeof timeout === "number" &&
      Number.isInteger(timeout) &&
      timeout >= 1 &&
      timeout <= MAX_RQST_TIMEOUT_MS
    )
  )
    return undefined;
  return e as RqstEnvelope;
}
