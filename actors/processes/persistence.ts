// How hosted processes survive a restart: the record of a process (snapshot,
// mailbox, numbering), saved a debounce after it changes and at stop, removed
// when it ends or moves away, and loaded when the node starts again. A message
// is acknowledged to its sender only once a record holding it is saved
// (`durable`), so a crash of the host cannot lose an acknowledged message.
import { type ErrorName, PROTOCOL_VERSION } from "../../protocol/messages.js";
import type { ProcessRecord } from "../../protocol/processes.js";
import type { Clock, TimerHandle } from "../../transport/clock.js";
import type { Logger } from "../logger.js";
import type { Hosted, HostedTable, Warn } from "./hosted.js";
import type { ProcessSnapshotStore } from "./processStore.js";

export interface PersistenceOptions {
  readonly table: HostedTable;
  /** Where records persist; none: processes do not survive a restart. */
  readonly snapshots: ProcessSnapshotStore | undefined;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly warn: Warn;
  /** Delay between a change of a process and the save of its record. */
  readonly debounceMs: number;
  /** Delay of a save someone waits for (`durable`): group commit of the messages arriving meanwhile. */
  readonly durableDelayMs: number;
  /** Whether the runtime runs (a stopped runtime saves nothing more). */
  readonly running: () => boolean;
}

export class Persistence {
  readonly #o: PersistenceOptions;
  readonly #dirty = new Set<string>();
  /** Per process, who waits for its next save (a message to acknowledge). */
  readonly #waiters = new Map<string, ((settled: ErrorName | undefined) => void)[]>();
  #timer: TimerHandle | undefined;
  #timerDue: number | undefined;
  /** The flush that runs, if any: one at a time, so two saves of one record never race. */
  #flushing: Promise<void> | undefined;

  constructor(options: PersistenceOptions) {
    this.#o = options;
  }

  /** The record of a hosted process: its snapshot and everything that moves or persists with it. */
  recordOf(h: Hosted, snapshot?: unknown, epoch = h.epoch): ProcessRecord | undefined {
    let taken = snapshot;
    if (taken === undefined) {
      if (h.actor === undefined) return undefined;
      try {
        taken = h.actor.getPersistedSnapshot();
      } catch (error) {
        this.#o.warn(`snapshot:${h.key}`, { err: error }, "could not snapshot a process");
        return undefined;
      }
    }
    return {
      v: PROTOCOL_VERSION,
      dcid: h.dcid,
      endpoint: h.endpoint,
      name: h.name,
      machine: h.machine,
      epoch,
      gen: h.gen,
      priv: h.priv,
      snapshot: taken,
      mailbox: h.mailbox.state(),
      ready: [...h.queue],
      sendSeq: { ...h.sendSeq },
      delivered: h.delivered,
      spawnedAt: h.spawnedAt,
      ...(h.provisional !== undefined ? { provisional: h.provisional } : {}),
    };
  }

  /** `h` changed: its record is saved after the debounce (one timer for all). */
  markDirty(h: Hosted): void {
    if (this.#o.snapshots === undefined || !this.#o.running()) return;
    this.#dirty.add(h.key);
    this.#schedule(this.#waiters.size > 0 ? this.#o.durableDelayMs : this.#o.debounceMs);
  }

  /**
   * Resolves once a record of `h` holding what it has now is saved: at once
   * without a store; while it migrates, when the move ends (`settle`). Resolves
   * with an error name when that can no longer happen (its copy here dropped).
   */
  durable(h: Hosted): Promise<ErrorName | undefined> {
    if (this.#o.snapshots === undefined) return Promise.resolve(undefined);
    if (!this.#o.running()) return Promise.resolve("EAGAIN");
    return new Promise((resolve) => {
      const list = this.#waiters.get(h.key) ?? [];
      list.push(resolve);
      this.#waiters.set(h.key, list);
      this.#dirty.add(h.key);
      this.#schedule(this.#o.durableDelayMs);
    });
  }

  /** Settles whoever waits for `key`'s save: it moved away (its new host saved it), ended, or was dropped. */
  settle(key: string, settled: ErrorName | undefined): void {
    const list = this.#waiters.get(key);
    this.#waiters.delete(key);
    for (const resolve of list ?? []) resolve(settled);
  }

  /** `key` is no longer hosted here: nothing of it is pending. */
  forget(key: string): void {
    this.#dirty.delete(key);
  }

  /** Arms the save timer to fire within `delayMs`, unless it fires sooner already. */
  #schedule(delayMs: number): void {
    const { clock } = this.#o;
    const due = clock.now() + delayMs;
    if (this.#timer !== undefined && this.#timerDue !== undefined && this.#timerDue <= due) return;
    clock.clearTimeout(this.#timer);
    this.#timerDue = due;
    this.#timer = clock.setTimeout(() => {
      this.#timer = undefined;
      this.#timerDue = undefined;
      void this.#flush();
    }, delayMs);
  }

  /** Removes the saved record of `h` and waits for it (its move is done: a restart must not run it here). */
  async removeSavedNow(h: Hosted): Promise<void> {
    try {
      await this.#o.snapshots?.remove(h.dcid, h.endpoint);
    } catch (error) {
      this.#o.warn("remove", { err: error }, "could not remove a process snapshot");
    }
  }

  /** Removes the saved record of `h` (it ended or moved away). */
  removeSaved(h: Hosted): void {
    this.#o.snapshots?.remove(h.dcid, h.endpoint).catch((error: unknown) => {
      this.#o.warn("remove", { err: error }, "could not remove a process snapshot");
    });
  }

