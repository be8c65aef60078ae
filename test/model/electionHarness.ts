// The system under test of the election model: a SimCluster of five real node
// runtimes running the election (one of them a passive server) over three
// simulated servers and one simulated store, and the topology the commands
// set. After every simulated event (every timer the clock fires, so at every
// instant something can change) it reads each node's election state and the
// store's new writes and checks the invariants of electionInvariants.ts;
// after a heal and the stabilisation bound it checks agreement. A failure
// carries a readable trace: the commands and terms with their simulated
// times, the topology, each node's role, WHO answer and epochs, and the last
// store writes.
import type { Election } from "../../actors/election.js";
import type { NodeRuntime } from "../../actors/node.js";
import { defaultElectionTimings, type ElectionTimings } from "../../machines/electionTimings.js";
import { encode } from "../../protocol/codec.js";
import type { NodeId } from "../../protocol/messages.js";
import { subjects } from "../../protocol/subjects.js";
import { SimCluster } from "../../sim/cluster.js";
import type { CasStore } from "../../transport/kv.js";
import type { SimKv } from "../../transport/sim/index.js";
import type { Transport } from "../../transport/transport.js";
import {
  checkAgreement,
  checkBecameCoordinator,
  checkHighestEpoch,
  checkTerms,
  decodeRecord,
  describeRecord,
  describeWho,
  disagreement,
  ELECTION_INVARIANTS,
  hostOf,
  InvariantViolation,
  type NodeObservation,
  type StoredRecord,
  StoreHistory,
} from "./electionInvariants.js";
import { Faults, failWithTrace, TraceLog } from "./faults.js";

/** nats-server 2.9's window in which a compare-and-set is checked but not applied (nats-io/nats-server#4320). */
const CAS_RAFT_MS = 30;

export const NODE_IDS = [1, 2, 3, 4, 5] as const;
export const SERVERS = 3;
/** The largest extra delay a command puts on one node's traffic: comparable to the 400 ms lease. */
export const MAX_EXTRA_DELAY_MS = 300;
/** How long a SimKv operation waits for its answer before StoreUnavailableError (SimKv's default). */
const STORE_TIMEOUT_MS = 1_000;
/** Store writes and trace lines shown in a counterexample's trace. */
const TRACE_WRITES = 12;
const TRACE_LINES = 80;
/** How long a graceful stop may take before the model kills the node (the daemon's shutdown grace). */
const STOP_GRACE_MS = 2_000;

/** One run's fixed setting: the network seed, each node's server, the passive node, the nodes up at time 0. */
export interface ElectionConfig {
  readonly seed: number;
  /** Server (0..2) of node id i at index i-1. */
  readonly serverOf: readonly number[];
  readonly passive: NodeId;
  readonly initial: readonly NodeId[];
  /** The slowest a message or store hop is without an extra delay (the fastest is 1 ms). */
  readonly latencyMaxMs: number;
}

/** Wraps the store client every node gets, to plant a bug in the store. */
export type StoreMutation = (store: CasStore, kv: SimKv) => CasStore;

/** Planted bugs to run the model against; production code and default timings when absent. */
export interface ElectionMutation {
  readonly timings?: ElectionTimings;
  readonly store?: StoreMutation;
}

/** How much of the model a run exercised, for the CLI's summary. */
export interface ElectionCoverage {
  steps: number;
  /** Simulated events after which the instant invariants were checked. */
  checks: number;
  /** Terms the store granted, and how many nodes became coordinator. */
  terms: number;
  elected: number;
  /** Elections (a node becoming coordinator) while some server was on a minority side or a link was cut. */
  electedDuringFaults: number;
  heals: number;
  /** FAILED reports sent by clients. */
  failedReports: number;
  /** The longest a heal took until the nodes agreed (and stayed agreed), in simulated ms. */
  slowestAgreementMs: number;
}

/** One node as observed, with the election runtime it was read from (a restart makes a new one). */
interface Observed extends NodeObservation {
  readonly election: Election;
}

interface Seen {
  /** The runtime these were read from: a membership rejoin changes the incarnation, not the election. */
  readonly election: Election;
  readonly role: string;
  readonly highestEpoch: number;
}

/** A run's coverage before anything happened (the CLI sums runs from it too). */
export function emptyElectionCoverage(): ElectionCoverage {
  return {
    steps: 0,
    checks: 0,
    terms: 0,
    elected: 0,
    electedDuringFaults: 0,
    heals: 0,
    failedReports: 0,
    slowestAgreementMs: 0,
  };
}

