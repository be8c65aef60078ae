// Named failures of the benchmark harness. A row that throws one of these is
// reported as an error (the run exits non-zero); a missed target is not an error.

export class BenchError extends Error {
  override name = "BenchError";
}

/** A wait of the harness (a block of requests, a flush, a close) took longer than its limit. */
export class BenchTimeoutError extends BenchError {
  override name = "BenchTimeoutError";
  constructor(
    readonly what: string,
    readonly timeoutMs: number,
    options?: ErrorOptions,
  ) {
    super(`${what} did not finish within ${timeoutMs} ms`, options);
  }
}

/** The run was interrupted (SIGINT, SIGTERM or the caller's AbortSignal). */
export class BenchAbortedError extends BenchError {
  override name = "BenchAbortedError";
  constructor(
    readonly reason: string,
    options?: ErrorOptions,
  ) {
    super(`benchmark aborted: ${reason}`, options);
  }
}

/** `--row` or `runBench({ rows })` named a row that does not exist. */
export class UnknownRowError extends BenchError {
  override name = "UnknownRowError";
  constructor(
    readonly row: string,
    readonly known: readonly string[],
  ) {
    super(`unknown row ${JSON.stringify(row)}; known rows: ${known.join(", ")}`);
  }
}

/** A system under test answered, but not with what the row expects. */
export class UnexpectedReplyError extends BenchError {
  override name = "UnexpectedReplyError";
  constructor(
    readonly subject: string,
    readonly detail: string,
  ) {
    super(`unexpected reply on ${subject}: ${detail}`);
  }
}
