// How hosted processes survive a restart: the record of a process (snapshot,
// mailbox, numbering), saved a debounce after it changes and at stop, removed
// when it ends or moves away, and loaded when the node starts again.
import { PROTOCOL_VERSION } from "../../protocol/messages.js";
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
  /** Whether the runtime runs (a stopped runtime saves nothing more). */
  readonly running: () => boolean;
}

export class Persistence {
  readonly #o: PersistenceOptions;
  readonly #dirty = new Set<string>();
  #timer: TimerHandle | undefined;

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
    };
  }

  /** `h` changed: its record is saved after the debounce (one timer for all). */
  markDirty(h: Hosted): void {
    if (this.#o.snapshots === undefined || !this.#o.running()) return;
    this.#dirty.add(h.key);
    if (this.#timer !== undefined) return;
    this.#timer = this.#o.clock.setTimeout(() => {
      this.#timer = undefined;
      void this.#flush();
    }, this.#o.debounceMs);
  }

  /** `key` is no longer hosted here: nothing of it is pending. */
  forget(key: string): void {
    this.#dirty.delete(key);
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
    const saves: Promise<void>[] = [];
    for (const h of table.hosted.values()) {
      // A process in the middle of a move persists as it was before it (the old epoch): if the
      // move succeeds after all, the record is removed; if not, the restart runs it on here.
      const record = h.shipped ? { ...h.shipped, epoch: h.epoch } : this.recordOf(h);
      if (record !== undefined && snapshots) saves.push(this.#save(record));
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

  /** Forgets what is pending (the runtime stopped). */
  clear(): void {
    this.#dirty.clear();
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
    const keys = [...this.#dirty];
    this.#dirty.clear();
    for (const key of keys) {
      const h = this.#o.table.hosted.get(key);
      if (h === undefined || h.actor === undefined) continue;
      const record = this.recordOf(h);
      if (record !== undefined) await this.#save(record);
    }
  }

  async #save(record: ProcessRecord): Promise<void> {
    try {
      await this.#o.snapshots?.save(record);
    } catch (error) {
      this.#o.warn("save", { err: error }, "could not save a process snapshot");
    }
  }
}
