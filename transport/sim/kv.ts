// The simulated linearizable store: the CasStore of the `sim` network, as a
// replicated JetStream KV behaves. Each operation takes effect at one instant
// (its arrival, one hop after the call) and only if the caller's server is on
// the side of the routes that holds a majority of servers; the answer takes
// another hop and is lost if the caller's link broke meanwhile (then the
// caller cannot tell whether the write happened). Watches are best effort, as
// the interface says. Time is the network's clock; nothing here is random but
// the network's seeded draws.
import type { Clock, TimerHandle } from "../clock.js";
import { CasConflictError, StoreUnavailableError } from "../errors.js";
import type { CasStore, KvEntry } from "../kv.js";
import type { SimNetwork } from "./network.js";

export interface SimKvOptions {
  /** How long an operation waits for an answer before StoreUnavailableError (as a JetStream API timeout). */
  readonly timeoutMs?: number;
  /**
   * nats-server 2.9's compare-and-set (nats-io/nats-server#4320, fixed in
   * 2.9.21): the expected revision is checked when the write arrives, against
   * what is applied, and the write is applied this many ms later, after its
   * Raft round. A second write of the key that expects the same revision and
   * arrives meanwhile passes the check too, and both succeed. 0 (the default):
   * a linearizable compare-and-set.
   */
  readonly casRaftMs?: number;
}

export interface SimKvWrite {
  /** When the store accepted it (checked it); it took effect then, or a Raft round later (`casRaftMs`). */
  readonly at: number;
  readonly host: string;
  readonly entry: KvEntry;
  /** What `witness` said of the writer when the write was accepted. */
  readonly witnessed?: string | null;
}

interface Watcher {
  readonly host: string;
  readonly key: string;
  readonly clock: Clock;
  readonly onEntry: (entry: KvEntry) => void;
  active: boolean;
  /** When the last delivery lands (deliveries stay in revision order, as a JetStream watch's do). */
  lastDue: number;
  lastRevision: number;
}

/** One bucket, shared by the whole simulated deployment; `client(host)` is what a host's runtime gets. */
export class SimKv {
  readonly #entries = new Map<string, KvEntry>();
  readonly #watchers = new Set<Watcher>();
  readonly #timeoutMs: number;
  readonly #casRaftMs: number;
  #revision = 0;
  /** Every write in the order it took effect, each with when it was accepted: the model's view of the store's history. */
  readonly writes: SimKvWrite[] = [];
  /** What a model notes of a writer when its write is accepted (its standing then, say): kept with the write. */
  witness: ((host: string) => string | null) | undefined;

  constructor(
    readonly network: SimNetwork,
    readonly bucket: string,
    options: SimKvOptions = {},
  ) {
    this.#timeoutMs = options.timeoutMs ?? 1_000;
    this.#casRaftMs = options.casRaftMs ?? 0;
  }

  /** The entry as the store holds it now (for checks; no network involved). */
  peek(key: string): KvEntry | undefined {
    return this.#entries.get(key);
  }

  /**
   * Test hook: puts `key` back as `entry` holds it (undefined: as if never
   * written), as restoring a backup of the bucket taken before its later
   * writes does. Done with every node stopped, as the restore is: no watcher
   * is told, and `writes` keeps the history that was lost.
   */
  rewind(key: string, entry: KvEntry | undefined): void {
    if (entry === undefined) this.#entries.delete(key);
    else this.#entries.set(key, { key, value: entry.value.slice(), revision: entry.revision });
  }

