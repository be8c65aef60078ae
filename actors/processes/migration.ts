// MIGRATE: moving a process between nodes without losing or duplicating a
// message. The old host stops it and ships its record and what arrived
// meanwhile; the target saves it as a provisional copy, which holds new
// messages until the move is confirmed. Once the target answered, the old host
// removes its own record, keeps a forwarding pointer and announces the new
// location, which confirms the copy. A move that fails resumes on the old
// host; one whose answer never came resumes at a higher epoch and is aborted
// on the target (resent until answered). A provisional copy that hears
// nothing asks the old host until it learns whether the move happened, so a
// crash of either node mid-move leaves exactly one copy.
import { decode, encode } from "../../protocol/codec.js";
import { type NodeId, PROTOCOL_VERSION } from "../../protocol/messages.js";
import {
  type Envelope,
  type MigrationQueryReply,
  type MigrationReply,
  migrationMessageSchema,
  migrationQueryReplySchema,
  migrationReplySchema,
  type ProcessRecord,
} from "../../protocol/processes.js";
import type { Responder } from "../../protocol/responder.js";
import type { Subjects } from "../../protocol/subjects.js";
import type { Clock } from "../../transport/clock.js";
import { TimeoutError } from "../../transport/errors.js";
import type { Message, Transport } from "../../transport/transport.js";
import type { Logger } from "../logger.js";
import type { MachineRegistry } from "../machineRegistry.js";
import type { Outcome } from "../requestServer.js";
import type { Announcements } from "./announcements.js";
import { checkPlacement, type DcDirectory } from "./dcDirectory.js";
import { describe, fail, transportFailure } from "./failures.js";
import {
  entryOf,
  type Hosted,
  type HostedTable,
  type ProcessRuntimeStats,
  settleStash,
  tell,
  type Warn,
} from "./hosted.js";
import type { Hosting } from "./hosting.js";
import { procKey } from "./locations.js";
import type { Persistence } from "./persistence.js";
import { procUsrOf } from "./procInfo.js";
import type { Proxies } from "./proxy.js";
import type { Router } from "./routing.js";

export interface MigrationsOptions {
  readonly self: NodeId;
  readonly table: HostedTable;
  readonly transport: Transport;
  readonly subjects: Subjects;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly warn: Warn;
  readonly stats: ProcessRuntimeStats;
  readonly registry: MachineRegistry;
  readonly dcs: DcDirectory;
  /** Answers migration offers on the target. */
  readonly responder: Responder;
  readonly hosting: Hosting;
  readonly router: Router;
  readonly proxies: Proxies;
  readonly announcements: Announcements;
  readonly persistence: Persistence;
  /** How long the old host waits for the new one to take a migrating process. */
  readonly timeoutMs: number;
  /** How long the old host keeps resending the abort of a timed-out move before it gives up (and logs it). */
  readonly abortGiveUpMs: number;
  /** Whether `node` is this node or a member of its view. */
  readonly inView: (node: NodeId) => boolean;
  /** Whether the runtime runs. */
  readonly running: () => boolean;
}

export class Migrations {
  readonly #o: MigrationsOptions;

  constructor(options: MigrationsOptions) {
    this.#o = options;
  }

