// Replicas on the simulated disk of the `sim` network (SPEC 8). A SimDisk is
// what one host keeps across restarts of its runtime; MemoryReplicas is the
// store a runtime opens over it. Writes stay in the runtime's memory until
// `finish`, so throwing the runtime away (a crash) loses them, as a crash on a
// real disk leaves only a `.part-` file. No randomness and no timers: the same
// run gives the same disk.
import { createHash } from "node:crypto";
import type { FileIdentity } from "../../protocol/files.js";
import { FileStoreError } from "../../protocol/files.js";
import { ReplicaIntegrityError, ReplicaNotFoundError } from "./errors.js";
import {
  checkRange,
  identityOf,
  keyOf,
  type ReplicaRef,
  type ReplicaStore,
  type ReplicaWriter,
  ReplicaWriterBase,
} from "./replicaStore.js";

/** A replica as the SimDisk holds it. */
export interface SimReplica {
  readonly identity: FileIdentity;
  readonly bytes: Uint8Array;
}

const sha256Of = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");

/** The durable replicas of one simulated host. */
export class SimDisk {
  readonly #replicas = new Map<string, SimReplica>();
  readonly #corrupted: SimReplica[] = [];
  /** The replicas marked committed, by key: durable like the replicas, and gone with them. */
  readonly #marks = new Set<string>();
  #syncs = 0;

  /** How many finishes made a replica durable (a finish of a replica already held makes none). */
  get syncs(): number {
    return this.#syncs;
  }

  /** Replicas that failed `verify`, set aside as the disk store keeps its `.corrupt` files. */
  get corrupted(): readonly SimReplica[] {
    return this.#corrupted;
  }

