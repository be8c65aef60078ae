// Where a server keeps the file versions it holds (SPEC 8): a replica is one
// version of one file, written in chunks, checked against its SHA-256 and made
// durable (fsync) before it counts, and read back in chunks. Two implementations
// keep one contract (test/contracts/replicaStore/contract.ts): files on disk
// (diskReplicas.ts) and the simulated disk of the `sim` network (memoryReplicas.ts).
import { type FileIdentity, FileStoreError, fileIdentitySchema } from "../../protocol/files.js";

/** One version of one file, as ALIVE, READ and the catalog name it. */
export interface ReplicaRef {
  readonly name: string;
  readonly version: number;
  readonly sha256: string;
}

/** A replica being written: chunks at any offset, then `finish` or `abort`. */
export interface ReplicaWriter {
  readonly meta: FileIdentity;
  /** Writes `data` at `offset`; rejects with RangeError past `meta.size`. */
  write(offset: number, data: Uint8Array): Promise<void>;
  /**
   * Reads back what was written and checks its size and SHA-256 against `meta`
   * (ReplicaIntegrityError, and nothing is kept, when they differ), flushes it
   * to stable storage, then makes it visible in `held()`. Finishing a version
   * already held keeps the one already there.
   */
  finish(): Promise<void>;
  /** Drops what was written; idempotent. */
  abort(): Promise<void>;
}

export interface ReplicaStore {
  /** Loads what is stored: finished replicas are listed, unfinished writes are removed. */
  open(): Promise<void>;
  /** The finished replicas, in no particular order. */
  held(): FileIdentity[];
  /** The finished replica of exactly this version and hash, if held. */
  get(ref: ReplicaRef): FileIdentity | undefined;
  /** Starts a new replica; nothing is visible until `finish`. */
  create(meta: FileIdentity): Promise<ReplicaWriter>;
  /** `length` bytes from `offset` (fewer at the end); rejects with ReplicaNotFoundError. */
  read(ref: ReplicaRef, offset: number, length: number): Promise<Uint8Array>;
  /**
   * Reads the whole replica and checks its SHA-256. A replica that fails is
   * removed from `held()` (kept aside for the operator) and false is returned.
   */
  verify(ref: ReplicaRef): Promise<boolean>;
  /** Forgets a replica, and its committed mark, and frees its space; no-op when not held. */
  remove(ref: ReplicaRef): Promise<void>;
  /**
   * Marks a held replica as committed: some catalog recorded exactly this
   * version and hash. The mark is durable (it survives `open`), idempotent,
   * and goes with the replica (`remove`, a failed `verify`). It is what tells a
   * committed copy that a catalog older than it no longer names (restored from
   * a backup) from the leftover of a commit that was never recorded: the holder
   * keeps the first (holder.ts). Resolves false, marking nothing, when the
   * replica is not held.
   */
  markCommitted(ref: ReplicaRef): Promise<boolean>;
  /** Whether a held replica carries the committed mark (false when not held). */
  committed(ref: ReplicaRef): boolean;
  /** Aborts the writes under way. */
  close(): Promise<void>;
}

export const sameReplica = (a: ReplicaRef, b: ReplicaRef): boolean =>
  a.name === b.name && a.version === b.version && a.sha256 === b.sha256;

/** A map key for one replica. */
export const keyOf = (ref: ReplicaRef): string => JSON.stringify([ref.name, ref.version, ref.sha256]);

/** The identity alone (callers may pass a larger record), checked, since its fields become path names. */
export function identityOf(meta: FileIdentity): FileIdentity {
  const parsed = fileIdentitySchema.safeParse({
    name: meta.name,
    version: meta.version,
    sha256: meta.sha256,
    size: meta.size,
  });
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    throw new FileStoreError("EINVAL", `not a replica identity (${issues})`);
  }
  return Object.freeze(parsed.data);
}

/** RangeError unless `offset` and `length` are whole numbers ≥ 0. */
export function checkRange(what: string, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0)
    throw new RangeError(`${what} offset ${offset} is not a whole number ≥ 0`);
  if (!Number.isSafeInteger(length) || length < 0)
    throw new RangeError(`${what} length ${length} is not a whole number ≥ 0`);
}

/**
 * What every ReplicaWriter shares: a write must fit inside the file and come
 * before finish or abort; finish and abort each run once, and an abort after
 * finish has begun waits for it and drops nothing.
 */
export abstract class ReplicaWriterBase implements ReplicaWriter {
  #finished: Promise<void> | undefined;
  #aborted: Promise<void> | undefined;

  constructor(readonly meta: FileIdentity) {}

  abstract write(offset: number, data: Uint8Array): Promise<void>;

  /** Checks, and makes visible. */
  protected abstract complete(): Promise<void>;

  /** Drops what was written. */
  protected abstract discard(): Promise<void>;

  finish(): Promise<void> {
    if (this.#finished) return this.#finished;
    if (this.#aborted) return Promise.reject(this.#notWritable("finish"));
    this.#finished = this.complete();
    return this.#finished;
  }

  abort(): Promise<void> {
    if (this.#finished) return this.#finished.then(noop, noop);
    this.#aborted ??= this.discard();
    return this.#aborted;
  }

  /** Throws unless a write of `length` bytes at `offset` may go ahead. */
  protected checkWrite(offset: number, length: number): void {
    if (this.#finished || this.#aborted) throw this.#notWritable("write to");
    checkRange("write", offset, length);
    if (offset + length > this.meta.size) {
      throw new RangeError(
        `write of ${length} bytes at ${offset} goes past the ${this.meta.size} bytes of ${this.meta.name} version ${this.meta.version}`,
      );
    }
  }

  #notWritable(doing: string): FileStoreError {
    const state = this.#aborted ? "aborted" : "finished";
    return new FileStoreError(
      "EINVAL",
      `cannot ${doing} replica ${this.meta.name} version ${this.meta.version}: it was ${state}`,
    );
  }
}

const noop = (): void => undefined;
