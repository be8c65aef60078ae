// The lifecycle of a process hosted here: its slot and lifecycle machine, its
// actor started fresh or from a snapshot and stopped, its end (tombstone
// announced, record removed), and the processes restored when the node starts.
import { type AnyStateMachine, createActor, type Snapshot } from "xstate";
import { processLifecycleMachine } from "../../machines/process.js";
import type { NodeId } from "../../protocol/messages.js";
import type { MailboxState, Privileges, ProcessRecord } from "../../protocol/processes.js";
import type { Clock } from "../../transport/clock.js";
import type { Logger } from "../logger.js";
import type { MachineRegistry } from "../machineRegistry.js";
import type { Announcements } from "./announcements.js";
import type { Emissions } from "./emissions.js";
import { entryOf, type Hosted, type HostedTable, settleStash, tell, type Warn } from "./hosted.js";
import { procKey } from "./locations.js";
import { Mailbox } from "./mailbox.js";
import type { Persistence } from "./persistence.js";
import type { Router } from "./routing.js";

export interface HostingOptions {
  readonly self: NodeId;
  readonly table: HostedTable;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly warn: Warn;
  readonly registry: MachineRegistry;
  readonly router: Router;
  readonly emissions: Emissions;
  readonly announcements: Announcements;
  readonly persistence: Persistence;
  /** Makes a process's mailbox, empty or restored (default: `new Mailbox`); tests swap in a faulty one. */
  readonly mailboxes?: MailboxFactory;
}

export type MailboxFactory = (state?: MailboxState, now?: number) => Mailbox;

/** What a hosted process is made from (a SPAWN, a record restored or arrived). */
export interface HostedSpec {
  readonly dcid: number;
  readonly endpoint: number;
  readonly name: string;
  readonly machine: string;
  readonly logic: AnyStateMachine;
  readonly epoch: number;
  readonly gen: number;
  readonly priv: Privileges;
  readonly restored: boolean;
  readonly cameFrom: NodeId | undefined;
  readonly spawnedAt: number;
}

export class Hosting {
  readonly #o: HostingOptions;
  #nextNr = 1;

  constructor(options: HostingOptions) {
    this.#o = options;
  }

  /** A new hosted process, not in the table yet, with its lifecycle machine running and no actor. */
  create(r: HostedSpec): Hosted {
    const lifecycle = createActor(processLifecycleMachine, {
      input: { dcid: r.dcid, endpoint: r.endpoint, machine: r.machine, epoch: r.epoch },
      clock: this.#o.clock,
    }).start();
    return {
      key: procKey(r.dcid, r.endpoint),
      dcid: r.dcid,
      endpoint: r.endpoint,
      name: r.name,
      machine: r.machine,
      logic: r.logic,
      nr: this.#nextNr++,
      spawnedAt: r.spawnedAt,
      restored: r.restored,
      cameFrom: r.cameFrom,
      provisional: undefined,
      gen: r.gen,
      epoch: r.epoch,
      priv: { rqsts: [...r.priv.rqsts], endpoints: [...r.priv.endpoints] },
      actor: undefined,
      lifecycle,
      mailbox: this.newMailbox(),
      queue: [],
      draining: false,
      stash: [],
      stashWaiters: [],
      shipped: undefined,
      sendSeq: {},
      delivered: 0,
      duplicates: 0,
      gaps: 0,
      refused: 0,
      failed: false,
      getfrom: null,
      sendto: null,
      gapTimer: undefined,
    };
  }

  /** A mailbox, empty or restored from `state` (its waiting messages restamped `now`). */
  newMailbox(state?: MailboxState, now?: number): Mailbox {
    return this.#o.mailboxes?.(state, now) ?? new Mailbox(state, now);
  }

  /** Creates and starts the process's actor, fresh (`input`) or from a persisted snapshot. */
  startActor(h: Hosted, from: { input: unknown } | { snapshot: unknown }): void {
    const { clock, table, emissions } = this.#o;
    const actor = createActor(
      h.logic,
      "snapshot" in from
        ? { clock, snapshot: from.snapshot as Snapshot<unknown> }
        : { clock, input: from.input },
    );
    // What an actor does after it was stopped or replaced is not the process's any more.
    const mine = (): boolean => h.actor === actor && table.isCurrent(h);
    actor.on("dvs.send", (emitted: unknown) => {
      if (mine()) emissions.onSend(h, emitted);
    });
    actor.on("dvs.rqst", (emitted: unknown) => {
      if (mine()) emissions.onRqst(h, emitted);
    });
    actor.subscribe({
      next: (snapshot) => {
        if (snapshot.status === "done" && mine()) this.end(h, "reached a final state");
      },
      // Subscribing to errors keeps XState from rethrowing them outside the clock.
      error: (error) => {
        if (h.actor !== actor) return;
        h.failed = true;
        this.#o.logger.error({ err: error, dcid: h.dcid, endpoint: h.endpoint }, "a process failed");
      },
    });
    h.actor = actor;
    h.failed = false;
    actor.start();
  }

