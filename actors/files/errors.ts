// Named failures of a server's replica store. Each is a FileStoreError (protocol/files.ts)
// with a stable `name` that callers and tests match on, and the wire error it is answered with.
import { FileStoreError } from "../../protocol/files.js";
import type { ReplicaRef } from "./replicaStore.js";

/** The replica asked for is not held here. */
export class ReplicaNotFoundError extends FileStoreError {
  override name = "ReplicaNotFoundError";
  constructor(readonly ref: ReplicaRef) {
    super("ENOENT", `no replica of ${ref.name} version ${ref.version} here`);
  }
}

/** What was written (or read back) is not the bytes the hash names. */
export class ReplicaIntegrityError extends FileStoreError {
  override name = "ReplicaIntegrityError";
  constructor(
    readonly ref: ReplicaRef,
    readonly expected: { readonly size: number; readonly sha256: string },
    readonly actual: { readonly size: number; readonly sha256: string },
  ) {
    super(
      "EIO",
      `replica of ${ref.name} version ${ref.version} is ${actual.size} bytes with SHA-256 ${actual.sha256}, expected ${expected.size} bytes with ${expected.sha256}`,
    );
  }
}
