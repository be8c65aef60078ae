// How the process runtime sends a request to another node's request server:
// requests it relays for a process hosted elsewhere, and requests processes
// make. One numbering for both, so their `seq`s never collide.
import type { NodeId, Rply, Rqst } from "../../protocol/messages.js";
import type { Outcome } from "../requestServer.js";
import { transportFailure } from "./failures.js";

/** What carries a request to node `dst` and resolves with its RPLY (the node's ReplicationServer). */
export interface Forwarder {
  forward(rqst: Rqst, dst: NodeId): Promise<Rply>;
}

/** Requests forwarded between nodes carry this `src` prefix: they follow forwarding pointers only, never loop. */
const FORWARDED = "fwd:";

export class Forwarding {
  #seq = 0;

  constructor(
    readonly self: NodeId,
    readonly forwarder: Forwarder,
  ) {}

  /** The next number of a request this runtime makes. */
  nextSeq(): number {
    return ++this.#seq;
  }

  /** Whether `rqst` was relayed here by another node's process runtime. */
  isRelayed(rqst: Rqst): boolean {
    return typeof rqst.src === "string" && rqst.src.startsWith(FORWARDED);
  }

  /** Sends `rqst` to node `dst` as it is. */
  forward(rqst: Rqst, dst: NodeId): Promise<Rply> {
    return this.forwarder.forward(rqst, dst);
  }

  /** Relays a request to `target`, the host of the process it names, and answers as `target` did. */
  async relay(rqst: Rqst, target: NodeId): Promise<Outcome> {
    const fwd = { ...rqst, src: `${FORWARDED}${this.self}`, dst: target, seq: this.nextSeq() } as Rqst;
    try {
      const rply = await this.forwarder.forward(fwd, target);
      return { rcode: rply.rcode, data: rply.data };
    } catch (error) {
      return transportFailure(error, `node ${target}`);
    }
  }
}
