// Every row, in the order a full run executes them. A new row is a module in
// this folder exporting a BenchRow, added to this list.
import type { BenchRow } from "../row.js";
import { actionsList } from "./actionsList.js";
import { coordinatorFailover } from "./coordinatorFailover.js";
import { fileCommit1k, fileCommit1m } from "./fileCommit.js";
import { fileUpdate1k, fileUpdate1m } from "./fileUpdate.js";
import { hostFlood } from "./hostFlood.js";
import { membershipConvergence } from "./membershipConvergence.js";
import { membershipDetection } from "./membershipDetection.js";
import { membershipNoFalseEvents } from "./membershipNoFalseEvents.js";
import { rqstAll } from "./rqstAll.js";
import { rqstLatency, rqstLatencyInProcess } from "./rqstLatency.js";
import { rqstThroughput } from "./rqstThroughput.js";

export const ROWS: readonly BenchRow[] = [
  rqstLatency,
  rqstThroughput,
  rqstLatencyInProcess,
  rqstAll,
  membershipDetection,
  membershipConvergence,
  membershipNoFalseEvents,
  coordinatorFailover,
  hostFlood,
  fileCommit1k,
  fileCommit1m,
  fileUpdate1k,
  fileUpdate1m,
  actionsList,
];
