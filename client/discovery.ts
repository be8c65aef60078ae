// Finds the nodes of a cluster the way `nats micro ls` does: pings every
// `dvsd` micro service and keeps those whose metadata names the cluster.

import type { NatsConnection } from "@nats-io/transport-node";
import { SERVICE_NAME } from "../protocol/subjects.js";
import { serviceManager } from "../transport/services.js";

export interface DiscoveredNode {
  readonly node: number;
  readonly cluster: string;
  readonly incarnation: number;
  readonly pid: number;
  readonly version: string;
  readonly id: string;
}

/**
 * Pings every `dvsd` service and returns the nodes of `cluster`, sorted by
 * node id: all that answer within `maxWaitMs`, or, with `stallMs`, those
 * that answer before the replies pause that long (quicker, for a hedge).
 */
export async function discoverNodes(
  nc: NatsConnection,
  cluster: string,
  maxWaitMs = 1_000,
  stallMs?: number,
): Promise<DiscoveredNode[]> {
  const nodes: DiscoveredNode[] = [];
  let replies: AsyncIterable<{ metadata?: Record<string, string>; version: string; id: string }>;
  const strategy =
    stallMs === undefined
      ? { strategy: "timer" as const, maxWait: maxWaitMs }
      : { strategy: "stall" as const, maxWait: maxWaitMs, stall: stallMs };
  try {
    replies = await serviceManager(nc).client(strategy).ping(SERVICE_NAME);
  } catch (error) {
    if (isNoResponders(error)) return nodes;
    throw error;
  }
  try {
    await collect(replies, cluster, nodes);
  } catch (error) {
    if (!isNoResponders(error)) throw error;
  }
  return nodes.sort((a, b) => a.node - b.node);
}

/** No service answering at all is an empty list, not a failure. */
function isNoResponders(error: unknown): boolean {
  return (
    error instanceof Error && (/no responders/i.test(error.message) || error.name === "NoRespondersError")
  );
}

async function collect(
  replies: AsyncIterable<{ metadata?: Record<string, string>; version: string; id: string }>,
  cluster: string,
  nodes: DiscoveredNode[],
): Promise<void> {
  for await (const r of replies) {
    const m = r.metadata ?? {};
    if (m.cluster !== cluster) continue;
    nodes.push({
      node: Number(m.node),
      cluster,
      incarnation: Number(m.incarnation),
      pid: Number(m.pid),
      version: r.version,
      id: r.id,
    });
  }
}
