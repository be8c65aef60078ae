// Collects the status of every node of a cluster (`dvsctl members`, `dvsd up`):
// one request on `dvs.<c>._status` with our own inbox as the reply subject,
// every node answers with its NodeStatus, and we gather the answers until every
// node named in an answer's view has answered, or the deadline passes.

import { decode, encodingOf } from "../protocol/codec.js";
import { type NodeStatus, nodeStatusSchema } from "../protocol/messages.js";
import { subjects } from "../protocol/subjects.js";
import { type Clock, systemClock } from "../transport/clock.js";
import type { Message, Transport } from "../transport/transport.js";
import { formatTable } from "./table.js";

export interface CollectStatusOptions {
  readonly cluster: string;
  /** Longest wait for the answers, in ms. */
  readonly timeoutMs: number;
  /** Default: the system clock. */
  readonly clock?: Clock;
}

export interface ClusterStatus {
  /** One status per node id (the last answer if a node id answered twice), sorted by node id. */
  readonly nodes: NodeStatus[];
  /** Every node named in the answers' views answered before the deadline. */
  readonly complete: boolean;
  /** Node ids named in some answer's view that did not answer, sorted. */
  readonly missing: number[];
  /** Answers that were not a valid status; ignored. */
  readonly malformed: number;
}

/** How long a gathering waits, once every named member has answered, for a node no view names. */
const STRAGGLER_GRACE_MS = 50;

/**
 * Asks every node of `cluster` for its status. Resolves STRAGGLER_GRACE_MS
 * after at least one node answered and every node named in the answers' views
 * has answered (unless a node out of the DVS answered: it names no one, so only
 * the deadline can tell who else is there); at the deadline otherwise. No node
 * listening at all resolves at once with no nodes when the transport reports
 * it (NATS answers the inbox with an empty "no responders" status message),
 * and at the deadline otherwise.
 */
export function collectStatus(transport: Transport, options: CollectStatusOptions): Promise<ClusterStatus> {
  const clock = options.clock ?? systemClock;
  const byNode = new Map<number, NodeStatus>();
  let malformed = 0;

  const named = (): Set<number> => {
    const all = new Set<number>();
    for (const s of byNode.values()) for (const m of s.view.members) all.add(m);
    return all;
  };
  const missing = (): number[] => [...named()].filter((n) => !byNode.has(n)).sort((a, b) => a - b);

  return new Promise((resolve, reject) => {
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clock.clearTimeout(timer);
      clock.clearTimeout(grace);
      sub.unsubscribe();
      const left = missing();
      resolve({
        nodes: [...byNode.values()].sort((a, b) => a.node - b.node),
        complete: byNode.size > 0 && left.length === 0,
        missing: left,
        malformed,
      });
    };
    const onReply = (msg: Message) => {
      if (done) return;
      if (msg.data.byteLength === 0) {
        // NATS' "no responders" status: nobody subscribes to the status subject.
        if (byNode.size === 0) finish();
        return;
      }
      const decoded = decode(msg.data, encodingOf(msg));
      const parsed = decoded.ok ? nodeStatusSchema.safeParse(decoded.value) : undefined;
      if (!parsed?.success) {
        malformed++;
        return;
      }
      byNode.set(parsed.data.node, parsed.data);
      // A node out of the DVS (DVSEND) names no one: only the timeout can tell who else is there.
      const detached = [...byNode.values()].some((s) => s.view.members.length === 0);
      if (detached || missing().length > 0) {
        // A node out of the DVS, or a member named only now: wait for the deadline, or for that member.
        clock.clearTimeout(grace);
        grace = undefined;
      } else if (grace === undefined) {
        // Every member named has answered: wait a moment more for a node that no view names (out of the DVS).
        grace = clock.setTimeout(finish, Math.min(STRAGGLER_GRACE_MS, options.timeoutMs));
      }
    };
    let grace: ReturnType<typeof clock.setTimeout> | undefined;

    const inbox = transport.inbox();
    const sub = transport.subscribe(inbox, onReply);
    const timer = clock.setTimeout(finish, options.timeoutMs);
    try {
      transport.publish(subjects(options.cluster).status, new Uint8Array(0), { reply: inbox });
    } catch (error) {
      done = true;
      clock.clearTimeout(timer);
      sub.unsubscribe();
      reject(error);
    }
  });
}

/** True when the status shows exactly these members, all agreeing on one view. */
export function agreeOnView(nodes: readonly NodeStatus[], members: readonly number[]): boolean {
  const want = [...members].sort((a, b) => a - b).join(",");
  const first = nodes[0];
  if (!first || nodes.length !== members.length) return false;
  if (nodes.map((n) => n.node).join(",") !== want) return false;
  return nodes.every((n) => n.view.id === first.view.id && n.view.members.join(",") === want);
}

/** The state column: the node's state, with "(minority)" when it marks itself minority. */
function stateOf(s: NodeStatus): string {
  return s.minority && !s.state.includes("minority") ? `${s.state} (minority)` : s.state;
}

/** The members table of `dvsctl members` and `dvsd up`. */
export function formatMembers(nodes: readonly NodeStatus[]): string {
  return formatTable(
    ["node", "incarnation", "state", "view", "members", "pid"],
    nodes.map((s) => [s.node, s.incarnation, stateOf(s), s.view.id, s.view.members.join(","), s.pid]),
  );
}
