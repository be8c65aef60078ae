// The node runtime: runs the node lifecycle machine (machines/node.ts) as an
// actor and gives it its effects. The node is made of subsystems of one shape
// (actors/subsystem.ts) — requests, DVS tables, processes, status, membership
// and the server's DISCONNECT advisories, files, election, discovery, event
// scripts, host — built in one place, started in one loop, told each view
// change in one loop and stopped in one loop, in the drain order. The same
// runtime runs over NATS (`dvsd run`) and over the simulated network (tests),
// since everything it touches is injected.
import { join } from "node:path";
import { createActor, fromPromise, type SnapshotFrom, waitFor } from "xstate";
import { defaultElectionTimings } from "../machines/electionTimings.js";
import { defaultTimings, type MembershipTimings, type ViewChange } from "../machines/membership.js";
import { type NodeMachineInput, nodeMachine } from "../machines/node.js";
import { type EventMessage, type NodeId, type NodeStatus, PROTOCOL_VERSION } from "../protocol/messages.js";
import { type Subjects, subjects as subjectsOf } from "../protocol/subjects.js";
import { systemRandom } from "../transport/clock.js";
import type { Transport, TransportStatus } from "../transport/transport.js";
import { type ActionEvents, actionEventsFor } from "./actionEvents.js";
import type { NodeIdentity } from "./discovery.js";
import { DvsStore } from "./dvsStore.js";
import { DvsTables, type NodeControl, notInitializedGate } from "./dvsTables.js";
import { Election } from "./election.js";
import { Endpoints } from "./endpoints.js";
import { FileService } from "./files/fileService.js";
import { defaultRegistry } from "./machineRegistry.js";
import { Membership } from "./membership.js";
import type { ElectionMetrics } from "./metrics.js";
import { DisconnectWatch } from "./node/disconnects.js";
import type { NodeComponents, NodeOptions } from "./node/options.js";
import { ServiceRegistration } from "./node/registration.js";
import { NodeRequests } from "./node/requests.js";
import { StatusResponder } from "./node/status.js";
import { FileSnapshotStore, MemorySnapshotStore } from "./processes/processStore.js";
import { ProcessRuntime } from "./processes/runtime.js";
import { composeGates, QuorumGate } from "./quorumGate.js";
import { ReplicationServer } from "./replication.js";
import type { RequestHandlers } from "./requestServer.js";
import { type Subsystem, servingOnly } from "./subsystem.js";

export type { NodeComponents, NodeOptions } from "./node/options.js";

export type NodeSnapshot = SnapshotFrom<typeof nodeMachine>;

/** Default for `NodeOptions.requestTimeoutMs`. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 2_000;

/** The start of a node's end reason when its NATS connection closed under it (not asked to stop). */
const CLOSED_LINK = "connection closed";

/** Whether a node ended because its connection closed under it: the daemon then exits 1. */
export function endedByClosedLink(reason: string | undefined): boolean {
  return reason?.startsWith(CLOSED_LINK) ?? false;
}

/**
 * The drain order of the subsystems, not the reverse of their start: first,
 * while the link is up, the file store stops taking work and a coordinator
 * gives its term back; then the server's advisories stop raising suspicions,
 * the leave is announced, the processes save their snapshots, the requests
 * stop and the answers under way go out; the remaining subscriptions and the
 * discovery announcement go last.
 */
const STOP_ORDER: readonly string[] = [
  "files",
  "election",
  "disconnects",
  "membership",
  "processes",
  "requests",
  "dvs",
  "status",
  "registration",
  "scripts",
  "host",
];

/** The subsystems of a running node, the ones the runtime names kept apart for its getters. */
interface NodeParts<T extends Transport> {
  /** Every part, in start order (also the order in which they hear of a view change). */
  readonly all: readonly Subsystem[];
  readonly requests: NodeRequests;
  readonly processes: ProcessRuntime;
  readonly registration: ServiceRegistration<T>;
  readonly election: Election | undefined;
  readonly files: FileService | undefined;
  readonly endpoints: Endpoints;
}

