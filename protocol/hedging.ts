// The acknowledgement a hedging client asks for (SPEC 3.1; client/hedge.ts):
// a request carrying `Dvs-Ack: 1` is acknowledged at once by the node that
// takes it, with an empty message whose headers say `Dvs-Status: accepted`
// and `Dvs-Node: <id>`, before the RPLY. Only clients that ask get it, so a
// plain `nats req` still takes the RPLY as its one answer.

/** Asks the node that takes a request to acknowledge it at once (value `1`). */
export const ACK_REQUEST_HEADER = "Dvs-Ack";
/** On the acknowledgement (an empty message): `accepted`. */
export const ACK_STATUS_HEADER = "Dvs-Status";
export const ACK_STATUS = "accepted";
/** On the acknowledgement: the id of the node that took the request. */
export const ACK_NODE_HEADER = "Dvs-Node";
