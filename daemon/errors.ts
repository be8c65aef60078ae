// Named failures of the daemon layer: its config and the nats-server it starts.

/** A config file or flag is missing, unreadable or invalid; `issues` lists every problem with its path. */
export class ConfigError extends Error {
  override name = "ConfigError";
  constructor(
    message: string,
    readonly issues: readonly { path: string; message: string }[] = [],
    options?: ErrorOptions,
  ) {
    super(
      issues.length ? `${message}\n${issues.map((i) => `  - ${i.path}: ${i.message}`).join("\n")}` : message,
      options,
    );
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
