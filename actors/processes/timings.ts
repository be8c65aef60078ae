// The delays of the process runtime: how long a move, a gap in a sender's
// sequence, a pending snapshot save and a stop may take. Tests shorten them.

export interface ProcessTimings {
  /** How long the old host waits for the new one to take a migrating process. */
  readonly migrationTimeoutMs: number;
  /** How long a gap in one sender's sequence may stay open before it is skipped (and counted). */
  readonly gapTimeoutMs: number;
  /** Delay between a change of a process (delivery, send, SETPRIV) and the save of its snapshot. */
  readonly persistDebounceMs: number;
  /** Longest `stop()` waits for the snapshots to be saved. */
  readonly stopTimeoutMs: number;
}

export const defaultProcessTimings: ProcessTimings = {
  migrationTimeoutMs: 2_000,
  gapTimeoutMs: 5_000,
  persistDebounceMs: 1_000,
  stopTimeoutMs: 2_000,
};
