// Where a process may run: on a node of its DC, within the DC's limits. SPAWN
// and MIGRATE (on both ends) check it against the DC tables the node knows
// (its DvsStore); SPAWN also checks `nr_procs` and `nr_tasks` (ENOSPC).
import type { NodeId } from "../../protocol/messages.js";
import type { Failure } from "./failures.js";

/** The DC tables as the process runtime reads them. */
export interface DcDirectory {
  /** Nodes of DC `dcid` as this node knows them; undefined when the DC does not exist here. */
  nodesOf(dcid: number): readonly NodeId[] | undefined;
  /** The process limits of DC `dcid`; a directory without them sets none. */
  limitsOf?(dcid: number): { readonly nr_procs: number; readonly nr_tasks: number } | undefined;
  /** Whether DC `dcid` is known to have ended (SEND to it answers ENOENT); default never. */
  ended?(dcid: number): boolean;
}

/** Why node `node` may not run a process of DC `dcid`, as node `self` sees it; undefined when it may. */
export function checkPlacement(
  dcs: DcDirectory,
  self: NodeId,
  dcid: number,
  node: NodeId,
): Failure | undefined {
  const nodes = dcs.nodesOf(dcid);
  if (nodes === undefined) return { error: "ENOENT", message: `DC ${dcid} does not exist on node ${self}` };
  if (!nodes.includes(node)) return { error: "EINVAL", message: `node ${node} is not a node of DC ${dcid}` };
  return undefined;
}

/**
 * Whether DC `dcid` has room for one more process at `endpoint`, given the
 * live processes of the DC this node knows of: a **task** (negative endpoint,
 * the seed's kernel tasks) counts against `nr_tasks`, any other process
 * against `nr_procs`.
 */
export function checkRoom(
  dcs: DcDirectory,
  dcid: number,
  endpoint: number,
  live: readonly { readonly endpoint: number }[],
): Failure | undefined {
  const limits = dcs.limitsOf?.(dcid);
  if (limits === undefined) return undefined;
  const task = endpoint < 0;
  const held = live.filter((p) => p.endpoint < 0 === task).length;
  const most = task ? limits.nr_tasks : limits.nr_procs;
  if (held < most) return undefined;
  const what = task ? "tasks (negative endpoints, nr_tasks)" : "processes (nr_procs)";
  return { error: "ENOSPC", message: `DC ${dcid} has ${held} ${what}, its limit` };
}
