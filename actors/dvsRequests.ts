// The handlers of the DVS, DC and node request groups (SPEC 5) on one node, and
// the gate that answers ENOTINIT before DVSINIT. They read and change the DVS
// store; joining and leaving the view (DVSINIT after DVSEND, DVSEND) and the
// node's traffic figures come from the node runtime through `DvsNodeContext`.
import { type NodeId, REQUEST_GROUPS, type RequestType, type Rqst } from "../protocol/messages.js";
import type { DvsStore } from "./dvsStore.js";
import type { NodeTraffic } from "./processes/proxy.js";
import type { Outcome, RequestHandlers } from "./requestServer.js";

/** What the handlers need from the node runtime. */
export interface DvsNodeContext {
  readonly node: NodeId;
  readonly store: DvsStore;
  /** The node's incarnation and lifecycle state (e.g. `running.member`). */
  readonly identity: () => { incarnation: number; state: string; minority: boolean };
  /** The members of the current view; empty while the node is out of the DVS. */
  readonly view: () => readonly NodeId[];
  /** True while the node takes part in the view (false after DVSEND). */
  readonly attached: () => boolean;
  /** Joins the view again after a DVSEND. */
  readonly attach: () => void;
  /** Leaves the view gracefully (DVSEND). */
  readonly detach: () => void;
  /** Process traffic through this node's proxies. */
  readonly traffic: () => NodeTraffic;
  /** Sends a request to another node and answers with its reply. */
  readonly forward: (rqst: Rqst, dst: NodeId) => Promise<Outcome>;
}

/** `node_usr` flags. */
export const NODE_FLAGS = { initialized: 1, inView: 2, minority: 4 } as const;

const UNGATED: ReadonlySet<RequestType> = new Set<RequestType>(["DVSINIT", ...REQUEST_GROUPS.host]);

/** ENOTINIT for everything but DVSINIT and host requests while the node is not initialised. */
export function notInitializedGate(store: DvsStore) {
  return (rqst: Rqst): Outcome | undefined =>
    store.initialized || UNGATED.has(rqst.type)
      ? undefined
      : { error: "ENOTINIT", message: `DVS not initialised on this node (send DVSINIT first)` };
}

export function dvsRequestHandlers(ctx: DvsNodeContext): RequestHandlers {
  const { store, node } = ctx;
  return {
    DVSINIT: (rqst) => {
      const outcome = store.init(rqst.params as Rqst<"DVSINIT">["params"]);
      if ("error" in outcome || ctx.attached()) return outcome;
      return { ...outcome, afterReply: ctx.attach };
    },
    GETDVSINFO: () => ({ rcode: 0, data: store.dvs }),
    DVSEND: () => {
      const outcome = store.end();
      if ("error" in outcome) return outcome;
      return { ...outcome, afterReply: ctx.detach };
    },
    DCINIT: (rqst) => store.dcInit(rqst.params as Rqst<"DCINIT">["params"]),
    GETDCINFO: (rqst) => {
      const { dcid } = rqst.params as Rqst<"GETDCINFO">["params"];
      const dc = store.dc(dcid);
      return dc ? { rcode: 0, data: dc } : { error: "ENOENT", message: `no DC ${dcid}` };
    },
    DCEND: (rqst) => store.dcEnd((rqst.params as Rqst<"DCEND">["params"]).dcid),
    ADDNODE: (rqst) => {
      const { dcid, nodeid } = rqst.params as Rqst<"ADDNODE">["params"];
      return store.addNode(dcid, nodeid);
    },
    DELNODE: (rqst) => {
      const { dcid, nodeid } = rqst.params as Rqst<"DELNODE">["params"];
      return store.delNode(dcid, nodeid);
    },
    GETNODEINFO: (rqst) => {
      const { nodeid } = rqst.params as Rqst<"GETNODEINFO">["params"];
      // Each node describes itself: another node's info comes from that node.
      if (nodeid !== undefined && nodeid !== node) return ctx.forward({ ...rqst, dst: nodeid }, nodeid);
      return { rcode: 0, data: nodeUsr(ctx) };
    },
  };
}

/** `node_usr` of this node. */
export function nodeUsr(ctx: DvsNodeContext) {
  const { store, node } = ctx;
  const id = ctx.identity();
  const view = ctx.view();
  const traffic = ctx.traffic();
  const flags =
    (store.initialized ? NODE_FLAGS.initialized : 0) |
    (view.includes(node) ? NODE_FLAGS.inView : 0) |
    (id.minority ? NODE_FLAGS.minority : 0);
  return {
    nodeid: node,
    name: `node${node}`,
    flags,
    incarnation: id.incarnation,
    state: id.state,
    view: [...view],
    dcs: store
      .dcs()
      .filter((dc) => dc.nodes.includes(node))
      .map((dc) => dc.dcid),
    proxies: [...traffic.proxies],
    msgs_sent: traffic.msgsSent,
    msgs_received: traffic.msgsReceived,
    last_sent: traffic.lastSent,
    last_received: traffic.lastReceived,
  };
}
