// READ, the file store's one way of moving bytes (SPEC 8): whoever needs a
// version's bytes READs its chunks from a source subject (a committing client,
// or a holder), a few in flight at a time, each with its own timeout. A holder
// pulls a REPLICA this way, and a client the FILE an UPDATE points it to.
import type { Transport } from "../transport/transport.js";
import { decode, decodePlain, type Encoding, encode, headersFor } from "./codec.js";
import {
  CHUNK_BYTES,
  type FileIdentity,
  FileStoreError,
  fileAnswerSchema,
  jsonReadAnswerSchema,
} from "./files.js";
import { PROTOCOL_VERSION } from "./messages.js";

export interface ReadOptions {
  readonly transport: Transport;
  readonly identity: FileIdentity;
  /** The subject that answers READ for this version. */
  readonly source: string;
  /** READs in flight at once. */
  readonly window: number;
  /** Timeout of one READ. */
  readonly timeoutMs: number;
  /** Bytes per READ (default CHUNK_BYTES). */
  readonly chunkBytes?: number;
  /**
   * How `source` is asked, and answers (default CBOR). JSON for a client that
   * committed in JSON: its DATA carries base64 (protocol/files.ts jsonReadAnswerSchema).
   */
  readonly encoding?: Encoding;
}

type ReadAnswer =
  | { readonly type: "DATA"; readonly offset: number; readonly data: Uint8Array }
  | { readonly type: "ERROR"; readonly error: FileStoreError["code"]; readonly message: string }
  | { readonly type: "OTHER" };

/** A READ answer in `encoding`, strictly: undefined when it cannot be read. */
function readAnswer(data: Uint8Array, encoding: Encoding, limit: number): ReadAnswer | undefined {
  if (encoding === "json") {
    const decoded = decodePlain(data, "json", limit);
    const parsed = decoded.ok ? jsonReadAnswerSchema.safeParse(decoded.value) : undefined;
    return parsed?.success ? parsed.data : undefined;
  }
  const decoded = decode(data, "cbor", limit);
  const parsed = decoded.ok ? fileAnswerSchema.safeParse(decoded.value) : undefined;
  if (!parsed?.success) return undefined;
  const answer = parsed.data;
  return answer.type === "DATA" || answer.type === "ERROR" ? answer : { type: "OTHER" };
}

/**
 * Reads every chunk of `identity` from `source` and hands each to `onChunk`
 * (in any order, each once). Rejects with FileStoreError: ETIMEDOUT, EAGAIN
 * (no one answers), EIO (a short or malformed answer), or the source's error.
 */
export async function readChunks(
  options: ReadOptions,
  onChunk: (offset: number, data: Uint8Array) => Promise<void> | void,
): Promise<void> {
  const { transport, identity, source, timeoutMs } = options;
  const chunk = options.chunkBytes ?? CHUNK_BYTES;
  const encoding = options.encoding ?? "cbor";
  const headers = headersFor(encoding);
  const offsets: number[] = [];
  for (let offset = 0; offset < identity.size; offset += chunk) offsets.push(offset);
  let next = 0;
  const worker = async () => {
    while (next < offsets.length) {
      const offset = offsets[next++] as number;
      const length = Math.min(chunk, identity.size - offset);
      const request = {
        v: PROTOCOL_VERSION,
        type: "READ",
        name: identity.name,
        version: identity.version,
        sha256: identity.sha256,
        offset,
        length,
      };
      let data: Uint8Array;
      try {
        const msg = await transport.request(source, encode(request, encoding), {
          timeoutMs,
          ...(headers ? { headers } : {}),
        });
        const answer = readAnswer(msg.data, encoding, transport.maxPayload);
        if (answer === undefined)
          throw new FileStoreError("EIO", `${source} answered READ with a malformed message`);
        if (answer.type === "ERROR") throw new FileStoreError(answer.error, `${source}: ${answer.message}`);
        if (answer.type !== "DATA" || answer.offset !== offset || answer.data.byteLength !== length)
          throw new FileStoreError("EIO", `${source} answered READ at ${offset} with the wrong bytes`);
        data = answer.data;
      } catch (e) {
        if (e instanceof FileStoreError) throw e;
        const name = e instanceof Error ? e.name : "";
        throw new FileStoreError(
          name === "TimeoutError" ? "ETIMEDOUT" : "EAGAIN",
          `READ from ${source} at ${offset} failed: ${e instanceof Error ? e.message : String(e)}`,
          { cause: e },
        );
      }
      await onChunk(offset, data);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(options.window, offsets.length)) }, worker));
}