  /**
   * At stop: cancels the pending save and saves every hosted process, waiting
   * at most `timeoutMs`. Nothing is pending afterwards.
   */
  async saveAll(timeoutMs: number): Promise<void> {
    const { clock, snapshots, table } = this.#o;
    clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerDue = undefined;
    await this.#flushing;
    const saves: Promise<unknown>[] = [];
    for (const h of table.hosted.values()) {
      // A process in the middle of a move persists as it was before it (the old epoch): if the
      // move succeeds after all, the record is removed; if not, the restart runs it on here.
      const record = h.shipped ? { ...h.shipped, epoch: h.epoch } : this.recordOf(h);
      if (record !== undefined && snapshots) {
        const waiting = h.shipped ? [] : this.#take(h.key);
        saves.push(this.#save(record).then((ok) => this.#resolve(h.key, waiting, ok)));
      }
    }
    if (saves.length > 0) {
      let timer: TimerHandle | undefined;
      const deadline = new Promise<void>((resolve) => {
        timer = clock.setTimeout(resolve, timeoutMs);
      });
      await Promise.race([Promise.all(saves), deadline]);
      clock.clearTimeout(timer);
    }
  }

  /** Forgets what is pending (the runtime stopped): whoever still waits for a save is told EAGAIN. */
  clear(): void {
    this.#dirty.clear();
    for (const key of [...this.#waiters.keys()]) this.settle(key, "EAGAIN");
  }

  /** The records persisted as hosted here (none when they cannot be loaded; unreadable ones are logged). */
  async load(): Promise<ProcessRecord[]> {
    const store = this.#o.snapshots;
    if (store === undefined) return [];
    let loaded: Awaited<ReturnType<ProcessSnapshotStore["load"]>>;
    try {
      loaded = await store.load();
    } catch (error) {
      this.#o.logger.error({ err: error }, "could not load the persisted processes");
      return [];
    }
    for (const skipped of loaded.skipped) {
      this.#o.logger.warn(skipped, "skipped an unreadable persisted process");
    }
    return loaded.processes;
  }

  async #flush(): Promise<void> {
    // A flush under way schedules what is dirty by then when it ends.
    if (this.#flushing !== undefined) return;
    this.#flushing = this.#flushOnce();
    try {
      await this.#flushing;
    } finally {
      this.#flushing = undefined;
    }
    if (this.#dirty.size > 0 && this.#o.running() && this.#timer === undefined) {
      this.#schedule(this.#waiters.size > 0 ? this.#o.durableDelayMs : this.#o.debounceMs);
    }
  }

  async #flushOnce(): Promise<void> {
    const keys = [...this.#dirty];
    this.#dirty.clear();
    for (const key of keys) {
      const h = this.#o.table.hosted.get(key);
      // Not hosted: whoever removed it settled its waiters. Migrating: settled when the move ends.
      if (h === undefined || h.actor === undefined) continue;
      const waiting = this.#take(key);
      const record = this.recordOf(h);
      if (record === undefined) {
        this.#putBack(key, waiting);
        continue;
      }
      this.#resolve(key, waiting, await this.#save(record));
    }
  }

  /** Who waits for `key`'s save now: the record about to be taken holds what they wait for. */
  #take(key: string): ((settled: ErrorName | undefined) => void)[] {
    const list = this.#waiters.get(key) ?? [];
    this.#waiters.delete(key);
    return list;
  }

  #putBack(key: string, waiting: ((settled: ErrorName | undefined) => void)[]): void {
    if (waiting.length === 0) return;
    this.#waiters.set(key, [...waiting, ...(this.#waiters.get(key) ?? [])]);
  }

  /** After a save: its waiters are settled; when it failed, they wait for the next try. */
  #resolve(key: string, waiting: ((settled: ErrorName | undefined) => void)[], saved: boolean): void {
    if (saved) {
      for (const resolve of waiting) resolve(undefined);
      return;
    }
    this.#putBack(key, waiting);
    // Retried after the debounce, not at once: a failing disk should not spin.
    if (this.#o.table.hosted.has(key) && this.#o.running()) {
      this.#dirty.add(key);
      this.#schedule(this.#o.debounceMs);
    }
  }

  async #save(record: ProcessRecord): Promise<boolean> {
    try {
      await this.#o.snapshots?.save(record);
      return true;
    } catch (error) {
      this.#o.warn("save", { err: error }, "could not save a process snapshot");
      return false;
    }
  }
}
