// The request side of the model: a tool on the simulated network sends
// requests (ALL or unicast, some through the queue subject) without waiting,
// while the other commands crash, stop, cut and heal. Each node's replication
// server is watched so the ledger knows which node gathered an ALL request and
// the view it multicast to, and which node holds a forwarded one; the topology
// changes the harness reports tell which lost replies are excused. When a
// request settles it is judged by requestInvariants.ts; a violation is kept
// and thrown at the next check.
import { DEFAULT_REQUEST_TIMEOUT_MS, type NodeRuntime } from "../../actors/node.js";
import type { ReplicationServer } from "../../actors/replication.js";
import { DvsClient } from "../../client/dvsClient.js";
import { ALL, type Rply, type Rqst } from "../../protocol/messages.js";
import type { SimNetwork } from "../../transport/sim/index.js";
import type { Transport } from "../../transport/transport.js";
import { InvariantViolation } from "./invariants.js";
import {
  checkSettled,
  describeEntries,
  describeSpec,
  type Outcome,
  REPLY_SLACK_MS,
  type RequestSpec,
  rcodeLabel,
  type SettledRequest,
  type Take,
} from "./requestInvariants.js";

/**
 * The tool's client ids: request n is sent by `model-tool-n`, so what the nodes
 * do for it is told apart from what they do for another request by `src`
 * alone (a multicast carries its own seq, which may equal a tool's).
 */
export const toolId = (n: number): string => `model-tool-${n}`;
/** The tool is attached to server 0. */
export const TOOL_SERVER = 0;

/** A planted bug in a replication server: wraps its `gather` (see mutations.ts). */
export type GatherMutation = (gather: (rqst: Rqst) => Promise<Rply>) => (rqst: Rqst) => Promise<Rply>;

/** A change of topology, as the harness reports it. */
export type TopologyChange =
  | { readonly kind: "start" | "crash" | "stop" | "kill" | "cutLink" | "restoreLink"; readonly node: number }
  | { readonly kind: "route" };

type TimedChange = TopologyChange & { readonly at: number };

/** What the ledger needs to know of the cluster at the moment it asks. */
export interface RequestWorld {
  now(): number;
  readonly nodes: ReadonlyMap<number, NodeRuntime>;
  /** Whether node `id` could take a request from the tool now (running, attached, reachable from the tool). */
  canServe(id: number): boolean;
  /** The connected components, when the topology has been still for the stabilisation bound; else undefined. */
  quietComponents(): number[][] | undefined;
  /** A line for the counterexample trace. */
  note(line: string): void;
}

export interface RequestCoverage {
  requests: number;
  allReplies: number;
  unicastReplies: number;
  /** ETIMEDOUT and EHOSTDOWN entries of ALL replies. */
  timedOutEntries: number;
  hostDownEntries: number;
  /** Requests that got no reply, each excused by a crash, a cut or no node to take it. */
  unanswered: number;
  /** Replies checked against the quiet-cluster bounds. */
  quietReplies: number;
}

/** A node forwarding one of the tool's requests (to its `dst`, or to the node a GETNODEINFO asks about). */
interface Forward {
  readonly node: number;
  readonly at: number;
}

interface InFlight {
  readonly seq: number;
  readonly client: string;
  readonly spec: RequestSpec;
  readonly timeoutMs: number;
  readonly issuedAt: number;
  /** Index into the change log when it was sent. */
  readonly changeMark: number;
  /** Nodes that could take it when it was sent. */
  readonly servable: readonly number[];
  readonly ranAtIssue: readonly number[];
  readonly quietAtIssue: number[][] | undefined;
}

/** Request counters at zero. */
export function emptyRequestCoverage(): RequestCoverage {
  return {
    requests: 0,
    allReplies: 0,
    unicastReplies: 0,
    timedOutEntries: 0,
    hostDownEntries: 0,
    unanswered: 0,
    quietReplies: 0,
  };
}

export class RequestLedger {
  readonly coverage: RequestCoverage = emptyRequestCoverage();
  readonly #world: RequestWorld;
  readonly #transport: Transport;
  readonly #mutation: GatherMutation | undefined;
  readonly #instrumented = new WeakSet<ReplicationServer>();
  /** By client id. */
  readonly #takes = new Map<string, Take[]>();
  readonly #forwards = new Map<string, Forward[]>();
  readonly #changes: TimedChange[] = [];
  readonly #inFlight = new Map<number, InFlight>();
  #seq = 0;
  #violation: InvariantViolation | undefined;

