// The committed mark of a replica on disk (diskReplicas.ts): a file beside
// `<version>.<sha256>`, named `<version>.<sha256>.committed`, whose JSON
// restates the replica's identity. Its name and bytes are read back as any
// input is: a mark counts only when both name exactly the replica beside it.
import { z } from "zod";
import { fileNameSchema, fileVersionSchema, sha256Schema } from "../../protocol/files.js";
import type { ReplicaRef } from "./replicaStore.js";

export const MARK_SUFFIX = ".committed";
const MARK_NAME = /^([1-9][0-9]*)\.([0-9a-f]{64})\.committed$/;
/** A mark is a few hundred bytes; anything larger is not one this store wrote. */
export const MAX_MARK_BYTES = 1024;

const committedMarkSchema = z.strictObject({
  v: z.literal(1),
  name: fileNameSchema,
  version: fileVersionSchema,
  sha256: sha256Schema,
});

/** The replica of file `name` a directory entry is the mark of, or undefined when it is no mark's name. */
export function markedBy(name: string, entry: string): ReplicaRef | undefined {
  const match = MARK_NAME.exec(entry);
  if (!match?.[1] || !match[2]) return undefined;
  const version = Number(match[1]);
  return Number.isSafeInteger(version) ? { name, version, sha256: match[2] } : undefined;
}

/** The bytes of the mark of `ref`. */
export function markBytes(ref: ReplicaRef): Uint8Array {
  const { name, version, sha256 } = ref;
  return new TextEncoder().encode(`${JSON.stringify({ v: 1, name, version, sha256 })}\n`);
}

/** Whether `bytes` are a mark of exactly `ref`: small, JSON, of the mark's shape, naming that replica. */
export function restates(bytes: Uint8Array, ref: ReplicaRef): boolean {
  if (bytes.length > MAX_MARK_BYTES) return false;
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    return false;
  }
  const parsed = committedMarkSchema.safeParse(value);
  return (
    parsed.success &&
    parsed.data.name === ref.name &&
    parsed.data.version === ref.version &&
    parsed.data.sha256 === ref.sha256
  );
}