  stopActor(h: Hosted): void {
    const actor = h.actor;
    h.actor = undefined;
    if (actor === undefined) return;
    try {
      actor.stop();
    } catch (error) {
      this.#o.warn("stop-actor", { err: error }, "a process actor failed to stop");
    }
  }

  /** Ends a process hosted here: tombstone announced, snapshot removed. */
  end(h: Hosted, reason: string): void {
    const { table, persistence } = this.#o;
    if (!table.isCurrent(h)) return;
    h.lifecycle.send({ type: "process.end", reason });
    h.lifecycle.stop();
    this.#o.router.disarmGapTimer(h);
    table.hosted.delete(h.key);
    persistence.forget(h.key);
    // What it accepted counts as delivered; what waited for the end of a move never will be.
    persistence.settle(h.key, undefined);
    settleStash(h, "ENOENT");
    const actor = h.actor;
    h.actor = undefined;
    if (actor !== undefined && actor.getSnapshot().status === "active") {
      try {
        actor.stop();
      } catch (error) {
        this.#o.warn("stop-actor", { err: error }, "a process actor failed to stop");
      }
    }
    const tombstone = { ...entryOf(h, this.#o.self, true), epoch: h.epoch + 1 };
    table.locations.set(tombstone);
    this.#o.announcements.publish([tombstone]);
    persistence.removeSaved(h);
  }

  /** Drops a copy of a process this node should not run (an aborted move, or a newer host elsewhere). */
  dropCopy(h: Hosted, backTo: NodeId | undefined): void {
    const { table, persistence } = this.#o;
    this.stopActor(h);
    h.lifecycle.stop();
    this.#o.router.disarmGapTimer(h);
    table.hosted.delete(h.key);
    persistence.forget(h.key);
    // What this copy took is lost with it: its senders are told, not acknowledged.
    persistence.settle(h.key, "EAGAIN");
    settleStash(h, "EAGAIN");
    if (backTo !== undefined) {
      table.moved.set(h.key, { to: backTo, epoch: h.epoch - 1 });
      table.locations.set({ ...entryOf(h, backTo, false), epoch: h.epoch - 1 });
    }
    persistence.removeSaved(h);
  }

  /** Runs on the processes persisted as hosted here, each as a new generation. */
  restore(records: readonly ProcessRecord[]): void {
    const { self, table, registry, clock, logger, router, persistence } = this.#o;
    for (const r of records) {
      const key = procKey(r.dcid, r.endpoint);
      const logic = registry.get(r.machine);
      if (logic === undefined || table.hosted.has(key)) {
        logger.warn({ dcid: r.dcid, endpoint: r.endpoint, machine: r.machine }, "cannot restore a process");
        continue;
      }
      // A new generation: what it sent before the restart may be lost, so it numbers afresh as a new sender.
      const h = this.create({ ...r, gen: r.gen + 1, logic, restored: true, cameFrom: undefined });
      h.mailbox = this.newMailbox(r.mailbox, clock.now());
      h.delivered = r.delivered;
      h.queue = [...r.ready];
      // A copy whose move was not confirmed before the crash waits for its old host's word (Migrations.watch).
      h.provisional = r.provisional;
      table.hosted.set(key, h);
      try {
        this.startActor(h, { snapshot: r.snapshot });
      } catch (error) {
        table.hosted.delete(key);
        h.lifecycle.stop();
        logger.error({ err: error, dcid: r.dcid, endpoint: r.endpoint }, "a process did not restore");
        continue;
      }
      table.locations.set(entryOf(h, self, false));
      if (h.provisional === undefined) {
        tell(h, { type: "dvs.restored", cause: "restarted" });
        router.drain(h);
      }
      router.armGapTimer(h);
      persistence.markDirty(h);
    }
  }
}
