// The replication server of a node (SPEC 3.1, 5; seed 000): it multicasts a
// `dst: ALL` request to every node in one message, gathers the members'
// answers with one gather actor per request, and answers one aggregated RPLY
// the moment the last member of the view has answered; members that are gone
// from the view get EHOSTDOWN, silent ones ETIMEDOUT at the request's timeout.
// Nobody the node knows is silently missing: a node that was in one of its
// views and did not leave on purpose, but is out of the view now, has an
// EHOSTDOWN entry too. It also forwards a request whose `dst` is another node.
import { type Actor, createActor } from "xstate";
import { createGatherMachine, type GatherOutput } from "../machines/gather.js";
import { LEFT_CAUSE, type ViewChange } from "../machines/membership.js";
import { encode, errorRply, makeRply, parseRply } from "../protocol/codec.js";
import { ALL, type NodeId, type Rply, type Rqst } from "../protocol/messages.js";
import type { Subjects } from "../protocol/subjects.js";
import type { Clock } from "../transport/clock.js";
import { NoRespondersError, TimeoutError } from "../transport/errors.js";
import type { Subscription, Transport } from "../transport/transport.js";
import { type Logger, throttledWarn } from "./logger.js";
import type { GatherMetrics } from "./metrics.js";

export interface ReplicationServerOptions {
  readonly node: NodeId;
  readonly subjects: Subjects;
  readonly transport: Transport;
  readonly clock: Clock;
  readonly logger: Logger;
  /** This node's current view: who a gather waits for, and who a forward may reach. */
  readonly view: { viewMembers(): readonly NodeId[] };
  /** How long a gather or a forward waits when the request names no `timeout`. */
  readonly timeoutMs: number;
  /** Where each gather's fan-out and stragglers are counted (default: nowhere). */
  readonly metrics?: GatherMetrics;
}

export interface ReplicationStats {
  multicasts: number;
  forwards: number;
  /** Answers that arrived for no running gather (late or duplicate) or twice for one. */
  dropped: number;
}

const gatherMachine = createGatherMachine<Rply>();
type GatherActor = Actor<typeof gatherMachine>;

export class ReplicationServer {
  readonly stats: ReplicationStats = { multicasts: 0, forwards: 0, dropped: 0 };
  readonly #o: ReplicationServerOptions;
  readonly #gathers = new Map<number, GatherActor>();
  readonly #warn: ReturnType<typeof throttledWarn>;
  #subscription: Subscription | undefined;
  /** Settles each running forward with EHOSTDOWN (the node is stopping). */
  readonly #forwards = new Set<() => void>();
  #stopped = false;
  /** Multicast sequence numbers start at the clock, so a restarted node never reuses a recent one. */
  #seq: number;
  /** Every node of this node's views since it started, but those that left on purpose (see `knownNodes`). */
  readonly #known = new Set<NodeId>();

  constructor(options: ReplicationServerOptions) {
    this.#o = options;
    this.#warn = throttledWarn(options.logger, options.clock);
    this.#seq = Math.floor(options.clock.now()) * 1_000;
  }

  start(): void {
    const { transport, subjects, node } = this.#o;
    this.#subscription = transport.subscribe(subjects.gather(node), (msg) => this.#onAnswer(msg.data));
  }