  list(): FileIdentity[] {
    return [...this.#replicas.values()].map((r) => r.identity);
  }

  load(ref: ReplicaRef): SimReplica | undefined {
    return this.#replicas.get(keyOf(ref));
  }

  /** Keeps `bytes` (the caller hands them over) unless the replica is already held; true when it was stored. */
  store(identity: FileIdentity, bytes: Uint8Array): boolean {
    const key = keyOf(identity);
    if (this.#replicas.has(key)) return false;
    this.#replicas.set(key, { identity, bytes });
    this.#syncs++;
    return true;
  }

  delete(ref: ReplicaRef): void {
    this.#replicas.delete(keyOf(ref));
    this.#marks.delete(keyOf(ref));
  }

  /** Marks a stored replica committed; false when it is not stored. */
  mark(ref: ReplicaRef): boolean {
    if (!this.#replicas.has(keyOf(ref))) return false;
    this.#marks.add(keyOf(ref));
    return true;
  }

  /** Whether a stored replica is marked committed. */
  marked(ref: ReplicaRef): boolean {
    return this.#marks.has(keyOf(ref));
  }

  /** Moves a replica to `corrupted`. */
  setAside(ref: ReplicaRef): void {
    const replica = this.#replicas.get(keyOf(ref));
    if (!replica) return;
    this.#replicas.delete(keyOf(ref));
    this.#marks.delete(keyOf(ref));
    this.#corrupted.push(replica);
  }

  /** Test hook: flips the byte at `offset` of a held replica, as a bad sector would, and nothing else. */
  corrupt(ref: ReplicaRef, offset = 0): void {
    const replica = this.#replicas.get(keyOf(ref));
    if (!replica) throw new ReplicaNotFoundError(ref);
    if (offset < 0 || offset >= replica.bytes.length) {
      throw new RangeError(`replica of ${ref.name} has no byte at ${offset} to corrupt`);
    }
    replica.bytes[offset] = (replica.bytes[offset] ?? 0) ^ 0xff;
  }
}

/** What a writer needs from its store. */
interface WriterHost {
  holds(ref: ReplicaRef): boolean;
  commit(identity: FileIdentity, bytes: Uint8Array): void;
  release(writer: MemoryWriter): void;
}

/** Grows its buffer as chunks arrive, so a large declared size costs nothing until written. */
class MemoryWriter extends ReplicaWriterBase {
  readonly #host: WriterHost;
  #buffer = new Uint8Array(0);
  /** The end of the furthest write: the size of the file so far. */
  #length = 0;

  constructor(meta: FileIdentity, host: WriterHost) {
    super(meta);
    this.#host = host;
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    this.checkWrite(offset, data.byteLength);
    const end = offset + data.byteLength;
    if (end > this.#buffer.length) {
      const grown = new Uint8Array(Math.min(this.meta.size, Math.max(end, this.#buffer.length * 2)));
      grown.set(this.#buffer.subarray(0, this.#length));
      this.#buffer = grown;
    }
    this.#buffer.set(data, offset);
    this.#length = Math.max(this.#length, end);
  }

  protected async complete(): Promise<void> {
    const bytes = this.#buffer.slice(0, this.#length);
    this.#drop();
    const actual = { size: bytes.length, sha256: sha256Of(bytes) };
    if (actual.size !== this.meta.size || actual.sha256 !== this.meta.sha256) {
      throw new ReplicaIntegrityError(this.meta, { size: this.meta.size, sha256: this.meta.sha256 }, actual);
    }
    if (!this.#host.holds(this.meta)) this.#host.commit(this.meta, bytes);
  }

  protected async discard(): Promise<void> {
    this.#drop();
  }

  #drop(): void {
    this.#buffer = new Uint8Array(0);
    this.#length = 0;
    this.#host.release(this);
  }
}

const _noop = (): void => undefined;

export class MemoryReplicas implements ReplicaStore {
  #index = new Map<string, FileIdentity>();
  readonly #writers = new Set<MemoryWriter>();
  #closed = false;
  readonly #host: WriterHost;

  constructor(readonly disk: SimDisk) {
    this.#host = {
      holds: (ref) => this.#index.has(keyOf(ref)),
      commit: (identity, bytes) => {
        this.disk.store(identity, bytes);
        this.#index.set(keyOf(identity), identity);
      },
      release: (writer) => this.#writers.delete(writer),
    };
  }

  async open(): Promise<void> {
    this.#index = new Map(this.disk.list().map((identity) => [keyOf(identity), identity]));
    this.#closed = false;
  }

  held(): FileIdentity[] {
    return [...this.#index.values()];
  }

  get(ref: ReplicaRef): FileIdentity | undefined {
    return this.#index.get(keyOf(ref));
  }

  async create(meta: FileIdentity): Promise<ReplicaWriter> {
    const identity = identityOf(meta);
    if (this.#closed) throw new FileStoreError("EINVAL", "the replica store is closed");
    const writer = new MemoryWriter(identity, this.#host);
    this.#writers.add(writer);
    return writer;
  }

  async read(ref: ReplicaRef, offset: number, length: number): Promise<Uint8Array> {
    checkRange("read", offset, length);
    const replica = this.#held(ref);
    return replica.bytes.slice(offset, Math.min(replica.bytes.length, offset + length));
  }

  async verify(ref: ReplicaRef): Promise<boolean> {
    if (!this.#index.has(keyOf(ref))) throw new ReplicaNotFoundError(ref);
    const replica = this.disk.load(ref);
    if (!replica) {
      this.#index.delete(keyOf(ref));
      return false;
    }
    const { identity, bytes } = replica;
    if (bytes.length === identity.size && sha256Of(bytes) === identity.sha256) return true;
    this.#index.delete(keyOf(ref));
    this.disk.setAside(ref);
    return false;
  }

  async remove(ref: ReplicaRef): Promise<void> {
    if (!this.#index.delete(keyOf(ref))) return;
    this.disk.delete(ref);
  }

  async markCommitted(ref: ReplicaRef): Promise<boolean> {
    return this.#index.has(keyOf(ref)) && this.disk.mark(ref);
  }

  committed(ref: ReplicaRef): boolean {
    return this.#index.has(keyOf(ref)) && this.disk.marked(ref);
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#writers].map((w) => w.abort()));
  }

  /** The bytes of a listed replica; one gone from the disk is dropped from the index and not found. */
  #held(ref: ReplicaRef): SimReplica {
    if (!this.#index.has(keyOf(ref))) throw new ReplicaNotFoundError(ref);
    const replica = this.disk.load(ref);
    if (!replica) {
      this.#index.delete(keyOf(ref));
      throw new ReplicaNotFoundError(ref);
    }
    return replica;
  }
}
