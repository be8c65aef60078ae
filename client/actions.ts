// The action log as a client reads it (SPEC 6.4): the records of each action
// (request, each node's reply, outcome; the cluster's own events) in the
// cluster's JetStream stream, and
// the ids requests carry so that their records can be found.
import { decode } from "../protocol/codec.js";
import { type ActionRecord, recordOnKey } from "../transport/actionLog.js";
import type { Subscription, Transport } from "../transport/transport.js";

export type {
  ActionRecord,
  ActionSummary,
  EventRecord,
  LogReach,
  ReplyRecord,
  RequestRecord,
} from "../transport/actionLog.js";
export { ACTION_DATA_BUDGET_BYTES, actionIds, REPLY_DATA_BYTES } from "../transport/actionLog.js";
export { JetStreamActionLog } from "../transport/actionLogJetStream.js";
export { ActionLogError, ActionLogReadError } from "../transport/errors.js";

/**
 * Calls `onRecord` for each action record as the nodes write it (core NATS on
 * the subjects the stream stores; the admin user may read them, the viewer may
 * not), checked as the log's readers check them: the subject must name the
 * node that wrote the record. `onSkipped` hears the subject of any other.
 */
export function watchActionRecords(
  transport: Transport,
  cluster: string,
  onRecord: (record: ActionRecord) => void,
  onSkipped: (subject: string) => void,
): Subscription {
  const prefix = `dvs.${cluster}.actions.`;
  return transport.subscribe(`${prefix}>`, (msg) => {
    const decoded = decode(msg.data, "json");
    const record = decoded.ok ? recordOnKey(msg.subject.slice(prefix.length), decoded.value) : "invalid";
    if (typeof record === "string") onSkipped(msg.subject);
    else onRecord(record);
  });
}
