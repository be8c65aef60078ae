// READ, the file store's one way of moving bytes (SPEC 8): whoever needs a
// version's bytes READs its chunks from a source subject (a committing client,
// or a holder), a few in flight at a time, each with its own timeout. A holder
// pulls a REPLICA this way, and a client the FILE an UPDATE points it to.
import type { Transport } from "../transport/transport.js";
import { decode, encode } from "./codec.js";
import { CHUNK_BYTES, type FileIdentity, FileStoreError, fileAnswerSchema } from "./files.js";
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
        const msg = await transport.request(source, encode(request), { timeoutMs });
        const decoded = decode(msg.data, "cbor", transport.maxPayload);
        const parsed = decoded.ok ? fileAnswerSchema.safeParse(decoded.value) : undefined;
        if (!parsed?.success)
          throw new FileStoreError("EIO", `${source} answered READ with a malformed message`);
        const answer = parsed.data;
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
