// The simulated NATS deployment, for tests and model runs: a seeded network of
// servers and clients whose transports pass the same contract suite as NATS.
export type { DisconnectReason } from "./advisory.js";
export { ScopedClock, SimClock, type SimClockOptions } from "./clock.js";
export {
  DuplicateConnectionError,
  SimConfigError,
  SimError,
  UnknownHostError,
  UnknownServerError,
} from "./errors.js";
export { SimKv, type SimKvOptions, type SimKvWrite } from "./kv.js";
export {
  type ConnectOptions,
  type SimFaults,
  SimNetwork,
  type SimNetworkOptions,
} from "./network.js";
export type { TraceEntry, TraceKind } from "./trace.js";
export { SimTransport } from "./transport.js";
