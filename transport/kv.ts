// A key-value store with compare-and-set: what the registry's coordinator
// record lives in (SPEC 7). Two implementations keep one contract
// (test/contracts/casStore/contract.ts): JetStream KV over a real nats-server
// (kvJetStream.ts), where the revision is the stream sequence, and the
// simulated linearizable store of the `sim` network (sim/kv.ts), reachable only
// from where JetStream would be.

/** One stored value and the revision that wrote it. */
export interface KvEntry {
  readonly key: string;
  readonly value: Uint8Array;
  /** Grows with every write to the bucket; a fencing token for whoever wrote it. */
  readonly revision: number;
}

export interface CasStore {
  /** The bucket's name (JetStream: the KV bucket). */
  readonly bucket: string;
  /** The current entry, or undefined when the key was never written. Rejects with StoreUnavailableError. */
  get(key: string): Promise<KvEntry | undefined>;
  /** Writes the key only if it was never written; resolves with the new revision. Rejects with CasConflictError. */
  create(key: string, value: Uint8Array): Promise<number>;
  /** Writes the key only if its current revision is `expected`; resolves with the new revision. Rejects with CasConflictError. */
  update(key: string, value: Uint8Array, expected: number): Promise<number>;
  /** The keys that hold a value and start with `prefix` (a whole token and its dot: `file.`), sorted. */
  keys(prefix: string): Promise<string[]>;
  /**
   * Calls `onEntry` with the key's writes as they happen (and its current entry
   * first, if any). Best effort: an entry can be missed while the store is out
   * of reach, so a reader that must know re-reads with `get`. Returns a stop function.
   */
  watch(key: string, onEntry: (entry: KvEntry) => void): () => void;
  /** Stops every watch; pending operations reject. Idempotent. */
  close(): Promise<void>;
}