  /** The store as seen from host `name` (its runtime's clock; a crash of the host silences it). */
  client(host: string): CasStore {
    const clock = this.network.hostClock(host);
    const watchers = new Set<Watcher>();
    const pending = new Set<() => void>();
    let closed = false;
    /** `apply` runs on arrival; a write's `land` (if any) `casRaftMs` later, and the answer waits for it. */
    const run = <T>(operation: string, apply: () => T, land?: () => T): Promise<T> =>
      new Promise<T>((resolve, reject) => {
        if (closed) {
          reject(new StoreUnavailableError(this.bucket, operation));
          return;
        }
        let settled = false;
        const settle = (fn: () => void) => {
          if (settled) return;
          settled = true;
          pending.delete(abort);
          clock.clearTimeout(timer);
          fn();
        };
        const abort = () => settle(() => reject(new StoreUnavailableError(this.bucket, operation)));
        pending.add(abort);
        const timer: TimerHandle = clock.setTimeout(
          () => settle(() => reject(new StoreUnavailableError(this.bucket, operation))),
          this.#timeoutMs,
        );
        const out = this.network.reachesQuorum(host) ? this.network.storeHop(host) : undefined;
        if (out === undefined) return;
        // The request has left the host: it lands even if the host crashes meanwhile.
        this.network.clock.setTimeout(() => {
          if (!this.network.reachesQuorum(host)) return;
          const attempt = (fn: () => T): { ok: true; value: T } | { ok: false; error: unknown } => {
            try {
              return { ok: true, value: fn() };
            } catch (error) {
              return { ok: false, error };
            }
          };
          const answer = (result: { ok: true; value: T } | { ok: false; error: unknown }) => {
            const back = this.network.storeHop(host);
            if (back === undefined) return;
            clock.setTimeout(() => {
              if (!this.network.reachesQuorum(host)) return;
              settle(() => (result.ok ? resolve(result.value) : reject(result.error)));
            }, back);
          };
          const checked = attempt(apply);
          if (!checked.ok || land === undefined) answer(checked);
          else if (this.#casRaftMs === 0) answer(attempt(land));
          // Checked and proposed: it lands after its Raft round whatever else arrives meanwhile.
          else this.network.clock.setTimeout(() => answer(attempt(land)), this.#casRaftMs);
        }, out);
      });

    return {
      bucket: this.bucket,
      get: (key) => run("get", () => this.#entries.get(key)),
      create: (key, value) =>
        this.#cas(run, host, "create", key, value, () => {
          if (this.#entries.has(key)) throw new CasConflictError(this.bucket, key, "absent");
        }),
      update: (key, value, expected) =>
        this.#cas(run, host, "update", key, value, () => {
          const current = this.#entries.get(key)?.revision;
          if (current !== expected) throw new CasConflictError(this.bucket, key, expected, { current });
        }),
      keys: (prefix) =>
        run("keys", () =>
          [...this.#entries.keys()]
            .filter((key) => key.startsWith(prefix) && key.length > prefix.length)
            .sort(),
        ),
      watch: (key, onEntry) => {
        const watcher: Watcher = { host, key, clock, onEntry, active: !closed, lastDue: 0, lastRevision: 0 };
        if (!watcher.active) return () => {};
        watchers.add(watcher);
        this.#watchers.add(watcher);
        const current = this.#entries.get(key);
        if (current !== undefined) this.#notify(watcher, current);
        return () => {
          watcher.active = false;
          watchers.delete(watcher);
          this.#watchers.delete(watcher);
        };
      },
      close: async () => {
        closed = true;
        for (const abort of [...pending]) abort();
        for (const w of watchers) {
          w.active = false;
          this.#watchers.delete(w);
        }
        watchers.clear();
      },
    };
  }

  /** A compare-and-set: `check` on arrival, the write at once or after its Raft round (`casRaftMs`). */
  #cas(
    run: (operation: string, apply: () => number, land?: () => number) => Promise<number>,
    host: string,
    operation: string,
    key: string,
    value: Uint8Array,
    check: () => void,
  ): Promise<number> {
    // A write is taken when it passes its check: its record says then, even when it lands a Raft round later.
    let accepted: Omit<SimKvWrite, "entry"> = { at: 0, host };
    const checked = () => {
      check();
      const at = this.network.clock.now();
      accepted = this.witness === undefined ? { at, host } : { at, host, witnessed: this.witness(host) };
      return 0;
    };
    return run(operation, checked, () => this.#write(key, value, accepted));
  }

  #write(key: string, value: Uint8Array, accepted: Omit<SimKvWrite, "entry">): number {
    const entry: KvEntry = { key, value: value.slice(), revision: ++this.#revision };
    this.#entries.set(key, entry);
    this.writes.push({ ...accepted, entry });
    for (const w of this.#watchers) if (w.key === key) this.#notify(w, entry);
    return entry.revision;
  }

  #notify(watcher: Watcher, entry: KvEntry): void {
    const hop = this.network.reachesQuorum(watcher.host) ? this.network.storeHop(watcher.host) : undefined;
    if (hop === undefined) return;
    const now = this.network.clock.now();
    const due = Math.max(now + hop, watcher.lastDue);
    watcher.lastDue = due;
    watcher.clock.setTimeout(() => {
      if (!watcher.active || !this.network.reachesQuorum(watcher.host)) return;
      if (entry.revision <= watcher.lastRevision) return;
      watcher.lastRevision = entry.revision;
      watcher.onEntry(entry);
    }, due - now);
  }
}
