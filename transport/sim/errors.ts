// Named misuses of the simulated network itself (not transport failures: those
// are the classes in ../errors.ts, which the sim raises exactly as NATS would).

/** Base class of the sim's own errors, so a test can tell a wrong scenario from a transport failure. */
export class SimError extends Error {
  override name = "SimError";
}

/** A server index outside 0..servers-1, or a route from a server to itself. */
export class UnknownServerError extends SimError {
  override name = "UnknownServerError";
  constructor(
    readonly server: number,
    readonly servers: number,
  ) {
    super(`unknown server ${server}: the network has servers 0..${servers - 1}`);
  }
}

/** `connect(name)` while a live connection already uses that name. */
export class DuplicateConnectionError extends SimError {
  override name = "DuplicateConnectionError";
  constructor(readonly connection: string) {
    super(`a live connection is already named ${JSON.stringify(connection)}`);
  }
}

/** A fault aimed at a host the network has never seen (or that already crashed). */
export class UnknownHostError extends SimError {
  override name = "UnknownHostError";
  constructor(readonly host: string) {
    super(`unknown host ${JSON.stringify(host)}`);
  }
}

/** An option or fault value out of range (negative latency, a drop rate above 1, ...). */
export class SimConfigError extends SimError {
  override name = "SimConfigError";
  constructor(
    readonly option: string,
    readonly value: unknown,
  ) {
    super(`invalid sim option ${option}: ${JSON.stringify(value)}`);
  }
}
