// The simulated NATS deployment, for tests and model runs: a seeded network of
// servers and clients whose transports pass the same contract suite as NATS.
export { ScopedClock, SimClock, type SimClockOptions } from "./clock.js";
export {
  DuplicateConnectionError,
  SimConfigError,
  SimError,
  UnknownHostError,
  UnknownServerError,
} from "./errors.js";
export { SimKv, type SimKvOptions } from "./kv.js";
export {
  type ConnectOptions,
  type SimFaults,
  SimNetwork,
  type SimNetworkOptions,
  type TraceEntry,
  type TraceKind,
} from "./network.js";
export { SimTransport } from "./transport.js";