export class ElectionHarness {
  readonly cluster: SimCluster;
  readonly kv: SimKv;
  /**
   * How long after a heal every node must agree. The slowest path: a
   * candidate's ELECTED left just before the heal and its answer was lost, so
   * it hears NOTHING at the store's timeout; backed off to the maximum, it asks
   * again retryMaxMs later and wins (a rival that wins first only makes it
   * sooner). Every other registry then has the new record within a lease (a
   * watch delivery at once, or a re-read after half a lease of quiet), and a
   * message sent before the heal with the largest extra delay lands within
   * MAX_EXTRA_DELAY_MS; the ask, the write, its answer and the others' watch
   * deliveries take a latency each. The other paths are shorter: a node that
   * reconnects (reconnectWaitMs) re-reads within half a lease, an expired
   * record is noticed within a lease and candidates stagger by at most
   * 4 × staggerMs. Default timings and 3 ms latency: 1000 + 2000 + 400 + 300 +
   * 12 = 3.7 s.
   */
  readonly stabilisationMs: number;
  readonly #config: ElectionConfig;
  readonly #faults: Faults;
  /** A client per server that reports FAILED, made on first use. */
  readonly #clients = new Map<number, Transport>();
  readonly #stopping = new Map<NodeId, NodeRuntime>();
  readonly #history = new StoreHistory();
  readonly #seen = new Map<NodeId, Seen>();
  #absorbed = 0;
  #current: StoredRecord | undefined;
  readonly #log: TraceLog;
  readonly #coverage: ElectionCoverage = emptyElectionCoverage();

