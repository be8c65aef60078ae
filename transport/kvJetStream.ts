// The registry's compare-and-set store (SPEC 7) in JetStream KV over a real
// nats-server: a file-backed bucket keeping one value per key, whose revisions
// are the stream's sequence. sim/kv.ts is its simulated twin; both keep
// test/contracts/casStore/contract.ts.
import { JetStreamApiCodes, JetStreamApiError, jetstream, StorageType } from "@nats-io/jetstream";
import { type KV, Kvm, type KvWatchEntry, KvWatchInclude } from "@nats-io/kv";
import type { NatsConnection, QueuedIterator, Status } from "@nats-io/transport-node";
import { systemClock, type TimerHandle } from "./clock.js";
import { CasConflictError, StoreUnavailableError, TimeoutError } from "./errors.js";
import type { CasStore, KvEntry } from "./kv.js";
import { UntrustedStreamError, untrustedStream } from "./streamTrust.js";

export interface JetStreamCasStoreOptions {
  /** The KV bucket (letters, digits, `-` and `_`). */
  readonly bucket: string;
  /** Bucket replicas in a clustered nats-server deployment (1 for one server); applied when the bucket is created. */
  readonly replicas?: number;
  /** Longest wait for one operation, opening the bucket included. */
  readonly timeoutMs?: number;
}

/** The bucket that holds a cluster's coordinator record (bucket names cannot hold dots). */
export function coordinatorBucketName(cluster: string): string {
  return `DVS_REGISTRY_${cluster}`;
}

/** Pause before a broken or refused watch is made again. */
const WATCH_RETRY_MS = 250;

interface Watch {
  readonly key: string;
  readonly onEntry: (entry: KvEntry) => void;
  stopped: boolean;
  /** The highest revision handed to onEntry: a remade watch starts again from the current entry. */
  delivered: number;
  iterator: QueuedIterator<KvWatchEntry> | undefined;
  retry: { readonly timer: TimerHandle; readonly wake: () => void } | undefined;
}

export class JetStreamCasStore implements CasStore {
  readonly bucket: string;
  readonly #nc: NatsConnection;
  readonly #kvm: Kvm;
  readonly #replicas: number;
  readonly #timeoutMs: number;
  #kv: Promise<KV> | undefined;
  readonly #watches = new Set<Watch>();
  /** The operations under way, each rejected by its entry here when the store closes. */
  readonly #pending = new Set<() => void>();
  #status: AsyncIterable<Status> | undefined;
  #closed = false;

  constructor(nc: NatsConnection, options: JetStreamCasStoreOptions) {
    this.#nc = nc;
    this.bucket = options.bucket;
    this.#replicas = options.replicas ?? 1;
    this.#timeoutMs = options.timeoutMs ?? 2_000;
    this.#kvm = new Kvm(jetstream(nc, { timeout: this.#timeoutMs }));
  }

