// The file store of a node in a minority (quorum mode, docs/protocol.md 9.5):
// it answers the clients' COMMIT with EROFS itself, in the coordinators' queue
// group, so a client cut off with it hears a refusal rather than no
// responders. Reads (UPDATE, LS) are left to the coordinator.
import { encodingOf } from "../../protocol/codec.js";
import type { Message, Subscription } from "../../transport/transport.js";
import { publicEndpoints, serveEndpoint } from "../endpoints.js";
import { type FilePeers, fileError } from "./peers.js";

/** The answer to a COMMIT that reaches a node in a minority. */
export const minorityRefusal = (self: number) =>
  fileError(
    "EROFS",
    `node ${self} is in a minority (quorum mode): the file store is read-only until its component holds a majority again`,
  );

export class MinorityRefusal {
  #subscription: Subscription | undefined;

  constructor(readonly peers: FilePeers) {}

  /** Takes (or stops taking) the clients' COMMIT to refuse it, as `readOnly` says. */
  update(readOnly: boolean): void {
    if (readOnly && this.#subscription === undefined) {
      const { transport, subjects, self, endpoints } = this.peers.options;
      const spec = publicEndpoints(subjects, self).fileCommit;
      this.#subscription = serveEndpoint(transport, endpoints, spec, (msg) => this.#refuse(msg));
      this.peers.options.logger.warn("in a minority (quorum mode): the file store refuses COMMIT with EROFS");
    } else if (!readOnly && this.#subscription !== undefined) {
      this.stop();
      this.peers.options.logger.info("no longer in a minority: the file store takes COMMIT again");
    }
  }

  stop(): void {
    this.#subscription?.unsubscribe();
    this.#subscription = undefined;
  }

  #refuse(msg: Message): void {
    const answer = minorityRefusal(this.peers.self);
    this.peers.options.metrics?.fileOperation("commit", "EROFS");
    this.peers.reply(msg, answer, encodingOf(msg));
  }
}