  constructor(config: ElectionConfig, mutation: ElectionMutation = {}) {
    this.#config = config;
    const timings = mutation.timings ?? defaultElectionTimings();
    this.cluster = new SimCluster({
      seed: config.seed,
      servers: SERVERS,
      latencyMs: { min: 1, max: config.latencyMaxMs },
      election: { timings, passive: [config.passive] },
      // The store as nats-server 2.9.10 is: two compare-and-sets of one key within a Raft round may both succeed.
      kv: { casRaftMs: CAS_RAFT_MS },
    });
    if (this.cluster.kv === undefined) throw new Error("the cluster runs no election");
    this.#log = new TraceLog(() => this.now);
    this.#faults = new Faults({
      cluster: this.cluster,
      servers: SERVERS,
      serverOf: (id) => this.serverOf(id),
      record: (what) => this.note(what),
    });
    const kv = this.cluster.kv;
    this.kv = kv;
    kv.witness = (host) => this.#away(host);
    const plant = mutation.store;
    if (plant !== undefined) {
      const client = kv.client.bind(kv);
      kv.client = (host) => plant(client(host), kv);
    }
    this.stabilisationMs =
      STORE_TIMEOUT_MS + timings.retryMaxMs + timings.leaseMs + MAX_EXTRA_DELAY_MS + 4 * config.latencyMaxMs;
  }

  get now(): number {
    return this.cluster.clock.now();
  }

  get coverage(): ElectionCoverage {
    return { ...this.#coverage, terms: this.#history.grants.size };
  }

  /** The node that holds a term now, else the running node the store's record names, if any. */
  coordinator(): NodeId | undefined {
    const nodes = this.#observe();
    const holder =
      nodes.find((n) => n.state.term !== null) ?? nodes.find((n) => n.state.role === "coordinator");
    if (holder !== undefined) return holder.node;
    const named = this.#current?.coordinator;
    return named != null && this.cluster.nodes.has(named) ? named : undefined;
  }

  serverOf(id: NodeId): number {
    return this.#config.serverOf[id - 1] ?? 0;
  }

  async begin(): Promise<void> {
    for (const id of this.#config.initial) this.cluster.start(id, this.serverOf(id));
    this.note(`begin: start ${this.#config.initial.join(",")}`);
    await this.#run(0);
  }

  async crash(id: NodeId): Promise<void> {
    this.#faults.crash(id);
    this.#seen.delete(id);
    await this.#run(0);
  }

  /** Starts a crashed (or never started) node again, as a new incarnation. */
  async restart(id: NodeId): Promise<void> {
    this.#faults.restart(id);
    await this.#run(0);
  }

  /**
   * Graceful stop: a coordinator gives its term back (a vacating write) before
   * the node leaves. The stopping node stays under watch until it is done; a
   * drain stuck on a cut link is ended by a kill, as the daemon's grace would.
   */
  async stop(id: NodeId): Promise<void> {
    const node = this.cluster.nodes.get(id);
    if (node === undefined) return;
    this.cluster.nodes.delete(id);
    this.#stopping.set(id, node);
    node.actor.send({ type: "node.stop", reason: "stop" });
    this.note(`stop(${id})`);
    const done = () => node.actor.getSnapshot().status === "done";
    await this.#run(STOP_GRACE_MS, done);
    if (!done()) {
      this.#faults.kill(id, node);
      this.note(`stop(${id}) stuck: killed`);
    }
    this.#stopping.delete(id);
    this.#seen.delete(id);
  }

  async cutLink(id: NodeId): Promise<void> {
    this.#faults.cutLink(id);
    await this.#run(0);
  }

  async restoreLink(id: NodeId): Promise<void> {
    this.#faults.restoreLink(id);
    await this.#run(0);
  }

  async cutRoute(a: number, b: number): Promise<void> {
    this.#faults.cutRoute(a, b);
    await this.#run(0);
  }

  async restoreRoute(a: number, b: number): Promise<void> {
    this.#faults.restoreRoute(a, b);
    await this.#run(0);
  }

  /** Cuts both routes of one server: its nodes are a minority (of one server in three). */
  async isolate(server: number): Promise<void> {
    this.#faults.isolate(server);
    await this.#run(0);
  }

  /** Adds `ms` to every delivery and store hop of the node's traffic (0 removes it). */
  async delay(id: NodeId, ms: number): Promise<void> {
    this.#faults.delay(id, ms);
    await this.#run(0);
  }

  /**
   * A client attached to `server` reports FAILED for the current term (as the
   * store names it), or for the term before it (an obsolete report). One
   * registry takes it from the queue group and PINGs the coordinator; a PING
   * lost to a cut makes that registry suspect a coordinator that still renews.
   */
  async reportFailed(server: number, obsolete: boolean): Promise<void> {
    const terms = [...this.#history.grants].sort(([a], [b]) => b - a);
    const term = obsolete ? terms[1] : terms[0];
    if (term === undefined) return this.note(`reportFailed(s${server}) skipped: no such term`);
    const [epoch, coordinator] = term;
    let client = this.#clients.get(server);
    if (client === undefined) {
      client = this.cluster.network.connect(`client-${server}`, { server });
      this.#clients.set(server, client);
    }
    // The answer (OK or NOTHING) is the registry's business; the invariants judge its effect.
    client
      .request(subjects("dvs").dnsFailed, encode({ type: "FAILED", coordinator, epoch }), {
        timeoutMs: 1_000,
      })
      .catch(() => {});
    this.#coverage.failedReports++;
    this.note(`reportFailed(s${server}, n${coordinator}@${epoch})`);
    await this.#run(0);
  }

  async advance(ms: number): Promise<void> {
    this.note(`advance(${ms})`);
    await this.#run(ms);
  }

  /**
   * Restores every link and route and removes every delay (crashed nodes stay
   * down), lets the stabilisation bound pass, then checks agreement.
   */
  async healAndWait(): Promise<void> {
    this.#faults.heal();
    this.note(`heal everything, wait ${this.stabilisationMs}`);
    const healedAt = this.now;
    let agreedAt: number | undefined = healedAt;
    await this.#run(this.stabilisationMs, (nodes) => {
      if (disagreement(nodes) !== null) agreedAt = undefined;
      else agreedAt ??= this.now;
      return false;
    });
    this.#coverage.heals++;
    this.#check(() => {
      const silent = [...this.cluster.nodes].filter(([, node]) => node.election === undefined);
      if (silent.length > 0) {
        throw new InvariantViolation(
          ELECTION_INVARIANTS.agreement,
          `${silent.map(([id]) => `n${id}`).join(", ")} run no election yet`,
        );
      }
      checkAgreement(this.#observe());
    });
    this.#coverage.slowestAgreementMs = Math.max(
      this.#coverage.slowestAgreementMs,
      (agreedAt ?? this.now) - healedAt,
    );
  }

  /**
   * Runs the simulation for `ms` (or until `after` returns true), checking the
   * instant invariants after every event.
   */
  async #run(ms: number, after?: (nodes: readonly NodeObservation[]) => boolean | undefined): Promise<void> {
    let failure: unknown;
    await this.cluster.clock.runUntil(() => {
      try {
        const nodes = this.#verify();
        return after?.(nodes) === true;
      } catch (error) {
        failure = error;
        return true;
      }
    }, ms);
    if (failure !== undefined) this.#fail(failure);
  }

  /** The invariants that hold at every instant; returns what it observed of the nodes. */
  #verify(): NodeObservation[] {
    this.#coverage.checks++;
    const writes = this.kv.writes;
    for (; this.#absorbed < writes.length; this.#absorbed++) {
      const w = writes[this.#absorbed];
      if (w === undefined) break;
      // The writer's standing when the store accepted the write (it may land a Raft round later).
      const standing = w.witnessed;
      this.#history.absorb({ ...decodeRecord(w.entry), at: w.at, host: w.host }, (host) =>
        standing !== undefined ? standing : this.#away(host),
      );
    }
    const entry = this.kv.peek("coordinator");
    if (entry !== undefined && entry.revision !== this.#current?.revision)
      this.#current = decodeRecord(entry);
    const nodes = this.#observe();
    for (const n of nodes) {
      const before = this.#seen.get(n.node);
      const same = before?.election === n.election;
      if (same) checkHighestEpoch(n.node, before.highestEpoch, n.state.highestEpoch);
      const wasCoordinator = same && before.role === "coordinator";
      if (n.state.role === "coordinator" && !wasCoordinator) {
        const away = this.#away(hostOf(n.node));
        this.#coverage.elected++;
        if (this.#faults.linkCut.size > 0 || this.#faults.routeCut.size > 0)
          this.#coverage.electedDuringFaults++;
        this.#log.add(`  n${n.node} became coordinator (epoch ${n.state.term?.epoch ?? "?"})`);
        checkBecameCoordinator(n.node, n.state.term?.epoch, away);
      } else if (wasCoordinator && n.state.role !== "coordinator") {
        this.#log.add(`  n${n.node} stepped down (now ${n.state.role})`);
      }
      this.#seen.set(n.node, {
        election: n.election,
        role: n.state.role,
        highestEpoch: n.state.highestEpoch,
      });
    }
    checkTerms(nodes, this.#current, this.#history.grants);
    return nodes;
  }

  /** Every running node, and the ones stopping (which may still hold a term). */
  #observe(): Observed[] {
    const nodes: Observed[] = [];
    for (const [id, node] of [...this.cluster.nodes, ...this.#stopping]) {
      const election = node.election;
      if (election !== undefined)
        nodes.push({ node: id, incarnation: node.identity.incarnation, state: election.state(), election });
    }
    return nodes;
  }

  /** Why a host is cut from the store's quorum by the commands' topology, or null when it is not. */
  #away(host: string): string | null {
    const id = Number(/^node-(\d+)$/.exec(host)?.[1]);
    if (!Number.isInteger(id)) return null;
    if (this.#faults.linkCut.has(id)) return `n${id}'s link is cut`;
    const server = this.serverOf(id);
    const side = this.#sideOf(server);
    return side.length * 2 > SERVERS
      ? null
      : `n${id}'s server s${server} is on a minority side [${side.map((s) => `s${s}`).join(",")}]`;
  }

  /** The servers `server` reaches over the routes that are up. */
  #sideOf(server: number): number[] {
    const seen = new Set<number>([server]);
    const queue = [server];
    for (let at = queue.pop(); at !== undefined; at = queue.pop()) {
      for (let other = 0; other < SERVERS; other++) {
        if (seen.has(other) || this.#faults.isRouteCut(at, other)) continue;
        seen.add(other);
        queue.push(other);
      }
    }
    return [...seen].sort();
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

  /** A line of the trace. */
  note(what: string): void {
    this.#coverage.steps++;
    this.#log.add(what);
  }

  /** What happened, for a counterexample. */
  trace(): string {
    const lines = ["commands and terms (simulated ms):", ...this.#log.lines(TRACE_LINES)];
    const placement = `latency 1..${this.#config.latencyMaxMs} ms; ${NODE_IDS.map(
      (id) => `n${id}@s${this.serverOf(id)}${id === this.#config.passive ? "(passive)" : ""}`,
    ).join(" ")}`;
    const sides = [...new Set([0, 1, 2].map((s) => this.#sideOf(s).join(",")))].map((s) => `[${s}]`);
    lines.push(
      `topology at t=${this.now}: ${placement}`,
      `  ${this.#faults.describeCuts()}; server sides: ${sides.join(" ")}; ${this.#faults.describeDelays()}`,
      `  running: [${[...this.cluster.nodes.keys()].sort().join(",")}]`,
      "nodes:",
    );
    for (const n of this.#observe().sort((a, b) => a.node - b.node)) {
      const s = n.state;
      const term = s.term === null ? "no term" : `term ${s.term.epoch} until t=${s.term.validUntil}`;
      lines.push(
        `  n${n.node}/${n.incarnation} ${s.role}, ${term}, WHO ${describeWho(s.who)}, highest epoch ${s.highestEpoch}`,
      );
    }
    lines.push(`store: ${describeRecord(this.#current)}; last ${TRACE_WRITES} writes:`);
    for (const w of this.kv.writes.slice(-TRACE_WRITES)) {
      lines.push(`  t=${w.at} ${w.host} ${describeRecord(decodeRecord(w.entry))}`);
    }
    return lines.join("\n");
  }
}