  /** On the old host: moves `h` to node `to`; answers with the process as its new host reports it. */
  async migrate(h: Hosted, to: NodeId): Promise<Outcome> {
    const { self, hosting, router, persistence, stats } = this.#o;
    const dc = checkPlacement(this.#o.dcs, self, h.dcid, to);
    if (dc) return dc;
    if (to === self) return { rcode: 0, data: procUsrOf(h, self) };
    if (!this.#o.inView(to)) return fail("EHOSTDOWN", `node ${to} is not in the view`);
    if (
      h.actor === undefined ||
      h.provisional !== undefined ||
      !h.lifecycle.getSnapshot().matches("running")
    ) {
      return fail("EBUSY", `process ${h.key} is migrating`);
    }
    let snapshot: unknown;
    try {
      snapshot = h.actor.getPersistedSnapshot();
    } catch (error) {
      return fail("EINVAL", `process ${h.key} cannot be snapshotted: ${describe(error)}`);
    }
    // From here on, arrivals are held in `stash` until the move succeeds or fails.
    h.lifecycle.send({ type: "process.migrate", to });
    hosting.stopActor(h);
    router.disarmGapTimer(h);
    const epoch = h.epoch + 1;
    const record = persistence.recordOf(h, snapshot, epoch)!;
    h.shipped = record;
    const shippedStash = h.stash.length;
    let reply: MigrationReply;
    let inDoubt = false;
    try {
      const offer = {
        v: PROTOCOL_VERSION,
        kind: "offer",
        from: self,
        process: record,
        stash: h.stash.slice(),
      };
      const msg = await this.#o.transport.request(this.#o.subjects.migrate(to), encode(offer), {
        timeoutMs: this.#o.timeoutMs,
      });
      const decoded = decode(msg.data, "cbor", Number.MAX_SAFE_INTEGER);
      const parsed = decoded.ok ? migrationReplySchema.safeParse(decoded.value) : undefined;
      reply = parsed?.success
        ? parsed.data
        : { ok: false, error: "EBADMSG", message: `node ${to} answered the migration unreadably` };
      // An unreadable answer may hide a copy the target started: as a timeout.
      if (!reply.ok && reply.error === "EBADMSG") inDoubt = true;
    } catch (error) {
      const failure = transportFailure(error, `node ${to}`);
      if (error instanceof TimeoutError) inDoubt = true;
      reply = { ok: false, ...failure };
    }
    if (inDoubt) this.#abort(h, to, epoch);
    // A restart must not run it here once the target has it: the record goes first.
    if (reply.ok) await persistence.removeSavedNow(h);
    if (!this.#o.running()) return fail("EAGAIN", "the process runtime stopped during the migration");
    // Ended meanwhile (its DC ended): nothing resumes or stays behind here.
    if (!this.#o.table.isCurrent(h)) return fail("ENOENT", `process ${h.key} ended during its migration`);
    if (!reply.ok) {
      stats.migrationsFailed++;
      // A copy the target may have taken runs at epoch + 1: this one, resumed, outranks it.
      this.#resume(h, snapshot, reply.message, inDoubt ? epoch + 1 : undefined);
      return fail(reply.error, reply.message);
    }
    stats.migrationsOut++;
    this.#movedAway(h, to, epoch, shippedStash);
    return { rcode: 0, data: reply.proc };
  }

  /** On the target: take an offered process, or drop one whose offer timed out at the old host. */
  receive(msg: Message): void {
    const answer = (reply: MigrationReply): void => {
      try {
        this.#o.responder.answer(msg, encode(reply));
      } catch (error) {
        this.#o.warn("migration-reply", { err: error }, "could not answer a migration");
      }
    };
    try {
      const decoded = decode(msg.data, "cbor", Number.MAX_SAFE_INTEGER);
      const parsed = decoded.ok ? migrationMessageSchema.safeParse(decoded.value) : undefined;
      if (parsed === undefined || !parsed.success) {
        this.#o.stats.badMessages++;
        this.#o.warn(
          "bad-migration",
          { bytes: msg.data.byteLength },
          "dropped an unreadable migration message",
        );
        answer({ ok: false, error: "EBADMSG", message: "unreadable migration offer" });
        return;
      }
      const m = parsed.data;
      if (m.kind === "abort") {
        const h = this.#o.table.hosted.get(procKey(m.dcid, m.endpoint));
        if (h !== undefined && h.epoch === m.epoch && h.provisional === m.from)
          this.#o.hosting.dropCopy(h, m.from);
        answer({ ok: true, proc: null });
        return;
      }
      if (m.kind === "query") {
        this.#o.responder.answer(msg, encode(this.#outcome(m.dcid, m.endpoint, m.from, m.epoch)));
        return;
      }
      const reply = this.#arrive(m.process, m.stash, m.from);
      const h = this.#o.table.hosted.get(procKey(m.process.dcid, m.process.endpoint));
      if (!reply.ok || h === undefined) {
        answer(reply);
        return;
      }
      // Taken only once saved: the old host then forgets it, and acknowledges what it shipped.
      void this.#o.persistence
        .durable(h)
        .then((settled) =>
          answer(
            settled === undefined ? reply : { ok: false, error: settled, message: "not saved on the target" },
          ),
        );
    } catch (error) {
      this.#o.warn("migration-handler", { err: error }, "a migration handler failed");
      answer({ ok: false, error: "EINVAL", message: "the migration failed on the target" });
    }
  }

  /** The move failed: the process runs on here from the snapshot (at `epoch` when given), then gets what was held. */
  #resume(h: Hosted, snapshot: unknown, reason: string, epoch: number | undefined): void {
    const { self, table } = this.#o;
    h.lifecycle.send({ type: "migration.failed", reason });
    h.shipped = undefined;
    if (epoch !== undefined) {
      h.epoch = epoch;
      const entry = entryOf(h, self, false);
      table.locations.set(entry);
      this.#o.announcements.publish([entry]);
    }
    this.#o.persistence.markDirty(h);
    try {
      this.#o.hosting.startActor(h, { snapshot });
      tell(h, { type: "dvs.restored", cause: "resumed" });
    } catch (error) {
      h.failed = true;
      this.#o.logger.error({ err: error, dcid: h.dcid, endpoint: h.endpoint }, "a process could not resume");
    }
    this.#release(h);
  }

