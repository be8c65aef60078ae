// The process side of a node (SPEC 5, "process" and "node & proxy" rows):
// processes are XState actors spawned from registered machines in a DC, at an
// endpoint valid on every node. ProcessRuntime wires the parts of this folder
// together and is what the node sees: start/stop, the request handlers, view
// changes. Hosting (hosting.ts), message routing in per-sender order
// (routing.ts, mailbox.ts, proxy.ts), what processes emit (emissions.ts),
// MIGRATE (migration.ts), locations (announcements.ts, locations.ts) and
// snapshots (persistence.ts, processStore.ts) each live in their own module.
//
// The event contract with a process machine (see docs/processes.md and
// machines/processEvents.ts):
// - in: `{type: "dvs.message", from, seq, body}` for each message, in order per
//   sender; `{type: "dvs.rply", id, rply}` answering one of its requests;
//   `{type: "dvs.error", op, id?, error, message}` when one of its sends or
//   requests was refused (EPERM) or failed.
// - out (XState `emit`): `{type: "dvs.send", dcid?, endpoint, body}` sends a
//   message; `{type: "dvs.rqst", id, request, dst?, params?}` makes a request.
import type { ViewChange } from "../../machines/membership.js";
import type { ProxyMachine } from "../../machines/proxy.js";
import type { NodeId } from "../../protocol/messages.js";
import type { Location } from "../../protocol/processes.js";
import { Responder, refusalLog } from "../../protocol/responder.js";
import type { Subjects } from "../../protocol/subjects.js";
import type { Clock } from "../../transport/clock.js";
import type { Subscription, Transport } from "../../transport/transport.js";
import { type Logger, throttledWarn } from "../logger.js";
import type { MachineRegistry } from "../machineRegistry.js";
import type { RequestHandlers } from "../requestServer.js";
import { Announcements } from "./announcements.js";
import { ClientSenders } from "./clientSenders.js";
import type { DcDirectory } from "./dcDirectory.js";
import { DcProcesses, type DcProcessPort } from "./dcProcesses.js";
import { Emissions } from "./emissions.js";
import { type Forwarder, Forwarding } from "./forwarding.js";
import { HostedTable, type ProcessRuntimeStats, type Warn } from "./hosted.js";
import { Hosting, type MailboxFactory } from "./hosting.js";
import { procKey } from "./locations.js";
import { Migrations } from "./migration.js";
import { Persistence } from "./persistence.js";
import type { ProcessSnapshotStore } from "./processStore.js";
import { type ProcUsr, procUsrOf } from "./procInfo.js";
import { type NodeTraffic, Proxies, type ProxyStats, type Settlement } from "./proxy.js";
import { ProcessRequests } from "./requests.js";
import { Router } from "./routing.js";
import { type ProcessTimings, processTimings } from "./timings.js";

export interface ProcessRuntimeOptions {
  readonly node: NodeId;
  readonly subjects: Subjects;
  readonly transport: Transport;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly registry: MachineRegistry;
  /** The DC tables this node knows (its DvsStore). */
  readonly dcs: DcDirectory;
  /** Carries a request to another node's request server (its ReplicationServer). */
  readonly forwarder: Forwarder;
  /** Where process snapshots persist; none: processes do not survive a restart. */
  readonly snapshots?: ProcessSnapshotStore;
  readonly timings?: Partial<ProcessTimings>;
  /**
   * This run of the node (its membership incarnation). Requesters' messages are
   * numbered per run, so a restarted node's numbering cannot collide with the
   * previous one's. Default: the clock's time at construction.
   */
  readonly incarnation?: number;
  /** The proxy pair machine (default: machines/proxy.ts); the model swaps in faulty ones. */
  readonly proxyMachine?: ProxyMachine;
  /** Makes processes' mailboxes (default: `new Mailbox`); the model swaps in faulty ones. */
  readonly mailboxes?: MailboxFactory;
}

