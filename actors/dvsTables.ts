// The DVS and DC tables of one node as a subsystem (SPEC 5): the handlers of
// the DVS, DC and node request groups, the gate that answers ENOTINIT before
// DVSINIT (to all but DVSINIT, GETNODEINFO and host requests), and the DC-table
// sync that teaches a node joining the view the DCs it belongs to. The tables
// govern the processes: DCEND ends a DC's processes (EBUSY without `force`),
// DELNODE moves the removed node's, and a member that leaves the view leaves
// every DC until it rejoins (actors/dvsMembers.ts).

import type { ViewChange } from "../machines/membership.js";
import { decode, encode } from "../protocol/codec.js";
import {
  type EventMessage,
  NODE_FLAGS,
  type NodeId,
  type NodeStatus,
  REQUEST_GROUPS,
  type RequestType,
  type Rply,
  type Rqst,
} from "../protocol/messages.js";
import type { Subjects } from "../protocol/subjects.js";
import type { Clock } from "../transport/clock.js";
import type { Subscription, Transport } from "../transport/transport.js";
import { DcMembers } from "./dvsMembers.js";
import { type DvsStore, dcRecordSchema } from "./dvsStore.js";
import { type Logger, throttledWarn } from "./logger.js";
import type { DcProcessPort } from "./processes/dcProcesses.js";
import type { NodeTraffic } from "./processes/proxy.js";
import type { Outcome, RequestHandlers } from "./requestServer.js";
import type { Subsystem } from "./subsystem.js";

/** What the DVS requests need from the node they run on (the node runtime is it). */
export interface NodeControl {
  /** The node's incarnation, lifecycle state (e.g. `running.member`) and minority flag. */
  status(): NodeStatus;
  /** The members of the node's current view. */
  viewMembers(): readonly NodeId[];
  /** The coordinator this node's registry names now (WHO), or null: none, or no election on this node. */
  coordinator(): { readonly nodeid: NodeId; readonly epoch: number } | null;
  /** True while the node takes part in the view (false after DVSEND). */
  readonly attached: boolean;
  /** Joins the view again after a DVSEND (called once DVSINIT is answered). */
  attach(): void;
  /** Leaves the view gracefully (called once DVSEND is answered). */
  detach(): void;
}

export interface DvsTablesOptions {
  readonly node: NodeId;
  readonly store: DvsStore;
  readonly subjects: Subjects;
  readonly transport: Transport;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly control: NodeControl;
  /** Sends a request to another node and resolves with its reply (GETNODEINFO of another node). */
  readonly forwarder: { forward(rqst: Rqst, dst: NodeId): Promise<Rply> };
  /** Process traffic through this node's proxies, for `node_usr`. */
  readonly traffic: { traffic(): NodeTraffic };
  /** What DC changes do to the processes (the process runtime's `dcProcesses`). */
  readonly processes: DcProcessPort;
}

/** GETNODEINFO is how anyone reads a fresh node's view (node id, state, view, coordinator) before DVSINIT. */
const UNGATED: ReadonlySet<RequestType> = new Set<RequestType>([
  "DVSINIT",
  "GETNODEINFO",
  ...REQUEST_GROUPS.host,
]);

/** ENOTINIT for everything but DVSINIT, GETNODEINFO and host requests while the node is not initialised. */
export function notInitializedGate(store: DvsStore) {
  return (rqst: Rqst): Outcome | undefined =>
    store.initialized || UNGATED.has(rqst.type)
      ? undefined
      : { error: "ENOTINIT", message: `DVS not initialised on this node (send DVSINIT first)` };
}

export class DvsTables implements Subsystem {
  readonly name = "dvs";
  readonly #o: DvsTablesOptions;
  /** Warnings about what other nodes send, at most one per kind per period. */
  readonly #warn: ReturnType<typeof throttledWarn>;
  readonly #members: DcMembers;
  #dcSync: Subscription | undefined;

  constructor(options: DvsTablesOptions) {
    this.#o = options;
    this.#warn = throttledWarn(options.logger, options.clock);
    this.#members = new DcMembers(options);
  }

  /** Listens for the DC tables other nodes offer this one. */
  start(): void {
    const { transport, subjects, node } = this.#o;
    this.#dcSync = transport.subscribe(subjects.dcSync(node), (msg) => this.#onDcSync(msg.data));
  }

  stop(): void {
    this.#dcSync?.unsubscribe();
    this.#dcSync = undefined;
  }

