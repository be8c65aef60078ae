// The questions anyone may ask the registry on `dvs.<c>.dns.*` (WHO, FAILED),
// read as strictly as a RQST: a body that cannot be decoded, is not plain data
// (a CBOR tag, a map key that is not a string) or is not of the question's
// shape is answered `ERROR`/`EBADMSG` (docs/protocol.md 10.1).
import { decodePlain, type Encoding } from "../protocol/codec.js";
import {
  failedSchema,
  type NodeId,
  PROTOCOL_VERSION,
  type RegistryAnswer,
  whoSchema,
} from "../protocol/messages.js";

export type RegistryQuestion =
  | { readonly type: "WHO" }
  | { readonly type: "FAILED"; readonly coordinator: NodeId; readonly epoch: number };

/** The answer to a WHO or FAILED that cannot be read. */
export const MALFORMED_QUESTION: RegistryAnswer = { v: PROTOCOL_VERSION, type: "ERROR", error: "EBADMSG" };

/** Reads a WHO (an empty body counts as one) or a FAILED; undefined when it is malformed. */
export function readRegistryQuestion(
  data: Uint8Array,
  encoding: Encoding,
  kind: RegistryQuestion["type"],
): RegistryQuestion | undefined {
  if (kind === "WHO" && data.byteLength === 0) return { type: "WHO" };
  const decoded = decodePlain(data, encoding);
  if (!decoded.ok) return undefined;
  if (kind === "WHO") return whoSchema.safeParse(decoded.value).success ? { type: "WHO" } : undefined;
  const failed = failedSchema.safeParse(decoded.value);
  return failed.success
    ? { type: "FAILED", coordinator: failed.data.coordinator, epoch: failed.data.epoch }
    : undefined;
}
