// MIGRATE: moving a process between nodes without losing or duplicating a
// message. The old host stops it, ships its record and what arrived meanwhile,
// and keeps a forwarding pointer once the new host took it; a move that fails
// resumes it here, and one that timed out is aborted on the target.
import { decode, encode } from "../../protocol/codec.js";
import { type NodeId, PROTOCOL_VERSION } from "../../protocol/messages.js";
import {
  type Envelope,
  type MigrationReply,
  migrationMessageSchema,
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
  tell,
  type Warn,
} from "./hosted.js";
import type { Hosting } from "./hosting.js";
import { procKey } from "./locations.js";
import { Mailbox } from "./mailbox.js";
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
    if (h.actor === undefined || !h.lifecycle.getSnapshot().matches("running")) {
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
    } catch (error) {
      const failure = transportFailure(error, `node ${to}`);
      if (error instanceof TimeoutError) this.#abort(h, to, epoch);
      reply = { ok: false, ...failure };
    }
    if (!this.#o.running()) {
      if (reply.ok) persistence.removeSaved(h);
      return fail("EAGAIN", "the process runtime stopped during the migration");
    }
    if (!reply.ok) {
      stats.migrationsFailed++;
      this.#resume(h, snapshot, reply.message);
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
        if (h !== undefined && h.epoch === m.epoch && h.cameFrom === m.from)
          this.#o.hosting.dropCopy(h, m.from);
        return;
      }
      answer(this.#arrive(m.process, m.stash, m.from));
    } catch (error) {
      this.#o.warn("migration-handler", { err: error }, "a migration handler failed");
      answer({ ok: false, error: "EINVAL", message: "the migration failed on the target" });
    }
  }

  /** The move failed: the process runs on here from the snapshot, then gets what was held. */
  #resume(h: Hosted, snapshot: unknown, reason: string): void {
    const { router } = this.#o;
    h.lifecycle.send({ type: "migration.failed", reason });
    h.shipped = undefined;
    try {
      this.#o.hosting.startActor(h, { snapshot });
      tell(h, { type: "dvs.restored", cause: "resumed" });
    } catch (error) {
      h.failed = true;
      this.#o.logger.error({ err: error, dcid: h.dcid, endpoint: h.endpoint }, "a process could not resume");
    }
    router.drain(h);
    for (const msg of h.stash.splice(0)) router.take(h, msg);
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
    for (const msg of h.stash.slice(shippedStash)) this.#o.proxies.send(to, { ...msg, hops: msg.hops + 1 });
    h.stash = [];
    persistence.removeSaved(h);
  }

  /** The offer timed out: the target drops its copy if it took it after all. */
  #abort(h: Hosted, to: NodeId, epoch: number): void {
    try {
      const abort = {
        v: PROTOCOL_VERSION,
        kind: "abort",
        from: this.#o.self,
        dcid: h.dcid,
        endpoint: h.endpoint,
        epoch,
      };
      this.#o.transport.publish(this.#o.subjects.migrate(to), encode(abort));
    } catch (error) {
      this.#o.warn("abort", { err: error, to }, "could not publish a migration abort");
    }
  }

  #arrive(r: ProcessRecord, stash: Envelope[], from: NodeId): MigrationReply {
    const { self, table, hosting, router, persistence } = this.#o;
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
    h.mailbox = new Mailbox(r.mailbox, this.#o.clock.now());
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
    tell(h, { type: "dvs.restored", cause: "migrated" });
    router.drain(h);
    for (const msg of stash) router.take(h, msg);
    router.armGapTimer(h);
    persistence.markDirty(h);
    return { ok: true, proc: procUsrOf(h, self) };
  }
}
