// Named refusals of the host requests. Each carries the protocol error it is
// answered with, so a handler throws what went wrong and the one wrapper in
// daemon/hostRequests.ts turns it into an error outcome; anything else that
// escapes a handler is a bug, logged and answered EINVAL.
import type { ErrorName } from "../../protocol/messages.js";

/** A host request the node refuses; `code` is the rcode name of the reply. */
export abstract class HostRequestError extends Error {
  abstract readonly code: ErrorName;
}

/** No process with this pid on the host (ESRCH, or no /proc/<pid>). */
export class NoSuchProcessError extends HostRequestError {
  override name = "NoSuchProcessError";
  readonly code = "ENOENT";
  constructor(
    readonly pid: number,
    options?: ErrorOptions,
  ) {
    super(`no process ${pid} on this host`, options);
  }
}

/** Why KILL never signals a process: it is init, this dvsd, or a process the node was told to protect. */
export type ProtectedReason = "init" | "daemon" | "protected";

/**
 * KILL of a pid the node never signals: 1 (init), the daemon itself, a
 * protected process (the nats-server `dvsd up` started) or any thread of one
 * of them (`threadOf` is then the process the thread belongs to: a signal to a
 * thread id reaches its whole process).
 */
export class ProtectedProcessError extends HostRequestError {
  override name = "ProtectedProcessError";
  readonly code = "EPERM";
  constructor(
    readonly pid: number,
    readonly reason: ProtectedReason,
    readonly threadOf?: number,
  ) {
    const what =
      reason === "init" ? "init" : reason === "daemon" ? "this dvsd" : "a process this node protects";
    super(
      threadOf === undefined
        ? `pid ${pid} is ${what}: never signalled`
        : `pid ${pid} is a thread of pid ${threadOf}, ${what}: never signalled`,
    );
  }
}

/** The operating system refused to signal the pid (EPERM: another user's process). */
export class SignalDeniedError extends HostRequestError {
  override name = "SignalDeniedError";
  readonly code = "EPERM";
  constructor(
    readonly pid: number,
    readonly signal: string,
    options?: ErrorOptions,
  ) {
    super(`not permitted to send ${signal} to pid ${pid}`, options);
  }
}

/** A signal name outside the KILL allow-list. */
export class SignalNotAllowedError extends HostRequestError {
  override name = "SignalNotAllowedError";
  readonly code = "EINVAL";
  constructor(
    readonly signal: string,
    readonly allowed: readonly string[],
  ) {
    super(`signal ${JSON.stringify(signal)} is not one of ${allowed.join(", ")}`);
  }
}

/** COMMAND names a command that is not in the node's allow-list. */
export class CommandNotAllowedError extends HostRequestError {
  override name = "CommandNotAllowedError";
  readonly code = "EPERM";
  constructor(readonly command: string) {
    super(`command ${JSON.stringify(command)} is not in this node's allow-list (commands.allowed)`);
  }
}

/** COMMAND passes arguments to a command configured without `allowArgs`. */
export class ArgumentsNotAllowedError extends HostRequestError {
  override name = "ArgumentsNotAllowedError";
  readonly code = "EINVAL";
  constructor(readonly command: string) {
    super(`command ${JSON.stringify(command)} takes no arguments (allowArgs is false)`);
  }
}

/** A COMMAND argument that would reach the program as an option (it starts with `-`). */
export class OptionArgumentError extends HostRequestError {
  override name = "OptionArgumentError";
  readonly code = "EINVAL";
  constructor(
    readonly command: string,
    /** Position of the refused argument in the request's `args`. */
    readonly index: number,
  ) {
    super(
      `argument ${index} of command ${JSON.stringify(command)} starts with '-': a requester's arguments may not be options`,
    );
  }
}

/** The configured program could not be started: missing (ENOENT), not executable (EPERM), … */
export class CommandSpawnError extends HostRequestError {
  override name = "CommandSpawnError";
  readonly code: ErrorName;
  /** The errno name the system gave, e.g. ENOENT or EACCES. */
  readonly errno: string | undefined;
  constructor(
    readonly argv: readonly string[],
    options?: ErrorOptions,
  ) {
    const cause = options?.cause as NodeJS.ErrnoException | undefined;
    super(`cannot start ${argv[0]}: ${cause?.message ?? "unknown error"}`, options);
    this.errno = cause?.code;
    this.code = this.errno === "ENOENT" ? "ENOENT" : this.errno === "EACCES" ? "EPERM" : "EINVAL";
  }
}
