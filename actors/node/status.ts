// Answers `dvsctl members` (the cluster's status subject) for one node with
// what the node says of itself: incarnation, lifecycle state, view and peers.
import { encode } from "../../protocol/codec.js";
import type { NodeStatus } from "../../protocol/messages.js";
import { Responder, refusalLog } from "../../protocol/responder.js";
import type { Subjects } from "../../protocol/subjects.js";
import type { Clock } from "../../transport/clock.js";
import type { Subscription, Transport } from "../../transport/transport.js";
import { type Logger, throttledWarn } from "../logger.js";
import type { Subsystem } from "../subsystem.js";

export interface StatusResponderOptions {
  readonly subjects: Subjects;
  readonly transport: Transport;
  readonly clock: Clock;
  readonly logger: Logger;
  /** The node whose status is answered (the node runtime). */
  readonly node: { status(): NodeStatus };
}

export class StatusResponder implements Subsystem {
  readonly name = "status";
  readonly #o: StatusResponderOptions;
  #subscription: Subscription | undefined;

  constructor(options: StatusResponderOptions) {
    this.#o = options;
  }

  start(): void {
    const { transport, subjects, node, logger, clock } = this.#o;
    const warn = throttledWarn(logger, clock);
    const responder = new Responder(transport, {
      onRefused: (reply, subject) => warn("reply-subject", ...refusalLog(reply, subject)),
    });
    this.#subscription = transport.subscribe(subjects.status, (msg) => {
      responder.answer(msg, encode(node.status()));
    });
  }

  stop(): void {
    this.#subscription?.unsubscribe();
    this.#subscription = undefined;
  }
}