  /**
   * Members that left the view leave every DC; nodes that joined (JOIN, MERGE)
   * come back into the DCs they left, and are offered this node's DC tables,
   * so a late node learns its DCs.
   */
  onView(_members: readonly NodeId[], change?: ViewChange, _event?: EventMessage): void {
    if (change === undefined) return;
    this.#members.onView(change);
    if (change.event === "JOIN" || change.event === "MERGE")
      this.#offerDcs(change.changed.map((m) => m.node));
  }

  handlers(): RequestHandlers {
    const { store, node, control } = this.#o;
    return {
      DVSINIT: (rqst) => {
        const outcome = store.init(rqst.params as Rqst<"DVSINIT">["params"]);
        if ("error" in outcome || control.attached) return outcome;
        return { ...outcome, afterReply: () => control.attach() };
      },
      GETDVSINFO: () => ({ rcode: 0, data: store.dvs }),
      DVSEND: () => {
        const outcome = store.end();
        if ("error" in outcome) return outcome;
        return { ...outcome, afterReply: () => control.detach() };
      },
      DCINIT: (rqst) => store.dcInit(rqst.params as Rqst<"DCINIT">["params"]),
      GETDCINFO: (rqst) => {
        const { dcid } = rqst.params as Rqst<"GETDCINFO">["params"];
        const dc = store.dcView(dcid);
        return dc ? { rcode: 0, data: dc } : { error: "ENOENT", message: `no DC ${dcid}` };
      },
      DCEND: (rqst) => this.#members.dcEnd(rqst.params as Rqst<"DCEND">["params"]),
      ADDNODE: (rqst) => {
        const { dcid, nodeid } = rqst.params as Rqst<"ADDNODE">["params"];
        return store.addNode(dcid, nodeid);
      },
      DELNODE: (rqst) => {
        const { dcid, nodeid } = rqst.params as Rqst<"DELNODE">["params"];
        return this.#members.delNode(dcid, nodeid);
      },
      GETNODEINFO: (rqst) => {
        const { nodeid } = rqst.params as Rqst<"GETNODEINFO">["params"];
        // Each node describes itself: another node's info comes from that node.
        if (nodeid !== undefined && nodeid !== node) return this.#forward({ ...rqst, dst: nodeid }, nodeid);
        return { rcode: 0, data: this.nodeUsr() };
      },
    };
  }

  /** `node_usr` of this node. */
  nodeUsr() {
    const { store, node, control, traffic } = this.#o;
    const status = control.status();
    // Out of the DVS (after DVSEND) the node reports no view at all.
    const view = control.attached ? control.viewMembers() : [];
    const t = traffic.traffic();
    const flags =
      (store.initialized ? NODE_FLAGS.initialized : 0) |
      (view.includes(node) ? NODE_FLAGS.inView : 0) |
      (status.minority ? NODE_FLAGS.minority : 0);
    return {
      nodeid: node,
      name: `node${node}`,
      flags,
      incarnation: status.incarnation,
      state: status.state,
      view: [...view],
      coordinator: control.coordinator(),
      dcs: store
        .dcs()
        .filter((dc) => dc.nodes.includes(node))
        .map((dc) => dc.dcid),
      proxies: [...t.proxies],
      msgs_sent: t.msgsSent,
      msgs_received: t.msgsReceived,
      last_sent: t.lastSent,
      last_received: t.lastReceived,
    };
  }

  /** The other node's answer, error data included, is answered as it came. */
  async #forward(rqst: Rqst, dst: NodeId): Promise<Outcome> {
    const rply = await this.#o.forwarder.forward(rqst, dst);
    return { rcode: rply.rcode, data: rply.data };
  }

  #offerDcs(nodes: readonly NodeId[]): void {
    const { transport, subjects, store, node: self, logger } = this.#o;
    const records = store.records();
    if (records.length === 0) return;
    const bytes = encode(records);
    for (const node of nodes) {
      if (node === self) continue;
      try {
        transport.publish(subjects.dcSync(node), bytes);
      } catch (error) {
        logger.warn({ err: error, node }, "could not offer the DC tables");
      }
    }
  }

  #onDcSync(data: Uint8Array): void {
    const decoded = decode(data, "cbor", this.#o.transport.maxPayload);
    const parsed = decoded.ok ? dcRecordSchema.array().max(65_536).safeParse(decoded.value) : undefined;
    if (!parsed?.success) {
      this.#warn("dcsync", {}, "dropped malformed DC tables from another node");
      return;
    }
    if (this.#o.store.merge(parsed.data)) {
      this.#o.logger.info("learnt DC tables from another node");
      this.#members.afterMerge();
    }
  }
}
