// Named failures of the runtime (config, processes it starts, node lifecycle).

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

/** A process machine could not be registered: the name is taken or not a valid name. */
export class MachineRegistrationError extends Error {
  override name = "MachineRegistrationError";
  constructor(
    readonly machine: string,
    readonly reason: "duplicate" | "invalid name",
  ) {
    super(
      reason === "duplicate"
        ? `a machine named ${JSON.stringify(machine)} is already registered`
        : `${JSON.stringify(machine)} is not a valid machine name (1 to 64 characters)`,
    );
  }
}

/** The action log could not be written or read (JetStream unavailable, a timeout). */
export class ActionLogError extends Error {
  override name = "ActionLogError";
}

/** An action id that is already in the action log: one id names one action. */
export class ActionExistsError extends ActionLogError {
  override name = "ActionExistsError";
  constructor(readonly action: string) {
    super(`action ${action} is already in the log`);
  }
}
