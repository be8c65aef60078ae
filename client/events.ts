// The cluster's events as a client reads them: every node publishes its
// membership and COORDINATOR events on `dvs.<c>.events.<node>`; a watcher
// checks each body and that it arrived on its own observer's subject.
import { decode, encodingOf } from "../protocol/codec.js";
import { type ClusterEvent, clusterEventSchema } from "../protocol/messages.js";
import { subjects } from "../protocol/subjects.js";
import type { Subscription, Transport } from "../transport/transport.js";

export interface EventWatch {
  /** The subject watched (all nodes' events). */
  readonly subject: string;
  readonly subscription: Subscription;
}

/**
 * Calls `onEvent` for each valid event of `cluster`, and `onSkipped` with the
 * reason for each message that is not one: malformed, or naming an observer
 * other than the node whose subject it came on (only node N may publish on
 * events.N, so such an event is forged).
 */
export function watchEvents(
  transport: Transport,
  cluster: string,
  onEvent: (event: ClusterEvent) => void,
  onSkipped: (reason: string) => void,
): EventWatch {
  const s = subjects(cluster);
  const subscription = transport.subscribe(s.events, (msg) => {
    const decoded = decode(msg.data, encodingOf(msg));
    const parsed = decoded.ok ? clusterEventSchema.safeParse(decoded.value) : undefined;
    if (!parsed?.success) {
      const reason = decoded.ok ? "not a cluster event" : decoded.message;
      onSkipped(`a malformed message on ${s.events}: ${reason}`);
      return;
    }
    if (msg.subject !== s.nodeEvents(parsed.data.node)) {
      onSkipped(`an event of node ${parsed.data.node} that arrived on ${msg.subject}`);
      return;
    }
    onEvent(parsed.data);
  });
  return { subject: s.events, subscription };
}
