// The system under test of the cluster model: a SimCluster of real node
// runtimes (the same NodeRuntime `dvsd` runs), one observer per simulated
// server subscribed to `dvs.<c>.events`, a tool that sends requests
// (requests.ts), and the topology the commands set. Every operation checks the
// invariants it can check soundly at that point and fails with a readable
// trace: the commands and replies with their simulated times, the topology,
// every node's view and peers, and the last events of each node.
import { defaultTimings, type MembershipMachine, type View } from "../../machines/membership.js";
import { decode } from "../../protocol/codec.js";
import { type EventMessage, eventSchema } from "../../protocol/messages.js";
import { subjects } from "../../protocol/subjects.js";
import { SimCluster } from "../../sim/cluster.js";
import { Faults, failWithTrace, TraceLog } from "./faults.js";
import {
  type CurrentView,
  checkComponents,
  checkCurrentViews,
  checkScriptQueues,
  describeEvent,
  InvariantViolation,
  incarnationKey,
  type MemberState,
  replayEvents,
} from "./invariants.js";
import { MergeSpread } from "./mergeSpread.js";
import type { RequestSpec } from "./requestInvariants.js";
import { type GatherMutation, type RequestCoverage, RequestLedger, TOOL_SERVER } from "./requests.js";

export const NODE_IDS = [1, 2, 3, 4, 5, 6] as const;

/** How much of the model a run exercised, for the CLI's coverage summary. */
export interface CoverageCounts extends RequestCoverage {
  /** Lines of the trace: commands, plus the start and the final heal. */
  steps: number;
  /** Quiet-partition checks, and those among them with more than one component. */
  quietChecks: number;
  splitChecks: number;
  /** Graceful leaves checked, counted per receiver that had to announce them. */
  leaveReceivers: number;
  /** Observer MERGEs checked to have reached their whole component in time. */
  mergeSpreads: number;
  events: number;
}

/** One run's fixed setting: the network seed, 1 or 2 servers, each node's server, the nodes up at time 0. */
export interface ModelConfig {
  readonly seed: number;
  readonly servers: 1 | 2;
  /** Server of node id i at index i-1 (ignored with one server). */
  readonly serverOf: readonly number[];
  readonly initial: readonly number[];
  /** Observers per node (K); the production default when absent. */
  readonly observers?: number;
}

/** Planted bugs to run the model against (mutations.ts); production code when absent. */
export interface ModelMutation {
  readonly machine?: MembershipMachine;
  readonly gather?: GatherMutation;
}

/** Events shown per node in a counterexample's trace. */
const TRACE_EVENTS = 8;
/** A restored link is back once the client's next reconnect attempt (every 250 ms) has run. */
const LINK_SETTLE_MS = 300;

