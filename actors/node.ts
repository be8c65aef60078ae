// The node runtime: runs the node lifecycle machine as an actor and gives it
// its effects — connect the transport, register for discovery, serve requests,
// keep the membership view, run the event scripts, drain on stop. The same
// runtime runs over NATS (`dvsd run`) and over the simulated network (tests),
// since everything it touches is injected.
import { join } from "node:path";
import { createActor, fromPromise, type SnapshotFrom, waitFor } from "xstate";
import {
  defaultTimings,
  type MembershipMachine,
  type MembershipTimings,
  type ViewChange,
} from "../machines/membership.js";
import { type NodeMachineInput, nodeMachine } from "../machines/node.js";
import { defaultElectionTimings, type ElectionTimings } from "../machines/server.js";
import { ReplayGuard, TrustedAdminKeys, verifyRqstAuth } from "../protocol/adminSignature.js";
import { decode, encode } from "../protocol/codec.js";
import {
  type EventMessage,
  type NodeId,
  type NodeStatus,
  PROTOCOL_VERSION,
  type RequestType,
  type Rqst,
  type ServerType,
} from "../protocol/messages.js";
import { Responder, refusalLog } from "../protocol/responder.js";
import { type Subjects, subjects as subjectsOf } from "../protocol/subjects.js";
import { type ActionLog, actionIds } from "../transport/actionLog.js";
import { type Clock, type Random, systemRandom } from "../transport/clock.js";
import type { CasStore } from "../transport/kv.js";
import type { Subscription, Transport } from "../transport/transport.js";
import { ActionRecorder } from "./actionRecorder.js";
import type { NodeIdentity, Registration } from "./discovery.js";
import { type DvsNodeContext, dvsRequestHandlers, notInitializedGate } from "./dvsRequests.js";
import { DvsStore, dcRecordSchema } from "./dvsStore.js";
import { Election } from "./election.js";
import { FileService, type FileSettings } from "./files/fileService.js";
import type { ReplicaStore } from "./files/replicaStore.js";
import { type Logger, throttledWarn } from "./logger.js";
import { defaultRegistry, type MachineRegistry } from "./machineRegistry.js";
import { Membership } from "./membership.js";
import { FileSnapshotStore, MemorySnapshotStore } from "./processes/processStore.js";
import { ProcessRuntime } from "./processes/runtime.js";
import type { ProcessTimings } from "./processes/timings.js";
import { ReplicationServer } from "./replication.js";
import { type Outcome, type RequestHandlers, RequestServer } from "./requestServer.js";

export interface NodeComponents<T extends Transport = Transport> {
  readonly clock: Clock;
  readonly logger: Logger;
  /** Opens this node's connection. */
  readonly connect: (identity: NodeIdentity) => Promise<T>;
  /** Announces the node for discovery (NATS micro service); optional. */
  readonly register?: (transport: T, identity: NodeIdentity) => Promise<Registration>;
  /** The next incarnation of this node, persisted; used when the cluster declared this one down. */
  readonly nextIncarnation?: () => number;
  /** Receives every view change this node observes, in order (the event scripts). */
  readonly onViewChange?: (event: EventMessage) => void;
  /** The process id reported by `dvsctl members`. */
  readonly pid?: number;
  /** Where the DVS and DC tables and process snapshots persist; memory only when absent. */
  readonly stateDir?: string;
  /** The machines processes can be spawned from (default: the example machines). */
  readonly registry?: MachineRegistry;
  /** The action log this node writes the actions that come in on it to (SPEC 6.4); none when absent. */
  readonly actionLog?: (transport: T) => ActionLog;
  /** Randomness for action ids (default: the system's). */
  readonly random?: Random;
  /** Handlers for the host group (PS, KILL, COMMAND…); ENOSYS for them when absent. */
  readonly hostHandlers?: RequestHandlers;
  /** The store the registry's coordinator record lives in (SPEC 7); no election runs when absent. */
  readonly coordinatorStore?: (transport: T) => CasStore;
  /** Where this server keeps file replicas (SPEC 8); the file store runs when this and the election do. */
  readonly replicas?: () => ReplicaStore;
}

