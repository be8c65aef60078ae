// Lets NATS say what it already knows: nats-server publishes a DISCONNECT
// advisory the moment a client's connection closes (a killed process closes its
// socket), and one that names another node of this cluster makes this node
// probe that node at once instead of waiting for its heartbeats to be late.
// The advisory is only a hint (any client may pick any name): the probe decides.
import {
  DISCONNECT_ADVISORIES,
  type DisconnectAdvisory,
  nodeOfClientName,
  parseDisconnectAdvisory,
  SERVER_SHUTDOWN_REASON,
} from "../../protocol/advisories.js";
import type { NodeId } from "../../protocol/messages.js";
import type { Clock } from "../../transport/clock.js";
import type { Message, Subscription, Transport } from "../../transport/transport.js";
import { type Logger, throttledWarn } from "../logger.js";
import type { Subsystem } from "../subsystem.js";

export interface DisconnectWatchOptions {
  readonly cluster: string;
  readonly self: NodeId;
  readonly transport: Transport;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Probe node `node` now (the membership that runs by then; nothing while out of the DVS). */
  readonly suspect: (node: NodeId) => void;
  /**
   * A node is suspected at most once in this many milliseconds, so a burst of
   * advisories naming it (a flapping link, or names forged by a client)
   * costs one probe per period.
   */
  readonly quietMs: number;
}

/**
 * The node of this cluster, other than `self`, that a DISCONNECT advisory
 * gives a reason to probe; undefined for any other connection, and for one
 * its server closed on its way out (that node reconnects to another server,
 * and a probe in between would only find it moving).
 */
export function disconnectedNode(
  advisory: DisconnectAdvisory,
  cluster: string,
  self: NodeId,
): NodeId | undefined {
  if (advisory.reason === SERVER_SHUTDOWN_REASON) return undefined;
  const name = advisory.client.name;
  const node = name === undefined ? undefined : nodeOfClientName(cluster, name);
  return node === self ? undefined : node;
}

export class DisconnectWatch implements Subsystem {
  readonly name = "disconnects";
  readonly #o: DisconnectWatchOptions;
  readonly #warn: ReturnType<typeof throttledWarn>;
  readonly #suspectedAt = new Map<NodeId, number>();
  #subscription: Subscription | undefined;

  constructor(options: DisconnectWatchOptions) {
    this.#o = options;
    this.#warn = throttledWarn(options.logger, options.clock);
  }

  /**
   * Subscribes; on a server that does not import the advisories nothing ever
   * arrives, and one whose nats.conf refuses the subscription reports it
   * through the transport's handler errors without touching the node.
   */
  start(): void {
    this.#subscription = this.#o.transport.subscribe(DISCONNECT_ADVISORIES, (msg) => this.#onAdvisory(msg));
  }

  stop(): void {
    this.#subscription?.unsubscribe();
    this.#subscription = undefined;
  }

  #onAdvisory(msg: Message): void {
    const { cluster, self, clock, logger, quietMs } = this.#o;
    const advisory = parseDisconnectAdvisory(msg.data);
    if (advisory === undefined) {
      this.#warn(
        "bad-advisory",
        { subject: msg.subject, bytes: msg.data.byteLength },
        "ignored a malformed DISCONNECT advisory",
      );
      return;
    }
    const node = disconnectedNode(advisory, cluster, self);
    if (node === undefined) return;
    const at = clock.now();
    const last = this.#suspectedAt.get(node);
    if (last !== undefined && at - last < quietMs) return;
    this.#suspectedAt.set(node, at);
    logger.debug(
      { peer: node, reason: advisory.reason, server: advisory.server?.name },
      "nats-server says a node's connection closed; its observers probe it",
    );
    this.#o.suspect(node);
  }
}
