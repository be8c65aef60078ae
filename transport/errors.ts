// Named failures of the transport layer. Each has a stable `name` that tests and
// callers match on, and a `cause` when it wraps a lower-level error.

export class TransportError extends Error {
  override name = "TransportError";
}

/** A request got no reply within its timeout (the link may be cut, or the responder slow). */
export class TimeoutError extends TransportError {
  override name = "TimeoutError";
  constructor(
    readonly subject: string,
    readonly timeoutMs: number,
    options?: ErrorOptions,
  ) {
    super(`request to ${subject} timed out after ${timeoutMs} ms`, options);
  }
}

/** A request reached the server, which knows no subscriber for the subject. */
export class NoRespondersError extends TransportError {
  override name = "NoRespondersError";
  constructor(
    readonly subject: string,
    options?: ErrorOptions,
  ) {
    super(`no responders for ${subject}`, options);
  }
}

/** The transport was closed (by the caller, or because the connection gave up). */
export class TransportClosedError extends TransportError {
  override name = "TransportClosedError";
  constructor(message = "transport is closed", options?: ErrorOptions) {
    super(message, options);
  }
}

/** A payload is larger than the transport accepts. */
export class PayloadTooLargeError extends TransportError {
  override name = "PayloadTooLargeError";
  constructor(
    readonly size: number,
    readonly limit: number,
  ) {
    super(`payload of ${size} bytes exceeds the limit of ${limit} bytes`);
  }
}

/** A subject is empty, has empty tokens, or misuses wildcards. */
export class InvalidSubjectError extends TransportError {
  override name = "InvalidSubjectError";
  constructor(readonly subject: string) {
    super(`invalid subject: ${JSON.stringify(subject)}`);
  }
}

/** Could not connect to any server at start-up. */
export class ConnectError extends TransportError {
  override name = "ConnectError";
  constructor(
    readonly servers: readonly string[],
    options?: ErrorOptions,
  ) {
    super(`could not connect to ${servers.join(", ")}`, options);
  }
}

/** The server refused the connection's credentials (or there were none and it requires some). */
export class AuthorizationError extends TransportError {
  override name = "AuthorizationError";
  constructor(
    readonly servers: readonly string[],
    readonly user: string | undefined,
    options?: ErrorOptions,
  ) {
    super(
      `${servers.join(", ")} refused ${user === undefined ? "a connection without credentials" : `the credentials of user ${JSON.stringify(user)}`}`,
      options,
    );
  }
}

/** The server's subject permissions do not let this user publish to (or subscribe on) a subject. */
export class PermissionDeniedError extends TransportError {
  override name = "PermissionDeniedError";
  constructor(
    readonly subject: string,
    readonly operation: "publish" | "subscribe",
    options?: ErrorOptions,
  ) {
    super(`the NATS server does not permit this user to ${operation} ${subject}`, options);
  }
}

/** A reply could not be decoded or is not a valid RPLY. */
export class BadReplyError extends TransportError {
  override name = "BadReplyError";
  constructor(
    readonly subject: string,
    readonly reason: string,
  ) {
    super(`bad reply on ${subject}: ${reason}`);
  }
}

/** A compare-and-set lost: the key's revision is not the one expected (or the key exists, for a create). */
export class CasConflictError extends TransportError {
  override name = "CasConflictError";
  /** The key's revision the store holds now, when it said (JetStream's "wrong last sequence: N"). */
  readonly current: number | undefined;
  constructor(
    readonly bucket: string,
    readonly key: string,
    readonly expected: number | "absent",
    options?: ErrorOptions & { readonly current?: number | undefined },
  ) {
    super(
      `compare-and-set on ${bucket}/${key} lost (expected revision ${expected}${options?.current !== undefined ? `, the store holds ${options.current}` : ""})`,
      options,
    );
    this.current = options?.current;
  }
}

/** The store could not be reached or did not answer in time; the operation may or may not have happened. */
export class StoreUnavailableError extends TransportError {
  override name = "StoreUnavailableError";
  constructor(
    readonly bucket: string,
    readonly operation: string,
    options?: ErrorOptions,
  ) {
    super(`store ${bucket} is not available for ${operation}`, options);
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

/** A record larger than the log takes in one message (the stream's max_msg_size): the writer caps its data first. */
export class ActionRecordTooLargeError extends ActionLogError {
  override name = "ActionRecordTooLargeError";
  constructor(
    readonly key: string,
    readonly bytes: number,
    readonly limit: number,
  ) {
    super(`action record ${key} is ${bytes} bytes, over the log's limit of ${limit}`);
  }
}

/** A read of the log that stalled on every retry: it names where it stopped, so a caller can resume there. */
export class ActionLogReadError extends ActionLogError {
  override name = "ActionLogReadError";
  constructor(
    message: string,
    readonly filter: string,
    readonly atSeq: number,
    readonly attempts: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}