export interface NodeOptions {
  readonly node: NodeId;
  readonly cluster: string;
  readonly incarnation: number;
  /** Handlers added to (or replacing) the built-in ones, by request type. */
  readonly handlers?: RequestHandlers;
  /** How long a forwarded or `dst: ALL` request waits for answers when it names no timeout. */
  readonly requestTimeoutMs?: number;
  readonly timings?: MembershipTimings;
  readonly processTimings?: Partial<ProcessTimings>;
  readonly quorum?: boolean;
  /** The membership machine to run (tests pass mutated ones). */
  readonly membershipMachine?: MembershipMachine;
  /** This node's server role and the election's timings (defaults: active, a 400 ms lease). */
  readonly election?: { readonly serverType?: ServerType; readonly timings?: ElectionTimings };
  /** The file store's settings (replication factor, sessions, timeouts). */
  readonly files?: Partial<FileSettings>;
  /** Admin public nkeys (`U…`) whose signature a mutating request passed on between nodes must carry. */
  readonly adminKeys?: readonly string[];
}

export type NodeSnapshot = SnapshotFrom<typeof nodeMachine>;

/** Longest a stopping node waits for the answers under way to go out. */
const DRAIN_ANSWERS_MS = 1_000;

/** Default for `NodeOptions.requestTimeoutMs`. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 2_000;

/** The start of a node's end reason when its NATS connection closed under it (not asked to stop). */
const CLOSED_LINK = "connection closed";

/** Whether a node ended because its connection closed under it: the daemon then exits 1. */
export function endedByClosedLink(reason: string | undefined): boolean {
  return reason?.startsWith(CLOSED_LINK) ?? false;
}

/** Mutating requests addressed by (dcid, endpoint): a node forwards them to the process's host, whatever `dst` the admin signed. */
const PROCESS_ADDRESSED: ReadonlySet<RequestType> = new Set<RequestType>(["SETPRIV", "MIGRATE", "PROCEND"]);

export class NodeRuntime<T extends Transport = Transport> {
  readonly actor;
  readonly subjects: Subjects;
  /** The DVS and DC tables of this node. */
  readonly store: DvsStore;
  #identity: NodeIdentity;
  #transport: T | undefined;
  #requestServer: RequestServer | undefined;
  #replication: ReplicationServer | undefined;
  #processes: ProcessRuntime | undefined;
  #dcSyncSub: Subscription | undefined;
  #lastViewId = 0;
  #registration: Registration | undefined;
  #membership: Membership | undefined;
  #election: Election | undefined;
  #files: FileService | undefined;
  #statusSub: Subscription | undefined;
  #stopStatus: (() => void) | undefined;
  #startError: unknown;
  readonly #timings: MembershipTimings;
  /** Warnings about what other nodes send, at most one per kind per period. */
  readonly #warn: ReturnType<typeof throttledWarn>;

  constructor(
    readonly options: NodeOptions,
    readonly components: NodeComponents<T>,
  ) {
    const { logger, clock } = components;
    this.#identity = { node: options.node, cluster: options.cluster, incarnation: options.incarnation };
    this.#timings = options.timings ?? defaultTimings();
    this.#warn = throttledWarn(logger, clock);
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
            await this.#connect(options.handlers ?? {});
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

  /**
   * Checks the admin's signature on a mutating request another node passed on
   * (docs/security.md, property 3). A process's own SEND to a process on
   * another node is the one unsigned exception: a process messages others as
   * its proxy frames do.
   */
  #relayAuth(clock: Clock): (rqst: Rqst) => ReturnType<typeof verifyRqstAuth> {
    const trustedKeys = new TrustedAdminKeys(this.options.adminKeys ?? []);
    const replay = new ReplayGuard();
    // The replay memory starts with this incarnation: nothing signed before it is taken.
    const notBefore = clock.now();
    return (rqst) => {
      if (rqst.type === "SEND" && typeof rqst.src === "string" && rqst.src.startsWith("proc:") && !rqst.auth)
        return { ok: true, key: "" };
      return verifyRqstAuth(rqst, {
        cluster: this.options.cluster,
        node: this.#identity.node,
        trustedKeys,
        now: clock.now(),
        replay,
        notBefore,
        anyNode: PROCESS_ADDRESSED.has(rqst.type),
      });
    };
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
    return this.#replication;
  }