  /** The process runs here again: what waited in its mailbox and its stash goes in, and gaps are timed again. */
  #release(h: Hosted): void {
    const { router } = this.#o;
    router.drain(h);
    const stash = h.stash;
    const waiters = h.stashWaiters;
    h.stash = [];
    h.stashWaiters = [];
    stash.forEach((msg, i) => {
      void router.take(h, msg).then(waiters[i]);
    });
    router.armGapTimer(h);
  }

  /** The move succeeded: keep a forwarding pointer, announce, pass on what arrived during the move. */
  #movedAway(h: Hosted, to: NodeId, epoch: number, shippedStash: number): void {
    const { table, persistence } = this.#o;
    h.lifecycle.send({ type: "migration.done", to, epoch });
    h.lifecycle.stop();
    table.hosted.delete(h.key);
    persistence.forget(h.key);
    table.moved.set(h.key, { to, epoch });
    h.epoch = epoch;
    const entry = entryOf(h, to, false);
    table.locations.set(entry);
    this.#o.announcements.publish([entry]);
    // The new host saved the record and the stash it was shipped: what they hold is delivered.
    persistence.settle(h.key, undefined);
    const later = h.stash.slice(shippedStash);
    const laterWaiters = h.stashWaiters.slice(shippedStash);
    h.stashWaiters = h.stashWaiters.slice(0, shippedStash);
    settleStash(h, undefined);
    later.forEach((msg, i) => {
      const sent = this.#o.proxies.send(to, { ...msg, hops: msg.hops + 1 });
      if ("error" in sent) laterWaiters[i]?.(sent.error);
      else void sent.settled.then(laterWaiters[i]);
    });
    persistence.removeSaved(h);
  }

  /**
   * The offer timed out: the target drops its copy if it took it after all. Sent
   * as a request and resent (backoff from `timeoutMs`, doubling, up to 8×) until
   * the target answers, for `abortGiveUpMs`; a target that never answers in that
   * time is logged as an error (its copy, if any, is not announced and gets no traffic).
   */
  #abort(h: Hosted, to: NodeId, epoch: number): void {
    const { transport, subjects, clock, self, timeoutMs, abortGiveUpMs, logger } = this.#o;
    const abort = encode({
      v: PROTOCOL_VERSION,
      kind: "abort",
      from: self,
      dcid: h.dcid,
      endpoint: h.endpoint,
      epoch,
    });
    const started = clock.now();
    const attempt = async (n: number): Promise<void> => {
      if (!this.#o.running()) return;
      try {
        await transport.request(subjects.migrate(to), abort, { timeoutMs });
        return;
      } catch (error) {
        if (clock.now() - started >= abortGiveUpMs) {
          logger.error(
            { err: error, to, dcid: h.dcid, endpoint: h.endpoint, epoch },
            "gave up aborting a timed-out migration: the target never answered",
          );
          return;
        }
        this.#o.warn(`abort:${to}`, { err: error, to, attempt: n }, "resending a migration abort");
      }
      await new Promise<void>((resolve) => clock.setTimeout(resolve, timeoutMs * 2 ** Math.min(n, 3)));
      return attempt(n + 1);
    };
    void attempt(1);
  }

  #arrive(r: ProcessRecord, stash: Envelope[], from: NodeId): MigrationReply {
    const { self, table, hosting, persistence } = this.#o;
    const key = procKey(r.dcid, r.endpoint);
    if (!this.#o.running())
      return { ok: false, error: "EAGAIN", message: "the process runtime is not running" };
    if (table.hosted.has(key)) return { ok: false, error: "EEXIST", message: `${key} already runs here` };
    const logic = this.#o.registry.get(r.machine);
    if (logic === undefined) {
      return { ok: false, error: "EINVAL", message: `node ${self} has no machine named ${r.machine}` };
    }
    const dc = checkPlacement(this.#o.dcs, self, r.dcid, self);
    if (dc) return { ok: false, ...dc };
    const h = hosting.create({ ...r, logic, restored: false, cameFrom: from });
    h.mailbox = hosting.newMailbox(r.mailbox, this.#o.clock.now());
    h.sendSeq = { ...r.sendSeq };
    h.delivered = r.delivered;
    h.queue = [...r.ready];
    table.hosted.set(key, h);
    table.moved.delete(key);
    try {
      hosting.startActor(h, { snapshot: r.snapshot });
    } catch (error) {
      table.hosted.delete(key);
      h.lifecycle.stop();
      return { ok: false, error: "EINVAL", message: `the snapshot did not start: ${describe(error)}` };
    }
    this.#o.stats.migrationsIn++;
    table.locations.set(entryOf(h, self, false));
    // What was shipped goes into the mailbox now (and is saved before the answer); nothing is handed
    // to the actor, and what arrives later is held, until the old host confirms the move.
    for (const msg of stash) {
      const accepted = h.mailbox.accept(msg, this.#o.clock.now());
      if (accepted.duplicate) h.duplicates++;
      else h.queue.push(...accepted.ready);
    }
    h.provisional = from;
    persistence.markDirty(h);
    this.watch(h);
    return { ok: true, proc: procUsrOf(h, self) };
  }

  /**
   * The move of provisional `h` is confirmed (its old host announced it here,
   * or answered a query so): it runs, and gets what was held.
   */
  confirm(h: Hosted): void {
    const { table } = this.#o;
    if (h.provisional === undefined || !table.isCurrent(h)) return;
    h.provisional = undefined;
    this.#o.clock.clearTimeout(h.gapTimer);
    h.gapTimer = undefined;
    tell(h, { type: "dvs.restored", cause: h.restored ? "restarted" : "migrated" });
    this.#release(h);
    this.#o.persistence.markDirty(h);
    this.#o.announcements.publish([entryOf(h, this.#o.self, false)]);
  }

  /**
   * Asks the old host of provisional `h` whether its move happened, until it
   * knows (backoff from `timeoutMs`, doubling up to 8×): committed confirms it,
   * aborted drops it. An announcement or an abort may settle it first.
   */
  watch(h: Hosted): void {
    const { clock, transport, subjects, self, timeoutMs } = this.#o;
    const from = h.provisional;
    if (from === undefined) return;
    const query = encode({
      v: PROTOCOL_VERSION,
      kind: "query",
      from: self,
      dcid: h.dcid,
      endpoint: h.endpoint,
      epoch: h.epoch,
    });
    const ask = async (n: number): Promise<void> => {
      await new Promise<void>((resolve) => clock.setTimeout(resolve, timeoutMs * 2 ** Math.min(n, 3)));
      if (!this.#o.running() || !this.#o.table.isCurrent(h) || h.provisional !== from) return;
      let outcome: MigrationQueryReply["outcome"] = "pending";
      try {
        const msg = await transport.request(subjects.migrate(from), query, { timeoutMs });
        const decoded = decode(msg.data, "cbor", Number.MAX_SAFE_INTEGER);
        const parsed = decoded.ok ? migrationQueryReplySchema.safeParse(decoded.value) : undefined;
        if (parsed?.success) outcome = parsed.data.outcome;
      } catch (error) {
        this.#o.warn(`query:${from}`, { err: error, from }, "could not ask the old host about a move");
      }
      if (!this.#o.table.isCurrent(h) || h.provisional !== from) return;
      if (outcome === "committed") this.confirm(h);
      else if (outcome === "aborted") this.#o.hosting.dropCopy(h, from);
      else return ask(n + 1);
    };
    void ask(0);
  }

  /**
   * On the old host, a query from the provisional copy on `target` at `epoch`:
   * still moving there, pending; a forwarding pointer there at that epoch, or
   * no trace at all (the record is removed only once the target took it),
   * committed; running here (resumed), or moved on elsewhere, aborted.
   */
  #outcome(dcid: number, endpoint: number, target: NodeId, epoch: number): MigrationQueryReply {
    const key = procKey(dcid, endpoint);
    const h = this.#o.table.hosted.get(key);
    if (h !== undefined) {
      const moving = h.lifecycle.getSnapshot().matches("migrating") && h.shipped?.epoch === epoch;
      return {
        outcome: moving && h.lifecycle.getSnapshot().context.migratingTo === target ? "pending" : "aborted",
      };
    }
    const pointer = this.#o.table.moved.get(key);
    if (pointer === undefined) return { outcome: "committed" };
    return { outcome: pointer.to === target && pointer.epoch === epoch ? "committed" : "aborted" };
  }
}
