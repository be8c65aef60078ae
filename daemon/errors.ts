// Named failures of the daemon layer: its config, the nats-server it starts and its metrics endpoint.
import { withIssues } from "../protocol/messages.js";

/** A config file or flag is missing, unreadable or invalid; `issues` lists every problem with its path. */
export class ConfigError extends Error {
  override name = "ConfigError";
  constructor(
    message: string,
    readonly issues: readonly { path: string; message: string }[] = [],
    options?: ErrorOptions,
  ) {
    super(withIssues(message, issues), options);
  }
}

/** The nats-server binary is not installed. */
export class NatsServerNotFoundError extends Error {
  override name = "NatsServerNotFoundError";
  constructor(readonly binary: string) {
    super(
      `${binary} was not found on PATH. Install it with: apt-get update && apt-get install -y nats-server`,
    );
  }
}

/** nats-server started but did not become ready, or exited early. */
export class NatsServerStartError extends Error {
  override name = "NatsServerStartError";
  constructor(
    message: string,
    readonly output: string,
    options?: ErrorOptions,
  ) {
    super(output ? `${message}\n${output}` : message, options);
  }
}

/** The metrics endpoint could not listen on its address (the port is taken, the address is not this host's). */
export class MetricsListenError extends Error {
  override name = "MetricsListenError";
  constructor(
    readonly host: string,
    readonly port: number,
    readonly code: string | undefined,
    options?: ErrorOptions,
  ) {
    const why =
      code === "EADDRINUSE"
        ? "the port is already in use (another dvsd node or program on this host?)"
        : code === "EADDRNOTAVAIL"
          ? "the address is not one of this host's"
          : code === "EACCES"
            ? "permission denied"
            : `error ${code ?? "unknown"}`;
    super(
      `cannot serve metrics on ${host}:${port}: ${why}; set metrics.port (or --metrics-port) to a free port`,
      options,
    );
  }
}
