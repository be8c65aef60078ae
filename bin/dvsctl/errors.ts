// dvsctl's own failures: a command that cannot go on says why and which exit
// status that means (see EXIT in session.ts).

/** A command stopped with a message for stderr and the exit status it implies. */
export class CommandError extends Error {
  override name = "CommandError";

  constructor(
    message: string,
    readonly exitCode: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
