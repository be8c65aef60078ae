// How a client program connects and keeps time: one NATS connection (the
// transport the nodes use, with the user's inbox prefix), the system clock
// and randomness, and the ids it gives actions and commits.
export type { Clock, TimerHandle } from "../transport/clock.js";
export { systemClock, systemRandom } from "../transport/clock.js";
export { connectNats, type NatsTransport } from "../transport/nats.js";
export type { Transport } from "../transport/transport.js";