export class NodeRuntime<T extends Transport = Transport> implements NodeControl {
  readonly actor;
  readonly subjects: Subjects;
  /** The DVS and DC tables of this node. */
  readonly store: DvsStore;
  #identity: NodeIdentity;
  #transport: T | undefined;
  #parts: NodeParts<T> | undefined;
  /** Parts whose start was entered, in start order: the drain stops these. */
  readonly #started: Subsystem[] = [];
  /** Parts started and running, in start order: view changes reach these. */
  readonly #ready: Subsystem[] = [];
  /**
   * Membership is driven here rather than kept as one loop entry's object: a
   * rejoin or a DVSINIT after DVSEND replaces it with a new incarnation's, and
   * DVSEND drops it while the rest of the node keeps serving.
   */
  #membership: Membership | undefined;
  #lastViewId = 0;
  /** Records this node's COMMITs, coordinator terms and view changes in the action log (SPEC 6.4). */
  #actionEvents: ActionEvents | undefined;
  #stopLink: (() => void) | undefined;
  #startError: unknown;
  readonly #timings: MembershipTimings;

  constructor(
    readonly options: NodeOptions,
    readonly components: NodeComponents<T>,
  ) {
    const { logger, clock } = components;
    this.#identity = { node: options.node, cluster: options.cluster, incarnation: options.incarnation };
    this.#timings = options.timings ?? defaultTimings();
    this.subjects = subjectsOf(options.cluster);
    this.store = new DvsStore({
      node: options.node,
      logger,
      ...(components.stateDir !== undefined ? { stateDir: components.stateDir } : {}),
    });
    const machine = nodeMachine.provide({
      actors: {
        connect: fromPromise(async () => {
          try {
            await this.#connect();
          } catch (error) {
            this.#startError = error;
            throw error;
          }
        }),
        drain: fromPromise(async () => this.#drain()),
      },
      actions: {
        reportRunning: () =>
          logger.info(
            { incarnation: this.#identity.incarnation, view: this.#membership?.context.view },
            "node joined",
          ),
        reportIsolated: () => logger.warn("lost the NATS link; isolated until it comes back"),
        reportReconnected: () => logger.info("NATS link restored"),
        reportLeaving: ({ context }) => logger.info({ reason: context.reason }, "node leaving"),
        reportFailed: (_, params) => logger.error({ err: params.error }, "node failed"),
        reportEnded: ({ context }) =>
          // Not asked to end: the connection closed under the node, and the daemon exits 1.
          endedByClosedLink(context.reason)
            ? logger.error({ reason: context.reason }, "node ended: its NATS connection closed")
            : logger.info({ reason: context.reason }, "node ended"),
      },
    });
    const input: NodeMachineInput = this.#identity;
    this.actor = createActor(machine, { input, clock });
  }

  get identity(): NodeIdentity {
    return this.#identity;
  }

  get transport(): T | undefined {
    return this.#transport;
  }

  get membership(): Membership | undefined {
    return this.#membership;
  }

  get replication(): ReplicationServer | undefined {
    return this.#parts?.requests.replication;
  }

  get processes(): ProcessRuntime | undefined {
    return this.#parts?.processes;
  }

  /** The registry and server roles, once started, when the node has a coordinator store. */
  get election(): Election | undefined {
    return this.#running(this.#parts?.election);
  }

  /** The file store of this node, once started, when it runs one. */
  get files(): FileService | undefined {
    return this.#running(this.#parts?.files);
  }

  /** The public subjects this node serves now, with their counters (`$SRV.INFO`, `$SRV.STATS`). */
  get endpoints(): Endpoints | undefined {
    return this.#parts?.endpoints;
  }

  /** The members of this node's view; just itself while out of the DVS (after DVSEND). */
  viewMembers(): readonly NodeId[] {
    return this.#membership?.context.view.members ?? [this.#identity.node];
  }

  /** The coordinator this node's registry names now, for GETNODEINFO. */
  coordinator(): { readonly nodeid: NodeId; readonly epoch: number } | null {
    const who = this.election?.state().who;
    return who?.type === "OK" ? { nodeid: who.coordinator, epoch: who.epoch } : null;
  }

  /** True while the node takes part in the view (false before it joins and after DVSEND). */
  get attached(): boolean {
    return this.#membership !== undefined;
  }

  /** DVSINIT after DVSEND: join the view again as a new incarnation. */
  attach(): void {
    void this.#attach();
  }

  /** DVSEND: leave the view gracefully (the others see DISCONNECT at once), keep serving requests. */
  detach(): void {
    void this.#detach();
  }

  start(): this {
    this.actor.start();
    return this;
  }

  /** Resolves once the node serves requests; rejects with the start error if it ended first. */
  async running(timeoutMs = 30_000): Promise<void> {
    const snap = await waitFor(this.actor, (s) => s.matches("running") || s.status === "done", {
      timeout: timeoutMs,
    });
    if (snap.status !== "done") return;
    if (this.#startError instanceof Error) throw this.#startError;
    throw new Error(`node ${this.#identity.node} ended before it ran: ${snap.context.reason}`);
  }

  /** Graceful stop: announces the leave, drains and closes; resolves when the node has ended. */
  async stop(reason = "stop", timeoutMs = 10_000): Promise<void> {
    this.actor.send({ type: "node.stop", reason });
    await this.ended(timeoutMs);
  }

  /** Resolves with the reason once the node has ended. */
  async ended(timeoutMs = Number.POSITIVE_INFINITY): Promise<string> {
    const snap = await waitFor(this.actor, (s) => s.status === "done", { timeout: timeoutMs });
    return snap.context.reason ?? "ended";
  }

  /** What `dvsctl members` shows for this node. */
  status(): NodeStatus {
    const snap = this.actor.getSnapshot();
    const ctx = this.#membership?.context;
    const state = typeof snap.value === "string" ? snap.value : Object.values(snap.value).join(".");
    return {
      v: PROTOCOL_VERSION,
      node: this.#identity.node,
      incarnation: this.#identity.incarnation,
      state: ctx?.minority ? `${state} (minority)` : state,
      view: ctx ? { id: ctx.view.id, members: [...ctx.view.members] } : { id: 0, members: [] },
      minority: ctx?.minority ?? false,
      peers: ctx
        ? Object.entries(ctx.peers).map(([node, p]) => ({
            node: Number(node),
            incarnation: p.incarnation,
            state: p.state,
          }))
        : [],
      pid: this.components.pid ?? 0,
    };
  }

  #running<P extends Subsystem>(part: P | undefined): P | undefined {
    return part !== undefined && this.#ready.includes(part) ? part : undefined;
  }

  async #connect(): Promise<void> {
    const transport = await this.components.connect(this.#identity);
    this.#transport = transport;
    // Stopped while connecting: start nothing; the machine goes on to drain.
    if (this.#stopRequested()) return;
    this.#stopLink = transport.onStatus((status) => this.#onLink(status));
    const parts = this.#assemble(transport);
    this.#parts = parts;
    for (const part of parts.all) {
      this.#started.push(part);
      // Only a part that starts asynchronously is awaited: the others start in the same turn, as one.
      const starting = part.start();
      if (starting instanceof Promise) await starting;
      this.#ready.push(part);
    }
    if (!this.#stopRequested()) await transport.flush();
  }

  /**
   * Builds every part of the node and wires them by narrow ports: the DVS
   * tables, the processes and the requests forward through the replication
   * server; the processes read the DC tables; the election and the file store
   * know each other as `ServerFiles` and `FileElection`. The runtime itself is
   * the `NodeControl` of the DVS requests and the view of the replication server.
   */
  #assemble(transport: T): NodeParts<T> {
    const { logger, clock, stateDir, metrics } = this.components;
    const node = this.#identity.node;
    const floor = { subjects: this.subjects, transport, clock, logger };
    const measured = metrics ? { metrics } : {};
    // The public subjects this node serves, counted for `$SRV` (actors/discovery.ts).
    const endpoints = new Endpoints({ transport, clock });
    const replication = new ReplicationServer({
      node,
      ...floor,
      view: this,
      timeoutMs: this.options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
      ...measured,
    });
    const processes = new ProcessRuntime({
      node,
      ...floor,
      registry: this.components.registry ?? defaultRegistry(),
      dcs: this.store,
      forwarder: replication,
      snapshots:
        stateDir !== undefined
          ? new FileSnapshotStore(join(stateDir, "processes"))
          : new MemorySnapshotStore(),
      incarnation: this.#identity.incarnation,
      ...(this.options.processTimings ? { timings: this.options.processTimings } : {}),
    });
    const dvs = new DvsTables({
      node,
      store: this.store,
      ...floor,
      control: this,
      forwarder: replication,
      traffic: processes,
      processes: processes.dcProcesses,
    });
    const actionLog = this.components.actionLog?.(transport);
    const random = this.components.random ?? systemRandom;
    this.#actionEvents = actionEventsFor(actionLog, { node, clock, logger, random, addr: this.options.addr });
    const quorum = this.#quorumGate();
    const { election, files } = this.#serverRoles(transport, quorum, endpoints);
    const registration = new ServiceRegistration<T>({
      transport,
      identity: this.#identity,
      endpoints,
      logger,
      ...(this.components.register ? { register: this.components.register } : {}),
    });
    const served: Subsystem[] = [
      ...(this.#actionEvents ? [this.#actionEvents] : []),
      servingOnly("host", this.components.hostHandlers ?? {}),
      dvs,
      processes,
      new StatusResponder({ ...floor, node: this }),
      {
        name: "membership",
        start: () => this.#startMembership(transport, undefined),
        // Whichever incarnation's membership runs by then (a rejoin replaces it).
        stop: () => this.#membership?.stop({ leave: true }),
      },
      new DisconnectWatch({
        ...floor,
        cluster: this.options.cluster,
        self: node,
        suspect: (peer) => this.#membership?.suspect(peer),
        quietMs: this.#timings.heartbeatMs,
      }),
      // The file store starts before the election, so a new coordinator finds it listening.
      ...(files ? [files] : []),
      ...(election ? [election] : []),
      registration,
      {
        name: "scripts",
        start: () => {},
        stop: () => {},
        onView: (_members, _change, event) => {
          if (event) this.components.onViewChange?.(event);
        },
      },
    ];
    // One request type, one handler: a later part's wins, and the options' own win over all.
    const handlers: RequestHandlers = {};
    for (const part of served) Object.assign(handlers, part.handlers?.());
    const requests = new NodeRequests({
      node,
      cluster: this.options.cluster,
      ...floor,
      handlers: { ...handlers, ...this.options.handlers },
      gate: composeGates(notInitializedGate(this.store), quorum.request),
      refuseFirst: quorum.request,
      replication,
      adminKeys: this.options.adminKeys ?? [],
      random: this.components.random ?? systemRandom,
      ...(actionLog ? { actionLog } : {}),
      ...(this.options.addr ? { addr: this.options.addr } : {}),
      ...measured,
      endpoints,
    });
    // The requests start first: the others forward through its replication server.
    return { all: [requests, ...served], requests, processes, registration, election, files, endpoints };
  }

  /** Acts on the minority mark of whichever incarnation's membership runs (none after DVSEND: no mark). */
  #quorumGate(): QuorumGate {
    const { minorityRefuses } = this.options;
    const options = {
      minority: () => this.#membership?.context.minority ?? false,
      ...(minorityRefuses ? { refuses: minorityRefuses } : {}),
    };
    return this.components.quorumGate?.(options) ?? new QuorumGate(options);
  }

  /** The election, when the node has a coordinator store, and the file store, when it also has replicas. */
  #serverRoles(
    transport: T,
    quorum: QuorumGate,
    endpoints: Endpoints,
  ): { election?: Election; files?: FileService } {
    const { coordinatorStore, replicas, clock, logger, metrics } = this.components;
    if (!coordinatorStore) return {};
    const store = coordinatorStore(transport);
    const serverType = this.options.election?.serverType ?? "active";
    const election = new Election({
      self: this.#identity.node,
      incarnation: this.#identity.incarnation,
      serverType,
      subjects: this.subjects,
      transport,
      store,
      clock,
      logger: logger.child({ role: "election" }),
      timings: this.options.election?.timings ?? defaultElectionTimings(),
      endpoints,
    });
    if (metrics) countTerms(election, metrics);
    this.#actionEvents?.watchElection(election);
    if (!replicas) return { election };
    const files = new FileService({
      self: this.#identity.node,
      serverType,
      subjects: this.subjects,
      transport,
      store,
      replicas: replicas(),
      ...(this.components.catalogWrites ? { catalogWrites: this.components.catalogWrites() } : {}),
      election,
      clock,
      logger: logger.child({ role: "files" }),
      endpoints,
      ...(this.options.files ? { settings: this.options.files } : {}),
      ...(metrics ? { metrics } : {}),
      readOnly: () => quorum.readOnly(),
      ...(this.#actionEvents ? { actions: this.#actionEvents } : {}),
    });
    election.carryFiles(files);
    return { election, files };
  }

  #onLink(status: TransportStatus): void {
    if (status.type === "disconnected") {
      this.actor.send({ type: "link.down" });
      this.#membership?.link(false);
    } else if (status.type === "connected") {
      this.actor.send({ type: "link.up" });
      this.#membership?.link(true);
    } else if (status.type === "closed") {
      this.actor.send({
        type: "link.closed",
        reason: status.error ? `${CLOSED_LINK}: ${status.error.message}` : CLOSED_LINK,
      });
    }
  }

  #stopRequested(): boolean {
    return this.actor.getSnapshot().context.reason !== undefined;
  }

  #startMembership(transport: T, viewId: number | undefined): void {
    const { logger, clock } = this.components;
    const membership = new Membership({
      self: { node: this.#identity.node, incarnation: this.#identity.incarnation },
      subjects: this.subjects,
      timings: this.#timings,
      quorum: this.options.quorum ?? false,
      ...(this.options.membershipMachine ? { machine: this.options.membershipMachine } : {}),
      ...(viewId !== undefined ? { viewId } : {}),
      transport,
      clock,
      logger,
      onChange: (change, event) => this.#onViewChange(change, event),
      onRejoin: (_reason, lastViewId) => void this.#rejoin(lastViewId),
      ...(this.components.metrics ? { metrics: this.components.metrics } : {}),
    });
    this.#membership = membership;
    membership.start();
  }

  #onViewChange(change: ViewChange, event: EventMessage): void {
    this.#lastViewId = change.view.id;
    this.components.metrics?.viewChanged(change.event);
    if (change.cause === "started" || this.actor.getSnapshot().matches({ running: "joining" })) {
      this.actor.send({ type: "membership.joined" });
    }
    this.#tellView(change.view.members, change, event);
  }

