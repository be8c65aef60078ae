// The one shape every part of a node has (membership, requests, DVS tables,
// processes, election, files, host): the node runtime (actors/node.ts) starts
// the parts in order, serves the request types they name, tells each of them
// every view change, and stops them in its drain order. Parts reach one another
// only through the narrow ports they were given when built, never through the runtime.
import type { ViewChange } from "../machines/membership.js";
import type { EventMessage, NodeId } from "../protocol/messages.js";
import type { RequestHandlers } from "./requestServer.js";

export interface Subsystem {
  /** Names the part in logs and in the runtime's stop order. */
  readonly name: string;
  /**
   * Subscribes and starts its actors. Returns nothing, or a promise the
   * runtime awaits before starting the next part (what it resolves to is not read).
   */
  start(): unknown;
  /** Stops taking work and lets go of its subscriptions; awaited, in the runtime's drain order. */
  stop(): void | Promise<void>;
  /** The request types this part serves on the node's request server. */
  handlers?(): RequestHandlers;
  /**
   * The members of this node's view changed. `change` is undefined when the
   * node left the DVS (DVSEND) and is alone; `event` is what this node
   * published for the change (what the event scripts receive).
   */
  onView?(members: readonly NodeId[], change?: ViewChange, event?: EventMessage): void;
}

/** A part that only serves requests (the host group the daemon hands the runtime). */
export function servingOnly(name: string, handlers: RequestHandlers): Subsystem {
  return { name, start: () => {}, stop: () => {}, handlers: () => handlers };
}
