// The senders a node numbers SEND requests under, one per requester (`src`):
// messages are numbered per (this node's run, requester, destination), and a
// bounded, least-recently-used table keeps made-up client ids from costing memory.
import type { Sender } from "../../machines/processEvents.js";
import type { NodeId, Rqst } from "../../protocol/messages.js";

/**
 * Requesters (SEND `src`, chosen by the client) whose message numbering a node
 * keeps. Beyond it the least recently used is forgotten, so a flood of made-up
 * client ids costs bounded memory; a forgotten requester that sends again
 * numbers afresh under a new sender key.
 */
export const MAX_CLIENT_SENDERS = 4_096;

/** A requester's sender and, per destination, the last seq used. */
export interface ClientSender {
  readonly sender: Sender;
  readonly seqs: Record<string, number>;
}

export class ClientSenders {
  /** Per requester, least recently used first. */
  readonly #senders = new Map<string, ClientSender>();
  /** Requesters forgotten by MAX_CLIENT_SENDERS so far. */
  #forgotten = 0;

  /** `incarnation` is this run of the node: a restarted node's numbering cannot collide with the previous one's. */
  constructor(
    readonly self: NodeId,
    readonly incarnation: number,
  ) {}

  /** Requesters whose numbering this node keeps (at most MAX_CLIENT_SENDERS). */
  get size(): number {
    return this.#senders.size;
  }

  /** The requester's sender and numbering, now the most recently used; the least recently used beyond the cap goes. */
  of(src: Rqst["src"]): ClientSender {
    const id = String(src);
    const known = this.#senders.get(id);
    if (known !== undefined) {
      this.#senders.delete(id);
      this.#senders.set(id, known);
      return known;
    }
    // Once any requester was forgotten, a new one may be a forgotten one back: its old key
    // numbered from 1 again would be dropped as duplicates by the receivers, so it gets a fresh key.
    const run = this.#forgotten === 0 ? "" : `.${this.#forgotten}`;
    const key = `c:${this.self}.${this.incarnation}${run}:${src}`;
    const sender: Sender = { kind: "client", key, node: this.self, src };
    const created = { sender, seqs: {} };
    this.#senders.set(id, created);
    if (this.#senders.size > MAX_CLIENT_SENDERS) {
      const oldest = this.#senders.keys().next().value;
      if (oldest !== undefined) this.#senders.delete(oldest);
      this.#forgotten++;
    }
    return created;
  }
}
