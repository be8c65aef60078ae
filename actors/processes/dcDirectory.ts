// Where a process may run: on a node of its DC. SPAWN and MIGRATE (on both
// ends) check it against the DC tables the node knows (its DvsStore).
import type { NodeId } from "../../protocol/messages.js";
import type { Failure } from "./failures.js";

/** The DC tables as the process runtime reads them. */
export interface DcDirectory {
  /** Nodes of DC `dcid` as this node knows them; undefined when the DC does not exist here. */
  nodesOf(dcid: number): readonly NodeId[] | undefined;
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