  constructor(network: SimNetwork, world: RequestWorld, mutation?: GatherMutation) {
    this.#world = world;
    this.#mutation = mutation;
    this.#transport = network.connect("model-tool", { server: TOOL_SERVER });
  }

  get pending(): number {
    return this.#inFlight.size;
  }

  /** Records a topology change: it may excuse replies lost while it happened. */
  changed(change: TopologyChange): void {
    this.#changes.push({ ...change, at: this.#world.now() });
  }

  /** Watches the replication server of every running node not watched yet (new nodes, restarts). */
  instrument(): void {
    for (const node of this.#world.nodes.values()) this.#watch(node);
  }

  /** Sends a request and returns at once; the reply is judged when it settles. */
  issue(spec: RequestSpec): void {
    this.instrument();
    const seq = ++this.#seq;
    const client = new DvsClient(this.#transport, { cluster: "dvs", clientId: toolId(seq) });
    const timeoutMs = spec.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    const world = this.#world;
    const flight: InFlight = {
      seq,
      client: toolId(seq),
      spec,
      timeoutMs,
      issuedAt: world.now(),
      changeMark: this.#changes.length,
      servable: [...world.nodes.keys()].filter((id) => world.canServe(id)),
      ranAtIssue: [...world.nodes.keys()],
      quietAtIssue: world.quietComponents(),
    };
    this.#inFlight.set(seq, flight);
    this.coverage.requests++;
    world.note(`request #${seq} ${describeSpec(spec)}`);
    const sent = client.request(spec.type, spec.params, {
      dst: spec.dst,
      viaAnyNode: spec.viaAnyNode,
      timeoutMs: timeoutMs + REPLY_SLACK_MS,
      ...(spec.timeoutMs !== undefined ? { gatherTimeoutMs: spec.timeoutMs } : {}),
    });
    sent.then(
      (rply) => this.#settle(flight, { kind: "reply", rply }),
      (error: unknown) => this.#settle(flight, { kind: "error", error }),
    );
  }

  /** Throws the first violation a settled request showed. */
  verify(): void {
    if (this.#violation) throw this.#violation;
  }

  /** Once the run is over and time has passed every deadline: nothing may still be in flight. */
  verifyAllSettled(): void {
    this.verify();
    const open = [...this.#inFlight.values()];
    if (open.length > 0) {
      throw new InvariantViolation(
        "every request settles within its timeout and slack",
        open
          .map((f) => `request #${f.seq} ${describeSpec(f.spec)} sent at t=${f.issuedAt} never settled`)
          .join("\n"),
      );
    }
  }

  #watch(node: NodeRuntime): void {
    const replication = node.replication;
    if (!replication || this.#instrumented.has(replication)) return;
    this.#instrumented.add(replication);
    const id = node.identity.node;
    const original = replication.gather.bind(replication);
    const gather = this.#mutation ? this.#mutation(original) : original;
    // The request server calls `replication.gather` for each ALL request it takes: note who took
    // ours and the view it is about to multicast to (what the gather reads, in the same tick).
    replication.gather = (rqst: Rqst) => {
      if (typeof rqst.src === "string") {
        push(this.#takes, rqst.src, {
          node: id,
          at: this.#world.now(),
          view: [...node.viewMembers()],
          known: replication.knownNodes(),
        });
      }
      return gather(rqst);
    };
    // A node forwards a unicast for another node, or asks another node for its GETNODEINFO.
    const forward = replication.forward.bind(replication);
    replication.forward = (rqst: Rqst, dst: number) => {
      if (typeof rqst.src === "string") push(this.#forwards, rqst.src, { node: id, at: this.#world.now() });
      return forward(rqst, dst);
    };
  }

  #settle(flight: InFlight, outcome: Outcome): void {
    this.#inFlight.delete(flight.seq);
    const settledAt = this.#world.now();
    const changes = this.#changes.slice(flight.changeMark);
    const takes = this.#takes.get(flight.client) ?? [];
    const forwards = this.#forwards.get(flight.client) ?? [];
    this.#takes.delete(flight.client);
    this.#forwards.delete(flight.client);
    const ran = new Set(flight.ranAtIssue);
    for (const c of changes) if (c.kind === "start") ran.add(c.node);
    const quiet = changes.length === 0 ? flight.quietAtIssue : undefined;
    const settled: SettledRequest = {
      seq: flight.seq,
      spec: flight.spec,
      timeoutMs: flight.timeoutMs,
      issuedAt: flight.issuedAt,
      settledAt,
      outcome,
      takes,
      forwards,
      ran,
      lostExcuse: excuse(flight, takes, forwards, changes),
      quietComponents: quiet,
    };
    this.#record(settled);
    try {
      checkSettled(settled, flight.client);
    } catch (error) {
      // Thrown here it would vanish in a promise callback: kept for the harness's next check.
      this.#violation ??=
        error instanceof InvariantViolation
          ? error
          : new InvariantViolation("the request checks run", String(error));
    }
  }

  #record(r: SettledRequest): void {
    const c = this.coverage;
    const taken = r.takes[0]
      ? ` gathered by n${r.takes[0].node} at t=${r.takes[0].at} [${r.takes[0].view.join(",")}]`
      : "";
    if (r.outcome.kind === "error") {
      c.unanswered++;
      this.#world.note(
        `request #${r.seq} got no reply: ${(r.outcome.error as Error).name}${taken}${
          r.lostExcuse ? ` (${r.lostExcuse})` : ""
        }`,
      );
      return;
    }
    const rply = r.outcome.rply;
    if (r.quietComponents) c.quietReplies++;
    if (r.spec.dst === ALL && Array.isArray(rply.data)) {
      const entries = rply.data as Rply[];
      c.allReplies++;
      c.timedOutEntries += entries.filter((e) => rcodeLabel(e.rcode) === "ETIMEDOUT").length;
      c.hostDownEntries += entries.filter((e) => rcodeLabel(e.rcode) === "EHOSTDOWN").length;
      this.#world.note(`reply #${r.seq} from n${rply.src}${taken}: ${describeEntries(entries)}`);
    } else {
      c.unicastReplies++;
      this.#world.note(`reply #${r.seq} from n${rply.src}: ${rcodeLabel(rply.rcode)}`);
    }
  }
}

/**
 * Why a request may go unanswered, or undefined when it is owed a reply. The
 * node that had to answer is the one that gathered it (ALL), the destination
 * (a direct unicast), the first node that forwarded it (through the queue
 * subject), or else any node: its crash, restart, cut link or killed drain
 * while the request was in flight excuses a lost reply, as does any change of
 * the route between the servers, or there being no node able to take it when
 * it was sent. A graceful stop excuses it only when the stopping node was not
 * holding it — gathering or forwarding — since the request may have been on
 * its way when the node unsubscribed; a node that drains answers what it holds.
 * (A node answers any other request the moment it arrives.)
 */
function excuse(
  flight: InFlight,
  takes: readonly Take[],
  forwards: readonly Forward[],
  changes: readonly TimedChange[],
): string | undefined {
  const direct = flight.spec.dst !== ALL && !flight.spec.viaAnyNode;
  const candidates = direct ? [flight.spec.dst as number] : undefined;
  if (!flight.servable.some((id) => candidates === undefined || candidates.includes(id))) {
    return direct
      ? `n${flight.spec.dst} could not take it when it was sent`
      : "no node could take it when it was sent";
  }
  const owner = takes[0]?.node ?? (direct ? flight.spec.dst : forwards[0]?.node);
  const holding = (node: number, at: number) =>
    takes.some((t) => t.node === node && t.at <= at) || forwards.some((f) => f.node === node && f.at <= at);
  for (const c of changes) {
    if (c.kind === "route") return "the route between the servers changed";
    if (c.kind === "start" || c.kind === "restoreLink") continue;
    if (c.kind === "stop" && holding(c.node, c.at)) continue;
    if (owner === undefined || c.node === owner) return `${c.kind}(${c.node}) while it was in flight`;
  }
  return undefined;
}

function push<T>(map: Map<string, T[]>, key: string, value: T): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}
