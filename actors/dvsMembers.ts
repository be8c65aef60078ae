// Who is in each DC as the view changes, and what the DC requests do to the
// processes (SPEC 5, "the tables govern"): a member that leaves the view for
// good (DISCONNECT: it left, or stayed unreachable past downAfter; a PARTITION
// alone may heal) leaves every DC's node list on this node and comes back when
// it rejoins (JOIN, MERGE); DCEND ends the DC's processes, and is
// refused while any runs unless forced; DELNODE of this node moves its
// processes of the DC to the DC's other nodes, or ends them.
import type { ViewChange } from "../machines/membership.js";
import type { NodeId, Rqst } from "../protocol/messages.js";
import type { Clock } from "../transport/clock.js";
import type { DcMembershipChange, DvsStore } from "./dvsStore.js";
import type { Logger } from "./logger.js";
import type { DcProcessPort } from "./processes/dcProcesses.js";
import type { Outcome } from "./requestServer.js";

export interface DcMembersOptions {
  readonly node: NodeId;
  readonly store: DvsStore;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly control: { viewMembers(): readonly NodeId[] };
  readonly processes: DcProcessPort;
}

/** Endpoints named in an EBUSY message, at most this many. */
const NAMED_ENDPOINTS = 8;

export class DcMembers {
  readonly #o: DcMembersOptions;

  constructor(options: DcMembersOptions) {
    this.#o = options;
  }

  /** Members that left leave their DCs; members that came back return to the DCs they left. */
  onView(change: ViewChange): void {
    const { store, node, clock, logger } = this.#o;
    const nodes = change.changed.map((m) => m.node).filter((n) => n !== node);
    if (nodes.length === 0) return;
    if (change.event === "DISCONNECT") {
      const changes = store.depart(nodes, change.cause, clock.now());
      if (changes.length > 0)
        logger.warn(
          { event: change.event, cause: change.cause, nodes, dcs: summary(changes) },
          "members left the view: out of their DCs until they rejoin",
        );
    } else if (change.event === "JOIN" || change.event === "MERGE") {
      const changes = store.rejoin(nodes);
      if (changes.length > 0)
        logger.info(
          { event: change.event, nodes, dcs: summary(changes) },
          "members rejoined: back in their DCs",
        );
    }
  }

  /**
   * DC tables learnt from another node: its departures are its view's, so the
   * members of this node's view return; and the processes here that a DC no
   * longer allows (ended, or this node removed meanwhile) end.
   */
  afterMerge(): void {
    const returned = this.#o.store.rejoin(this.#o.control.viewMembers());
    if (returned.length > 0)
      this.#o.logger.info({ dcs: summary(returned) }, "members of the view back in the DCs learnt");
    this.#o.processes.reconcile();
  }

  /** DCEND: refused (EBUSY) while a process of the DC runs, unless `force`; then they end with it. */
  dcEnd(params: Rqst<"DCEND">["params"]): Outcome {
    const { store, processes } = this.#o;
    const { dcid, force } = params;
    if (!store.dc(dcid)) return { error: "ENOENT", message: `no DC ${dcid}` };
    const running = processes.running(dcid);
    if (running.length > 0 && force !== true) {
      const named = running.slice(0, NAMED_ENDPOINTS).map((e) => `${e.endpoint}@${e.node}`);
      const more = running.length > NAMED_ENDPOINTS ? ", …" : "";
      return {
        error: "EBUSY",
        message: `DC ${dcid} has ${running.length} running processes (${named.join(", ")}${more}): end them, or send DCEND with force`,
      };
    }
    const outcome = store.dcEnd(dcid);
    if ("error" in outcome) return outcome;
    return { rcode: 0, data: { dcid, ended: processes.endAll(dcid, "DCEND") } };
  }

  /** DELNODE: on the removed node, its processes of the DC move or end, one outcome each. */
  async delNode(dcid: number, nodeid: NodeId): Promise<Outcome> {
    const outcome = this.#o.store.delNode(dcid, nodeid);
    if ("error" in outcome) return outcome;
    const processes = nodeid === this.#o.node ? await this.#o.processes.evict(dcid) : [];
    return { rcode: 0, data: { ...(outcome.data as object), processes } };
  }
}

const summary = (changes: readonly DcMembershipChange[]) =>
  changes.map((c) => `${c.dcid}:${c.nodeids.join(",")}`).join(" ");
