// A node's events on the wire: CBOR on `dvs.<c>.events.<node>` for dvsd's own
// clients, and the same event as JSON on its twin `dvs.<c>.events.json.<node>`
// for any NATS client without a CBOR library. Every publisher of events
// (membership, election) goes through here, so the two subjects never disagree.
import type { Headers, Transport } from "../transport/transport.js";
import { encode, JSON_HEADERS } from "./codec.js";
import type { ClusterEvent } from "./messages.js";
import type { Subjects } from "./subjects.js";

export type EventPublished =
  | { readonly ok: true }
  | { readonly ok: false; readonly subject: string; readonly error: unknown };

/**
 * Publishes `event` on its observer's CBOR subject, then on the JSON twin;
 * each is tried even if the other fails. Never throws: a failure is returned
 * (the first one), for the caller to log or to keep the event for a retry.
 */
export function publishNodeEvent(
  transport: Transport,
  subjects: Subjects,
  event: ClusterEvent,
): EventPublished {
  const cbor = publishOne(transport, subjects.nodeEvents(event.node), encode(event));
  const json = publishOne(
    transport,
    subjects.nodeEventsJson(event.node),
    encode(event, "json"),
    JSON_HEADERS,
  );
  return cbor.ok ? json : cbor;
}

function publishOne(
  transport: Transport,
  subject: string,
  data: Uint8Array,
  headers?: Headers,
): EventPublished {
  try {
    transport.publish(subject, data, headers ? { headers } : undefined);
    return { ok: true };
  } catch (error) {
    return { ok: false, subject, error };
  }
}
