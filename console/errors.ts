// What the console's HTTP API answers when it refuses: one class per reason,
// each with the HTTP status and a stable `code` the page (and a script) reads
// from the JSON body `{ error: code, message, issues? }`.

export class ConsoleHttpError extends Error {
  override name = "ConsoleHttpError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly issues?: readonly { readonly path: string; readonly message: string }[],
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** The input does not parse or does not validate (400). */
export class BadInputError extends ConsoleHttpError {
  override name = "BadInputError";
  constructor(message: string, issues?: readonly { path: string; message: string }[]) {
    super(400, "EINVAL", message, issues);
  }
}

/** A request from another origin, a foreign Host, or without the console's header (403). */
export class ForbiddenOriginError extends ConsoleHttpError {
  override name = "ForbiddenOriginError";
  constructor(message: string) {
    super(403, "EORIGIN", message);
  }
}

/** The console's user may not do this (a viewer reading the action log, committing a file): 403. */
export class NotPermittedError extends ConsoleHttpError {
  override name = "NotPermittedError";
  constructor(message: string) {
    super(403, "EPERM", message);
  }
}

export class NotFoundError extends ConsoleHttpError {
  override name = "NotFoundError";
  constructor(message: string) {
    super(404, "ENOENT", message);
  }
}

export class MethodNotAllowedError extends ConsoleHttpError {
  override name = "MethodNotAllowedError";
  constructor(method: string, path: string) {
    super(405, "EMETHOD", `${method} is not allowed on ${path}`);
  }
}

/** A body or a file over the console's limit (413). */
export class TooLargeError extends ConsoleHttpError {
  override name = "TooLargeError";
  constructor(message: string) {
    super(413, "EMSGSIZE", message);
  }
}

/** The cluster could not be asked (NATS refused, timed out, no node answered): 502. */
export class ClusterUnreachableError extends ConsoleHttpError {
  override name = "ClusterUnreachableError";
  constructor(message: string, options?: ErrorOptions) {
    super(502, "EUNREACH", message, undefined, options);
  }
}
