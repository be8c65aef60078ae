// Named failures of the runtime.

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