  /** Every running part hears of the view, in start order. */
  #tellView(members: readonly NodeId[], change?: ViewChange, event?: EventMessage): void {
    for (const part of this.#ready) part.onView?.(members, change, event);
  }

  async #detach(): Promise<void> {
    const membership = this.#membership;
    if (!membership) return;
    this.#membership = undefined;
    this.actor.send({ type: "dvs.ended" });
    this.#parts?.requests.leaveCluster();
    // Alone now; no change to tell: running gathers keep waiting for the members they expected.
    this.#tellView(this.viewMembers());
    await membership.stop({ leave: true });
    this.components.logger.info("left the DVS (DVSEND)");
  }

  async #attach(): Promise<void> {
    const transport = this.#transport;
    if (!transport || this.#membership || this.#stopRequested()) return;
    await this.#newIncarnation(transport, this.#lastViewId);
    this.#parts?.requests.joinCluster();
    this.actor.send({ type: "dvs.initialized" });
  }

  /** The others declared this incarnation down: come back as a new one, keeping the view ids growing. */
  async #rejoin(viewId: number): Promise<void> {
    const transport = this.#transport;
    const old = this.#membership;
    if (!transport || !old) return;
    await old.stop({ leave: false });
    await this.#newIncarnation(transport, viewId);
  }

  async #newIncarnation(transport: T, viewId: number): Promise<void> {
    const next = this.components.nextIncarnation?.() ?? this.#identity.incarnation + 1;
    this.#identity = { ...this.#identity, incarnation: next };
    this.components.logger.warn({ incarnation: next }, "rejoining as a new incarnation");
    this.#startMembership(transport, viewId);
    await this.#parts?.registration.renew(this.#identity);
  }

  /**
   * Stops the parts that started, in STOP_ORDER, then the link listener and the
   * connection. A part that fails to stop is logged and the drain goes on, so
   * the connection still closes.
   */
  async #drain(): Promise<void> {
    const rank = (part: Subsystem) => {
      const at = STOP_ORDER.indexOf(part.name);
      return at < 0 ? STOP_ORDER.length : at;
    };
    for (const part of [...this.#started].sort((a, b) => rank(a) - rank(b))) {
      try {
        const stopping = part.stop();
        if (stopping) await stopping;
      } catch (error) {
        this.components.logger.warn({ err: error }, `could not stop the ${part.name} cleanly`);
      }
    }
    this.#stopLink?.();
    await this.#transport?.close();
  }
}

/**
 * Counts the terms this node's server wins: each epoch it enters the
 * coordinator state with, once (a renewal keeps the epoch). The subscription
 * ends with the election's actors.
 */
function countTerms(election: Election, metrics: ElectionMetrics): void {
  let counted = 0;
  election.server.subscribe((snap) => {
    if (snap.value !== "coordinator" || snap.context.epoch === counted) return;
    counted = snap.context.epoch;
    metrics.termWon(counted);
  });
}