  get processes(): ProcessRuntime | undefined {
    return this.#processes;
  }

  /** The registry and server roles, when the node has a coordinator store. */
  get election(): Election | undefined {
    return this.#election;
  }

  /** The file store of this node, when it runs one. */
  get files(): FileService | undefined {
    return this.#files;
  }

  /** The members of this node's view; just itself while out of the DVS (after DVSEND). */
  viewMembers(): readonly NodeId[] {
    return this.#membership?.context.view.members ?? [this.#identity.node];
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

  async #connect(handlers: RequestHandlers): Promise<void> {
    const { logger, clock } = this.components;
    const transport = await this.components.connect(this.#identity);
    this.#transport = transport;
    // Stopped while connecting: start nothing; the machine goes on to drain.
    if (this.#stopRequested()) return;
    this.#stopStatus = transport.onStatus((status) => {
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
    });
    const replication = new ReplicationServer({
      node: this.#identity.node,
      subjects: this.subjects,
      transport,
      clock,
      logger,
      view: () => this.viewMembers(),
      timeoutMs: this.options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    });
    this.#replication = replication;
    replication.start();
    const { stateDir } = this.components;
    const processes = new ProcessRuntime({
      node: this.#identity.node,
      subjects: this.subjects,
      transport,
      clock,
      logger,
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
    this.#processes = processes;
    this.#requestServer = new RequestServer({
      node: this.#identity.node,
      subjects: this.subjects,
      transport,
      clock,
      logger,
      handlers: {
        ...this.components.hostHandlers,
        ...dvsRequestHandlers(this.#dvsContext(replication, processes)),
        ...processes.handlers(),
        ...handlers,
      },
      gate: notInitializedGate(this.store),
      replication,
      relayAuth: this.#relayAuth(clock),
      ...(this.components.actionLog
        ? {
            actions: new ActionRecorder({
              log: this.components.actionLog(transport),
              node: this.#identity.node,
              clock,
              logger,
              newId: actionIds(clock, this.components.random ?? systemRandom),
            }),
          }
        : {}),
    });
    this.#requestServer.start();
    this.#dcSyncSub = transport.subscribe(this.subjects.dcSync(this.#identity.node), (msg) =>
      this.#onDcSync(msg.data),
    );
    await processes.start();
    const statusResponder = new Responder(transport, {
      onRefused: (reply, subject) => this.#warn("reply-subject", ...refusalLog(reply, subject)),
    });
    this.#statusSub = transport.subscribe(this.subjects.status, (msg) => {
      statusResponder.answer(msg, encode(this.status()));
    });
    this.#startMembership(transport, undefined);
    if (this.components.coordinatorStore) {
      const store = this.components.coordinatorStore(transport);
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
        files: () => this.#files?.held() ?? [],
        onCoordinator: (event) => this.#files?.coordinatorChanged(event.coordinator),
      });
      if (this.components.replicas) {
        this.#files = await new FileService({
          self: this.#identity.node,
          serverType,
          subjects: this.subjects,
          transport,
          store,
          replicas: this.components.replicas(),
          election,
          clock,
          logger: logger.child({ role: "files" }),
          ...(this.options.files ? { settings: this.options.files } : {}),
        }).start();
      }
      this.#election = election.start();
    }
    if (this.components.register)
      this.#registration = await this.components.register(transport, this.#identity);
    if (!this.#stopRequested()) await transport.flush();
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
    });
    this.#membership = membership;
    membership.start();
  }

  #onViewChange(change: ViewChange, event: EventMessage): void {
    this.#lastViewId = change.view.id;
    if (change.cause === "started" || this.actor.getSnapshot().matches({ running: "joining" })) {
      this.actor.send({ type: "membership.joined" });
    }
    this.#replication?.view(change.view.members);
    // The process side takes the members at once and creates its actors (proxy pairs) in a microtask.
    this.#processes?.onView(change.view.members, change);
    if (change.event === "JOIN" || change.event === "MERGE")
      this.#offerDcs(change.changed.map((m) => m.node));
    if (change.event === "DISCONNECT") for (const m of change.changed) this.#election?.serverGone(m.node);
    // Crashed or cut off (PARTITION) or gone (DISCONNECT): the file store stops waiting on it.
    if (change.event === "DISCONNECT" || change.event === "PARTITION")
      for (const m of change.changed) this.#files?.serverLeft(m.node);
    this.components.onViewChange?.(event);
  }

  /** Sends this node's DC tables to nodes that joined, so a late node learns the DCs it belongs to. */
  #offerDcs(nodes: readonly NodeId[]): void {
    const transport = this.#transport;
    const records = this.store.records();
    if (!transport || records.length === 0) return;
    const bytes = encode(records);
    for (const node of nodes) {
      if (node === this.#identity.node) continue;
      try {
        transport.publish(this.subjects.dcSync(node), bytes);
      } catch (error) {
        this.components.logger.warn({ err: error, node }, "could not offer the DC tables");
      }
    }
  }

  #onDcSync(data: Uint8Array): void {
    const decoded = decode(data, "cbor", this.#transport?.maxPayload);
    const parsed = decoded.ok ? dcRecordSchema.array().max(65_536).safeParse(decoded.value) : undefined;
    if (!parsed?.success) {
      this.#warn("dcsync", {}, "dropped malformed DC tables from another node");
      return;
    }
    if (this.store.merge(parsed.data)) this.components.logger.info("learnt DC tables from another node");
  }

  #dvsContext(replication: ReplicationServer, processes: ProcessRuntime): DvsNodeContext {
    return {
      node: this.#identity.node,
      store: this.store,
      identity: () => {
        const status = this.status();
        return { incarnation: status.incarnation, state: status.state, minority: status.minority };
      },
      view: () => (this.#membership ? this.viewMembers() : []),
      attached: () => this.#membership !== undefined,
      attach: () => void this.#attach(),
      detach: () => void this.#detach(),
      traffic: () => processes.traffic(),
      // The other node's answer, error data included, is answered as it came.
      forward: async (rqst: Rqst, dst: NodeId): Promise<Outcome> => {
        const rply = await replication.forward(rqst, dst);
        return { rcode: rply.rcode, data: rply.data };
      },
    };
  }

  /** DVSEND: leave the view gracefully (the others see DISCONNECT at once), keep serving requests. */
  async #detach(): Promise<void> {
    const membership = this.#membership;
    if (!membership) return;
    this.#membership = undefined;
    this.actor.send({ type: "dvs.ended" });
    this.#requestServer?.leaveCluster();
    this.#processes?.onView(this.viewMembers());
    // Running gathers keep waiting for the members they expected: a DVSEND to ALL still hears from everyone.
    await membership.stop({ leave: true });
    this.components.logger.info("left the DVS (DVSEND)");
  }

  /** DVSINIT after DVSEND: join the view again as a new incarnation. */
  async #attach(): Promise<void> {
    const transport = this.#transport;
    if (!transport || this.#membership || this.#stopRequested()) return;
    await this.#newIncarnation(transport, this.#lastViewId);
    this.#requestServer?.joinCluster();
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
    if (this.components.register && this.#registration) {
      await this.#registration.stop().catch(() => {});
      this.#registration = await this.components
        .register(transport, this.#identity)
        .catch((error: unknown) => {
          this.components.logger.warn({ err: error }, "could not re-register the service");
          return undefined;
        });
    }
  }

  async #drain(): Promise<void> {
    // First, while the link is up: stop taking file work, and a coordinator gives its term back.
    await this.#files?.stop();
    await this.#election?.stop();
    await this.#membership?.stop({ leave: true });
    await this.#processes?.stop().catch((error: unknown) => {
      this.components.logger.warn({ err: error }, "could not stop the processes cleanly");
    });
    this.#requestServer?.stop();
    // Answer what is under way (gathers, forwards, handlers) before the connection closes.
    this.#replication?.stop();
    await this.#requestServer?.idle(DRAIN_ANSWERS_MS);
    this.#dcSyncSub?.unsubscribe();
    this.#statusSub?.unsubscribe();
    await this.#registration?.stop().catch((error: unknown) => {
      this.components.logger.warn({ err: error }, "could not deregister the service");
    });
    this.#stopStatus?.();
    await this.#transport?.close();
  }
}
