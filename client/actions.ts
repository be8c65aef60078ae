// The action log as a client reads it (SPEC 6.4): the records of each action
// (request, each node's reply, outcome) in the cluster's JetStream stream, and
// the ids requests carry so that their records can be found.
export type { ActionRecord, ActionSummary, RequestRecord } from "../transport/actionLog.js";
export { actionIds } from "../transport/actionLog.js";
export { JetStreamActionLog } from "../transport/actionLogJetStream.js";