export class MembershipHarness {
  readonly cluster: SimCluster;
  /**
   * How long the topology must stay unchanged before views are checked against
   * it: a crash is a PARTITION within 1 s (5 missed heartbeats) and a
   * DISCONNECT downAfter later; a healed node rejoins within a few heartbeats;
   * the rest is margin for view ids to sync.
   */
  readonly stabilisationMs: number;
  readonly #config: ModelConfig;
  /** Events as published on the wire, per observing incarnation, seen by the observer on its own server. */
  readonly #wire = new Map<string, EventMessage[]>();
  /** Incarnations that began a new lineage (a start, not a rejoin). */
  readonly #freshStarts = new Set<string>();
  readonly #faults: Faults;
  readonly #spread: MergeSpread;
  #lastChange = 0;
  #malformed = 0;
  readonly #log: TraceLog;
  readonly #requests: RequestLedger;
  readonly #coverage = {
    steps: 0,
    quietChecks: 0,
    splitChecks: 0,
    leaveReceivers: 0,
    events: 0,
  };

  constructor(config: ModelConfig, mutation: ModelMutation = {}) {
    this.#config = config;
    this.cluster = new SimCluster({
      seed: config.seed,
      servers: config.servers,
      ...(config.observers !== undefined
        ? { timings: { ...defaultTimings(), observers: config.observers } }
        : {}),
      ...(mutation.machine ? { membershipMachine: mutation.machine } : {}),
    });
    this.stabilisationMs = this.cluster.timings.downAfterMs + 3_000;
    // An observer's alert reaches its component within a few network hops; a hello or the next beacon may take a beacon period.
    this.#spread = new MergeSpread(this.cluster.timings.heartbeatMs / 4);
    this.#log = new TraceLog(() => this.now);
    this.#faults = new Faults({
      cluster: this.cluster,
      servers: config.servers,
      serverOf: (id) => this.serverOf(id),
      record: (what) => this.#changed(what),
      changed: (change) => this.#requests.changed(change),
    });
    this.#requests = new RequestLedger(
      this.cluster.network,
      {
        now: () => this.now,
        nodes: this.cluster.nodes,
        canServe: (id) =>
          this.cluster.nodes.get(id)?.replication !== undefined &&
          this.#attached(id) &&
          (!this.#routeCut || this.serverOf(id) === TOOL_SERVER),
        quietComponents: () =>
          this.now - this.#lastChange >= this.stabilisationMs ? this.#components() : undefined,
        note: (line) => this.#log.add(line),
      },
      mutation.gather,
    );
    const events = subjects("dvs").events;
    for (let server = 0; server < config.servers; server++) {
      const observer = this.cluster.network.connect(`observer-${server}`, { server });
      observer.subscribe(events, (msg) => {
        const decoded = decode(msg.data, "cbor");
        const parsed = decoded.ok ? eventSchema.safeParse(decoded.value) : undefined;
        if (!parsed?.success) {
          // A throw here would be swallowed by the subscription; the next check reports it.
          this.#malformed++;
          return;
        }
        const event = parsed.data;
        // Each server's observer accounts for the nodes attached to it, so a route cut loses nothing.
        if (this.serverOf(event.node) !== server) return;
        const key = incarnationKey(event.node, event.incarnation);
        const list = this.#wire.get(key);
        if (list) list.push(event);
        else this.#wire.set(key, [event]);
      });
    }
  }

  get now(): number {
    return this.cluster.clock.now();
  }

  get coverage(): CoverageCounts {
    return { ...this.#coverage, mergeSpreads: this.#spread.checked, ...this.#requests.coverage };
  }

  serverOf(id: number): number {
    return this.#config.servers === 1 ? 0 : (this.#config.serverOf[id - 1] ?? 0);
  }

  /** Starts the initial nodes and lets them form their first view. */
  async begin(): Promise<void> {
    for (const id of this.#config.initial) this.#startNode(id);
    this.#note(`begin: start ${this.#config.initial.join(",")}`);
    await this.cluster.advance(1_000);
    this.#requests.instrument();
    this.#verify();
  }

  async start(id: number): Promise<void> {
    this.#startNode(id);
    this.#changed(`start(${id}) as ${id}/${this.cluster.incarnationOf(id)}`);
    await this.cluster.advance(0);
    this.#requests.instrument();
    this.#verify();
  }

  async crash(id: number): Promise<void> {
    this.#faults.crash(id);
    this.#verify();
  }

  /** Crash and start again at the same instant: the others see a new incarnation. */
  async restart(id: number): Promise<void> {
    this.cluster.crash(id);
    this.#requests.changed({ kind: "crash", node: id });
    this.#startNode(id);
    this.#changed(`restart(${id}) as ${id}/${this.cluster.incarnationOf(id)}`);
    await this.cluster.advance(0);
    this.#requests.instrument();
    this.#verify();
  }

  /**
   * The tool sends a request and the command returns at once: the reply is
   * judged when it settles, while later commands run (requests.ts).
   */
  async request(spec: RequestSpec): Promise<void> {
    this.#requests.issue(spec);
    this.#coverage.steps++;
    this.#verify();
  }

  /**
   * Graceful stop. When the leaver's link is up, every member of its
   * component that had it in its view (alive or suspect, same incarnation)
   * must announce a DISCONNECT (cause "left") of it before the stop completes.
   */
  async stop(id: number): Promise<void> {
    const node = this.cluster.nodes.get(id);
    if (!node) return;
    const leaver = node.identity.incarnation;
    const receivers: { node: number; incarnation: number }[] = [];
    if (this.#attached(id)) {
      for (const [other, runtime] of this.cluster.nodes) {
        const ctx = runtime.membership?.context;
        if (other === id || !ctx || ctx.phase !== "member" || !this.#attached(other)) continue;
        if (this.#routeCut && this.serverOf(other) !== this.serverOf(id)) continue;
        const peer = ctx.peers[id];
        if (peer?.incarnation !== leaver || (peer.state !== "alive" && peer.state !== "suspect")) continue;
        receivers.push({ node: other, incarnation: runtime.identity.incarnation });
      }
    }
    const from = this.cluster.events.length;
    this.#requests.changed({ kind: "stop", node: id });
    await this.cluster.stop(id);
    let note = `stop(${id}) of ${id}/${leaver}`;
    if (node.actor.getSnapshot().status !== "done") {
      // The link broke before the node noticed: the leave went nowhere and the drain waits for
      // a reconnect. The daemon's shutdown grace would end the process, as here.
      this.#faults.kill(id, node);
      note += " (drain stuck on a cut link: killed)";
    }
    this.#changed(note);
    this.#coverage.leaveReceivers += receivers.length;
    for (const r of receivers) {
      if (this.cluster.incarnationOf(r.node) !== r.incarnation) continue;
      const seen = this.cluster.events
        .slice(from)
        .some(
          (e) =>
            e.node === r.node &&
            e.incarnation === r.incarnation &&
            e.event === "DISCONNECT" &&
            e.cause === "left" &&
            e.changed.some((m) => m.node === id && m.incarnation === leaver),
        );
      if (!seen) {
        this.#fail(
          new InvariantViolation(
            "every graceful leave is a DISCONNECT (left) across its component",
            `n${r.node}/${r.incarnation} had ${id}/${leaver} in its view and announced no DISCONNECT (left)`,
          ),
        );
      }
    }
    this.#verify();
  }

  async cutLink(id: number): Promise<void> {
    this.#faults.cutLink(id);
    this.#verify();
  }

  async restoreLink(id: number): Promise<void> {
    this.#faults.restoreLink(id);
    this.#verify();
  }

  /** Cuts the route between the two servers. */
  async cutRoute(): Promise<void> {
    this.#faults.cutRoute(0, 1);
    this.#verify();
  }

  async restoreRoute(): Promise<void> {
    this.#faults.restoreRoute(0, 1);
    this.#verify();
  }

  /**
   * Lets time pass. Once the topology has been still for the stabilisation
   * bound, each connected component — a node with a cut link alone; otherwise
   * the nodes of one server when the route is cut, or every attached node —
   * must hold one view whose members are exactly that component.
   */
  async advance(ms: number): Promise<void> {
    await this.cluster.advance(ms);
    this.#note(`advance(${ms})`);
    this.#verify();
    if (this.now - this.#lastChange >= this.stabilisationMs) {
      const components = this.#components();
      this.#coverage.quietChecks++;
      if (components.length > 1) this.#coverage.splitChecks++;
      this.#check(() =>
        checkComponents(
          "a quiet partition: each connected component agrees on exactly its members",
          components,
          this.#memberStates(),
        ),
      );
    }
  }

  /**
   * Heals every fault, stays quiet for the stabilisation bound (longer than any
   * request's timeout, so every request has settled), then checks the end state.
   */
  async healAndSettle(): Promise<void> {
    this.#faults.heal();
    this.#changed("heal everything");
    await this.cluster.advance(this.stabilisationMs);
    this.#note(`advance(${this.stabilisationMs}) to stabilise`);
    this.#verify();
    this.#check(() => {
      checkComponents(
        "after stabilisation every live node holds one view of exactly the live nodes",
        [[...this.cluster.nodes.keys()]],
        this.#memberStates(),
      );
      const running = new Set(
        [...this.cluster.nodes.values()].map((n) => incarnationKey(n.identity.node, n.identity.incarnation)),
      );
      checkScriptQueues(this.#scriptQueues(), this.#wire, running);
      this.#requests.verifyAllSettled();
    });
  }

  /** The invariants that hold at every instant. */
  #verify(): void {
    this.#check(() => {
      if (this.#malformed > 0) {
        throw new InvariantViolation("events on the wire are well formed", `${this.#malformed} undecodable`);
      }
      const replayed = replayEvents(this.cluster.events, this.#freshStarts);
      const current: CurrentView[] = [];
      for (const [id, node] of this.cluster.nodes) {
        const ctx = node.membership?.context;
        if (ctx?.phase === "member")
          current.push({ node: id, incarnation: ctx.self.incarnation, view: ctx.view });
      }
      checkCurrentViews(current, replayed);
      this.#spread.verify(this.cluster.events, this.#spreadWorld());
      checkScriptQueues(this.#scriptQueues(), this.#wire, new Set());
      this.#requests.verify();
    });
  }

  #spreadWorld() {
    const components = this.#components();
    const componentOf = new Map<number, number>();
    components.forEach((c, i) => {
      for (const id of c) componentOf.set(id, i);
    });
    const nodes = this.cluster.nodes;
    return {
      now: this.now,
      lastChange: this.#lastChange,
      *contexts() {
        for (const node of nodes.values()) if (node.membership) yield node.membership.context;
      },
      together: (a: number, b: number) =>
        this.#attached(a) && this.#attached(b) && componentOf.get(a) === componentOf.get(b),
    };
  }

  #check(run: () => void): void {
    try {
      run();
    } catch (error) {
      this.#fail(error);
    }
  }

  #fail(error: unknown): never {
    failWithTrace(error, () => this.trace());
  }

  #startNode(id: number): void {
    this.cluster.start(id, this.serverOf(id));
    this.#requests.changed({ kind: "start", node: id });
    this.#freshStarts.add(incarnationKey(id, this.cluster.incarnationOf(id) ?? 0));
  }

  /** Whether the cut between the two servers is in place. */
  get #routeCut(): boolean {
    return this.#faults.isRouteCut(0, 1);
  }

  #attached(id: number): boolean {
    if (this.#faults.linkCut.has(id)) return false;
    const restored = this.#faults.linkRestoredAt(id);
    if (restored !== undefined && this.now - restored < LINK_SETTLE_MS) return false;
    return this.cluster.nodes.get(id)?.transport?.status === "connected";
  }

  #components(): number[][] {
    const groups = new Map<string, number[]>();
    for (const id of this.cluster.nodes.keys()) {
      const group = this.#faults.linkCut.has(id)
        ? `alone ${id}`
        : this.#routeCut
          ? `server ${this.serverOf(id)}`
          : "everyone";
      const members = groups.get(group);
      if (members) members.push(id);
      else groups.set(group, [id]);
    }
    return [...groups.values()];
  }

  #memberStates(): Map<number, MemberState> {
    const states = new Map<number, MemberState>();
    for (const [id, node] of this.cluster.nodes) {
      const ctx = node.membership?.context;
      const view: View | undefined = ctx?.phase === "member" ? ctx.view : undefined;
      states.set(id, { node: id, incarnation: node.identity.incarnation, view });
    }
    return states;
  }

  #scriptQueues(): Map<string, EventMessage[]> {
    const queues = new Map<string, EventMessage[]>();
    for (const e of this.cluster.events) {
      const key = incarnationKey(e.node, e.incarnation);
      const list = queues.get(key);
      if (list) list.push(e);
      else queues.set(key, [e]);
    }
    return queues;
  }

  #changed(what: string): void {
    this.#lastChange = this.now;
    this.#note(what);
  }

  #note(what: string): void {
    this.#coverage.steps++;
    this.#coverage.events = this.cluster.events.length;
    this.#log.add(what);
  }

  /** What happened, for a counterexample. */
  trace(): string {
    const lines = ["commands (simulated ms):", ...this.#log.lines()];
    const placement =
      this.#config.servers === 1
        ? "1 server"
        : `2 servers (${NODE_IDS.map((id) => `${id}@s${this.serverOf(id)}`).join(" ")})`;
    lines.push(
      `topology at t=${this.now}: ${placement}; links cut: [${[...this.#faults.linkCut].join(",")}]; route ${
        this.#routeCut ? "cut" : "up"
      }; running: [${[...this.cluster.nodes.keys()].join(",")}]`,
      "views and peer tables:",
    );
    for (const [id, node] of [...this.cluster.nodes].sort(([a], [b]) => a - b)) {
      const ctx = node.membership?.context;
      if (!ctx) {
        lines.push(`  n${id}: no membership yet`);
        continue;
      }
      const peers = Object.entries(ctx.peers)
        .map(([p, r]) => `${p}/${r.incarnation}:${r.state}`)
        .join(" ");
      lines.push(
        `  n${id}/${ctx.self.incarnation} ${ctx.phase}${ctx.linkUp ? "" : " (link down)"} v${ctx.view.id} [${ctx.view.members.join(",")}] peers: ${peers}`,
      );
    }
    lines.push(`last ${TRACE_EVENTS} events per node (script queue):`);
    for (const id of NODE_IDS) {
      const events = this.cluster.eventsOf(id).slice(-TRACE_EVENTS);
      if (events.length === 0) continue;
      lines.push(`  node ${id}:`, ...events.map((e) => `    ${describeEvent(e)}`));
    }
    return lines.join("\n");
  }
}