  /** Opens the bucket, creating it if missing; a failure is retried by the next call. */
  #open(): Promise<KV> {
    this.#kv ??= this.#kvm
      .create(this.bucket, {
        history: 1,
        storage: StorageType.File,
        replicas: this.#replicas,
        // Reads go to the stream leader: a direct get may be answered by a replica that lags.
        allow_direct: false,
      })
      .then(async (kv) => {
        // Whoever made the bucket first chose its stream's config: refuse one that copies its entries elsewhere.
        const { config } = (await kv.status()).streamInfo;
        const reasons = untrustedStream(config, [`$KV.${this.bucket}.>`]);
        if (reasons.length > 0) throw new UntrustedStreamError(`KV_${this.bucket}`, reasons);
        return kv;
      })
      .catch((error: unknown) => {
        this.#kv = undefined;
        throw error;
      });
    return this.#kv;
  }

  /**
   * Runs one operation against the bucket within the store's timeout: nats.js
   * can take longer (a lost create retries with a get, and the bucket may need
   * opening first), and the caller is promised an answer in time.
   */
  #run<T>(
    operation: string,
    key: string,
    expected: number | "absent" | undefined,
    fn: (kv: KV) => Promise<T>,
  ): Promise<T> {
    if (this.#closed) return Promise.reject(new StoreUnavailableError(this.bucket, operation));
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const settle = (finish: () => void) => {
        if (settled) return;
        settled = true;
        systemClock.clearTimeout(timer);
        this.#pending.delete(abort);
        finish();
      };
      const abort = () => settle(() => reject(new StoreUnavailableError(this.bucket, operation)));
      const timer = systemClock.setTimeout(() => {
        const cause = new TimeoutError(`$KV.${this.bucket}.${key}`, this.#timeoutMs);
        settle(() => reject(new StoreUnavailableError(this.bucket, operation, { cause })));
      }, this.#timeoutMs);
      this.#pending.add(abort);
      this.#open()
        .then(fn)
        .then(
          (value) => settle(() => resolve(value)),
          (error: unknown) => settle(() => reject(this.#classify(error, operation, key, expected))),
        );
    });
  }

  #classify(
    error: unknown,
    operation: string,
    key: string,
    expected: number | "absent" | undefined,
  ): CasConflictError | StoreUnavailableError {
    if (error instanceof CasConflictError) return error;
    if (error instanceof JetStreamApiError) {
      if (expected !== undefined && isWrongLastSequence(error)) {
        return new CasConflictError(this.bucket, key, expected, {
          cause: error,
          current: lastSequenceOf(error),
        });
      }
      // Someone removed the bucket: open (and create) it again on the next call.
      if (error.code === JetStreamApiCodes.StreamNotFound) this.#kv = undefined;
    }
    return new StoreUnavailableError(this.bucket, operation, { cause: error });
  }

  get(key: string): Promise<KvEntry | undefined> {
    return this.#run("get", key, undefined, async (kv) => {
      const entry = await kv.get(key);
      // A DEL or PURGE marker is what an operator's `nats kv del` leaves: no value.
      if (entry === null || entry.operation !== "PUT") return undefined;
      return { key, value: entry.value, revision: entry.revision };
    });
  }

  create(key: string, value: Uint8Array): Promise<number> {
    return this.#run("create", key, "absent", (kv) => kv.create(key, value));
  }

  update(key: string, value: Uint8Array, expected: number): Promise<number> {
    return this.#run("update", key, expected, async (kv) => {
      // No write has revision 0 (nor a fraction), so no key is at it; JetStream
      // would read an expected 0 as "never written", which is create's job.
      if (!Number.isInteger(expected) || expected < 1) throw new CasConflictError(this.bucket, key, expected);
      return kv.update(key, value, expected);
    });
  }

  keys(prefix: string): Promise<string[]> {
    return this.#run("keys", `${prefix}>`, undefined, async (kv) => {
      const keys: string[] = [];
      for await (const key of await kv.keys(`${prefix}>`)) keys.push(key);
      return keys.sort();
    });
  }

  watch(key: string, onEntry: (entry: KvEntry) => void): () => void {
    if (this.#closed) return () => {};
    const watch: Watch = {
      key,
      onEntry,
      stopped: false,
      delivered: 0,
      iterator: undefined,
      retry: undefined,
    };
    this.#watches.add(watch);
    this.#followReconnects();
    void this.#follow(watch);
    return () => this.#stop(watch);
  }

  /** Keeps one KV watch on the key alive until stopped, making it again whenever it ends or cannot be made. */
  async #follow(watch: Watch): Promise<void> {
    while (!watch.stopped) {
      try {
        const kv = await this.#open();
        const iterator = await kv.watch({ key: watch.key, include: KvWatchInclude.LastValue });
        if (watch.stopped) {
          iterator.stop();
          return;
        }
        watch.iterator = iterator;
        for await (const entry of iterator) {
          if (watch.stopped) break;
          // A remade watch replays the current entry; an older one must not follow a newer one.
          if (entry.operation !== "PUT" || entry.revision <= watch.delivered) continue;
          watch.delivered = entry.revision;
          watch.onEntry({ key: watch.key, value: entry.value, revision: entry.revision });
        }
      } catch {
        // No JetStream, no connection, a consumer lost, or onEntry threw: the watch is made again.
      } finally {
        watch.iterator = undefined;
      }
      if (watch.stopped) return;
      await new Promise<void>((wake) => {
        const timer = systemClock.setTimeout(wake, WATCH_RETRY_MS);
        watch.retry = { timer, wake };
      });
      watch.retry = undefined;
    }
  }

  #stop(watch: Watch): void {
    if (watch.stopped) return;
    watch.stopped = true;
    this.#watches.delete(watch);
    watch.iterator?.stop();
    if (watch.retry !== undefined) {
      systemClock.clearTimeout(watch.retry.timer);
      watch.retry.wake();
    }
  }

  /**
   * After a reconnect a watch's consumer may be gone (it lived on a server that
   * is no longer there, or outlived its inactivity threshold), which the ordered
   * consumer notices only after two missed heartbeats, a minute: every watch is
   * made again at once instead, and so also catches up on what it missed.
   */
  #followReconnects(): void {
    if (this.#status !== undefined) return;
    const status = this.#nc.status();
    this.#status = status;
    void (async () => {
      for await (const s of status) {
        if (s.type !== "reconnect") continue;
        for (const watch of this.#watches) watch.iterator?.stop();
      }
    })().catch(() => {});
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const watch of [...this.#watches]) this.#stop(watch);
    for (const abort of [...this.#pending]) abort();
    // nats.js hands out a QueuedIterator here; stopping it removes the listener.
    (this.#status as { stop?: () => void } | undefined)?.stop?.();
    this.#status = undefined;
  }
}

/** The revision the server says the key holds ("wrong last sequence: 41"), when it says one. */
function lastSequenceOf(error: JetStreamApiError): number | undefined {
  const found = /wrong last sequence: (\d+)/.exec(error.message);
  const value = found ? Number(found[1]) : Number.NaN;
  return Number.isSafeInteger(value) ? value : undefined;
}

function isWrongLastSequence(error: JetStreamApiError): boolean {
  return (
    error.code === JetStreamApiCodes.StreamWrongLastSequence ||
    error.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown
  );
}