  /**
   * Ends every running gather at once (members still missing count as gone),
   * settles running forwards with EHOSTDOWN, and stops listening: every request
   * this server holds is answered before the node closes its connection.
   */
  stop(): void {
    this.#stopped = true;
    this.view([]);
    for (const settle of [...this.#forwards]) settle();
    this.#subscription?.unsubscribe();
    this.#subscription = undefined;
  }

  /**
   * The view changed: members that left no longer hold up a gather. Its
   * members are known from now on; a member that left on purpose (DVSEND, a
   * graceful stop) is forgotten, one that failed is not.
   */
  view(members: readonly NodeId[], change?: Pick<ViewChange, "event" | "cause" | "changed">): void {
    for (const m of members) this.#known.add(m);
    if (change?.event === "DISCONNECT" && change.cause === LEFT_CAUSE)
      for (const m of change.changed) if (!members.includes(m.node)) this.#known.delete(m.node);
    for (const actor of [...this.#gathers.values()]) actor.send({ type: "view.changed", members });
  }

  /**
   * The nodes an ALL reply names, ascending: every member of a view of this
   * node since it started, but those that left on purpose. A node that crashed
   * or was cut off stays named (EHOSTDOWN) until it is back or leaves.
   */
  knownNodes(): NodeId[] {
    return [...this.#known].sort((a, b) => a - b);
  }

  /** How many gathers are running. */
  get running(): number {
    return this.#gathers.size;
  }

  /** Multicasts `rqst` to every node and resolves with the aggregated reply of the current view's members. */
  gather(rqst: Rqst): Promise<Rply> {
    const { transport, subjects, node, clock, view } = this.#o;
    const seq = ++this.#seq;
    const expected = [...view.viewMembers()].sort((a, b) => a - b);
    // Known nodes out of the view are named at once: nobody waits for them.
    const absent = this.knownNodes().filter((n) => !expected.includes(n));
    const timeoutMs = rqst.timeout ?? this.#o.timeoutMs;
    const actor = createActor(gatherMachine, { input: { expected, timeoutMs }, clock });
    this.#gathers.set(seq, actor);
    this.stats.multicasts++;
    return new Promise<Rply>((resolve) => {
      actor.subscribe({
        complete: () => {
          this.#gathers.delete(seq);
          const output = actor.getSnapshot().output as GatherOutput<Rply>;
          this.stats.dropped += output.dropped;
          if (this.#o.metrics) countGather(this.#o.metrics, output, absent.length);
          resolve(aggregate(rqst, node, output, absent, timeoutMs));
        },
      });
      actor.start();
      if (this.#stopped) actor.send({ type: "view.changed", members: [] });
      if (actor.getSnapshot().status === "done") return;
      try {
        transport.publish(subjects.multicast, encode({ ...rqst, dst: ALL, seq }), {
          reply: subjects.gather(node),
        });
      } catch (error) {
        this.#warn("multicast", { err: error }, "could not multicast a request");
        actor.send({ type: "view.changed", members: [] });
      }
    });
  }

  /** Sends `rqst` to node `rqst.dst` and resolves with its reply, or with EHOSTDOWN / ETIMEDOUT. */
  async forward(rqst: Rqst, dst: NodeId): Promise<Rply> {
    const { node, view } = this.#o;
    this.stats.forwards++;
    if (this.#stopped) return errorRply(rqst, node, "EHOSTDOWN", `node ${node} is stopping`);
    if (!view.viewMembers().includes(dst))
      return errorRply(rqst, node, "EHOSTDOWN", `node ${dst} is not in the view`);
    let settle = () => {};
    const stopping = new Promise<Rply>((resolve) => {
      settle = () => resolve(errorRply(rqst, node, "EHOSTDOWN", `node ${node} stopped while forwarding`));
    });
    this.#forwards.add(settle);
    try {
      return await Promise.race([this.#relay(rqst, dst), stopping]);
    } finally {
      this.#forwards.delete(settle);
    }
  }

  async #relay(rqst: Rqst, dst: NodeId): Promise<Rply> {
    const { transport, subjects, node } = this.#o;
    const timeoutMs = rqst.timeout ?? this.#o.timeoutMs;
    try {
      const msg = await transport.request(subjects.forward(dst), encode({ ...rqst, dst }), { timeoutMs });
      const parsed = parseRply(msg.data, "cbor", transport.maxPayload);
      if (parsed.ok) return { ...parsed.rply, seq: rqst.seq };
      return errorRply(rqst, node, "EBADMSG", `node ${dst} answered with a malformed reply`);
    } catch (error) {
      if (error instanceof NoRespondersError)
        return errorRply(rqst, node, "EHOSTDOWN", `node ${dst} does not serve requests`);
      if (error instanceof TimeoutError)
        return errorRply(rqst, node, "ETIMEDOUT", `node ${dst} did not answer within ${timeoutMs} ms`);
      return errorRply(rqst, node, "EHOSTDOWN", `could not reach node ${dst}: ${String(error)}`);
    }
  }

  #onAnswer(data: Uint8Array): void {
    const parsed = parseRply(data, "cbor", this.#o.transport.maxPayload);
    if (!parsed.ok || typeof parsed.rply.src !== "number") {
      this.stats.dropped++;
      this.#warn("answer", {}, "dropped a malformed answer to a multicast");
      return;
    }
    const actor = this.#gathers.get(parsed.rply.seq);
    if (!actor) {
      this.stats.dropped++;
      return;
    }
    actor.send({ type: "member.answered", node: parsed.rply.src, reply: parsed.rply });
  }
}

function countGather(metrics: GatherMetrics, output: GatherOutput<Rply>, absent: number): void {
  let timedOut = 0;
  let left = absent;
  for (const entry of output.entries) {
    if (entry.outcome === "timeout") timedOut++;
    else if (entry.outcome === "down") left++;
  }
  metrics.gathered(output.entries.length + absent, timedOut, left);
}

/**
 * One RPLY for the requester: an entry per expected member and per known node
 * out of the view, in node order; rcode 0, or the first entry's error.
 */
function aggregate(
  rqst: Rqst,
  node: NodeId,
  output: GatherOutput<Rply>,
  absent: readonly NodeId[],
  timeoutMs: number,
): Rply {
  const gathered = output.entries.map((entry): Rply => {
    if (entry.outcome === "answered") return { ...entry.reply, seq: rqst.seq, dst: rqst.src };
    if (entry.outcome === "timeout")
      return errorRply(
        rqst,
        entry.node,
        "ETIMEDOUT",
        `node ${entry.node} did not answer within ${timeoutMs} ms`,
      );
    return errorRply(rqst, entry.node, "EHOSTDOWN", `node ${entry.node} left the view before answering`);
  });
  const outOfView = absent.map((n) =>
    errorRply(rqst, n, "EHOSTDOWN", `node ${n} is not in node ${node}'s view: unreachable or down`),
  );
  const entries = [...gathered, ...outOfView].sort((a, b) => (a.src as number) - (b.src as number));
  const failed = entries.find((e) => e.rcode < 0);
  return makeRply(rqst, node, failed ? failed.rcode : 0, entries);
}