export class ProcessRuntime {
  readonly name = "processes";
  readonly stats: ProcessRuntimeStats = {
    undeliverable: 0,
    badMessages: 0,
    lostReplies: 0,
    migrationsOut: 0,
    migrationsFailed: 0,
    migrationsIn: 0,
  };
  readonly #o: ProcessRuntimeOptions;
  readonly #t: ProcessTimings;
  readonly #self: NodeId;
  readonly #table = new HostedTable();
  readonly #proxies: Proxies;
  readonly #persistence: Persistence;
  readonly #router: Router;
  readonly #announcements: Announcements;
  readonly #hosting: Hosting;
  readonly #migrations: Migrations;
  readonly #clientSenders: ClientSenders;
  readonly #requests: ProcessRequests;
  readonly #dcProcesses: DcProcesses;
  #subscriptions: Subscription[] = [];
  /** The members of this node's current view; this node alone until the first view. */
  #members: readonly NodeId[];
  #running = false;

  constructor(options: ProcessRuntimeOptions) {
    this.#o = options;
    this.#t = processTimings(options.timings);
    const self = options.node;
    this.#self = self;
    this.#members = [self];
    const { transport, subjects, clock, logger, registry, dcs } = options;
    const incarnation = options.incarnation ?? clock.now();
    const warn: Warn = throttledWarn(logger, clock);
    const table = this.#table;
    const stats = this.stats;
    const running = (): boolean => this.#running;
    const inView = (node: NodeId): boolean => node === self || this.#members.includes(node);
    const responder = new Responder(transport, {
      onRefused: (reply, subject) => warn("reply-subject", ...refusalLog(reply, subject)),
    });
    const proxies = new Proxies({
      node: self,
      subjects,
      transport,
      clock,
      logger,
      epoch: incarnation,
      limits: this.#t,
      ...(options.proxyMachine ? { machine: options.proxyMachine } : {}),
      deliver: (msg): Promise<Settlement> => {
        const routed = router.route(msg);
        return "error" in routed ? Promise.resolve(routed.error) : routed.settled;
      },
    });
    const persistence = new Persistence({
      table,
      snapshots: options.snapshots,
      clock,
      logger,
      warn,
      debounceMs: this.#t.persistDebounceMs,
      durableDelayMs: this.#t.durableDelayMs,
      running,
    });
    const router = new Router({
      self,
      table,
      proxies,
      transport,
      clock,
      warn,
      stats,
      persistence,
      gapTimeoutMs: this.#t.gapTimeoutMs,
      inView,
      dcEnded: (dcid) => dcs.ended?.(dcid) ?? false,
    });
    const forwarding = new Forwarding(self, options.forwarder);
    const emissions = new Emissions({ self, table, router, forwarding, persistence, warn, stats, inView });
    const announcements = new Announcements({
      self,
      table,
      transport,
      subjects,
      logger,
      warn,
      stats,
      onStale: (h) => hosting.dropCopy(h, undefined),
      onConfirmed: (h) => migrations.confirm(h),
    });
    const hosting = new Hosting({
      self,
      table,
      clock,
      logger,
      warn,
      registry,
      router,
      emissions,
      announcements,
      persistence,
      ...(options.mailboxes ? { mailboxes: options.mailboxes } : {}),
    });
    const migrations = new Migrations({
      self,
      table,
      transport,
      subjects,
      clock,
      logger,
      warn,
      stats,
      registry,
      dcs,
      responder,
      hosting,
      router,
      proxies,
      announcements,
      persistence,
      timeoutMs: this.#t.migrationTimeoutMs,
      abortGiveUpMs: this.#t.abortGiveUpMs,
      inView,
      running,
    });
    const clientSenders = new ClientSenders(self, incarnation);
    this.#dcProcesses = new DcProcesses({ self, table, dcs, hosting, migrations, logger, inView });
    this.#proxies = proxies;
    this.#persistence = persistence;
    this.#router = router;
    this.#announcements = announcements;
    this.#hosting = hosting;
    this.#migrations = migrations;
    this.#clientSenders = clientSenders;
    this.#requests = new ProcessRequests({
      self,
      table,
      clock,
      registry,
      dcs,
      hosting,
      router,
      migrations,
      announcements,
      persistence,
      forwarding,
      clientSenders,
      proxies,
      inView,
      running,
    });
  }

  /** Subscribes, restores the processes persisted as hosted here, and announces them. */
  async start(): Promise<void> {
    if (this.#running) return;
    const { transport, subjects } = this.#o;
    this.#proxies.start(this.#members);
    this.#subscriptions = [
      transport.subscribe(subjects.procLocation, (msg) => this.#announcements.receive(msg)),
      transport.subscribe(subjects.migrate(this.#self), (msg) => this.#migrations.receive(msg)),
    ];
    this.#running = true;
    this.#hosting.restore(await this.#persistence.load());
    for (const h of this.#table.hosted.values()) this.#migrations.watch(h);
    this.#announcements.publish(this.#announceable());
  }

  /** Saves every hosted process's snapshot (bounded by `stopTimeoutMs`), stops the actors, unsubscribes. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    for (const sub of this.#subscriptions) sub.unsubscribe();
    this.#subscriptions = [];
    for (const h of this.#table.hosted.values()) this.#router.disarmGapTimer(h);
    await this.#persistence.saveAll(this.#t.stopTimeoutMs);
    for (const h of this.#table.hosted.values()) {
      this.#hosting.stopActor(h);
      h.lifecycle.stop();
    }
    this.#table.hosted.clear();
    this.#persistence.clear();
    this.#proxies.stop();
  }

  /** Request handlers: GETPROCINFO SETPRIV GETPRIV MIGRATE SPAWN SEND PROCEND GETPROXYINFO GETPROXYSTS. */
  handlers(): RequestHandlers {
    return this.#requests.handlers();
  }

  /** What DCEND, DELNODE and DC tables learnt from other nodes do to the processes (actors/dvsTables.ts). */
  get dcProcesses(): DcProcessPort {
    return this.#dcProcesses;
  }

  /** Traffic totals for GETNODEINFO. */
  traffic(): NodeTraffic {
    return this.#proxies.traffic();
  }

  /** GETPROXYSTS of every pair (for the node's own status pages and tests). */
  proxyStats(): ProxyStats[] {
    return this.#proxies.allStats();
  }

  /** How many proxy pairs run an actor (a pair gets one when it first carries a frame). */
  get proxyActors(): number {
    return this.#proxies.actors;
  }

  /** Requesters whose numbering this node keeps (at most MAX_CLIENT_SENDERS). */
  get clientSenders(): number {
    return this.#clientSenders.size;
  }

  /**
   * Called on every view change. The members count at once (sends and requests
   * check them); the rest runs in a microtask, out of the membership machine's
   * action, as it creates actors: proxies of peers that left go down (their
   * processes are unreachable, EHOSTDOWN), and when members joined, the
   * processes hosted here are announced again so the joiners learn where they are.
   */
  onView(members: readonly NodeId[], _change?: ViewChange): void {
    const before = new Set(this.#members);
    this.#members = [...members];
    const joined = members.some((m) => m !== this.#self && !before.has(m));
    queueMicrotask(() => {
      this.#proxies.onView(members);
      if (joined && this.#running) this.#announcements.publish(this.#announceable());
    });
  }

  /** Where the processes hosted here run, but for provisional copies (their old host announces them). */
  #announceable(): Location[] {
    return this.#table.locations
      .of(this.#self)
      .filter((e) => this.#table.hosted.get(procKey(e.dcid, e.endpoint))?.provisional === undefined);
  }

  /** The processes hosted here, as GETPROCINFO shows them (for the node's own status pages and tests). */
  processes(): ProcUsr[] {
    return [...this.#table.hosted.values()].map((h) => procUsrOf(h, this.#self));
  }

  /**
   * The processes hosted here and what waits in their mailboxes: messages
   * accepted and not yet handed to the actor, held for an earlier one, or
   * stashed during a move; in all and in the fullest one.
   */
  mailboxes(): { readonly hosted: number; readonly total: number; readonly max: number } {
    let total = 0;
    let max = 0;
    for (const h of this.#table.hosted.values()) {
      const waiting = h.queue.length + h.stash.length + h.mailbox.pendingCount;
      total += waiting;
      if (waiting > max) max = waiting;
    }
    return { hosted: this.#table.hosted.size, total, max };
  }

  /** Where this node believes process `(dcid, endpoint)` runs. */
  locate(dcid: number, endpoint: number): Location | undefined {
    return this.#table.locations.get(dcid, endpoint);
  }
}
