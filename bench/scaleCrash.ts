// `npm run scale --crash`: SIGKILL one node of an idle, converged cluster and
// time, for every survivor, its first PARTITION or DISCONNECT naming that
// node, both by the event's own `at` (the survivor's clock when it decided)
// and by when the observer received it. Survivors still silent at the
// timeout are named, not waited for.
import type { ChildProcess } from "node:child_process";
import { abortError, within } from "./context.js";
import { BenchError, BenchTimeoutError } from "./errors.js";
import type { ClusterEventLog } from "./scaleEvents.js";

export interface CrashOptions {
  /** Node id `i + 1` is `children[i]`. */
  readonly children: readonly ChildProcess[];
  readonly victim: number;
  readonly log: ClusterEventLog;
  readonly timeoutMs: number;
  readonly signal: AbortSignal;
}

/** One survivor's first report of the crash. */
export interface CrashReport {
  readonly survivor: number;
  readonly event: "PARTITION" | "DISCONNECT";
  readonly cause: string;
  /** Event `at` (the survivor's monotonic wall clock) − the kill, in ms: when it decided. */
  readonly atMs: number;
  /** Arrival at the observer − the kill, in ms: when the cluster could hear it. */
  readonly receivedMs: number;
}

export interface CrashResult {
  readonly victim: number;
  /** Nodes alive when the victim was killed. */
  readonly survivors: readonly number[];
  readonly timeoutMs: number;
  /** In the order they arrived. */
  readonly reports: readonly CrashReport[];
  /** Survivors with no report by the timeout, in node order. */
  readonly silent: readonly number[];
  /** Kill → the last report, or the timeout when someone stayed silent. */
  readonly waitedMs: number;
}

const EXIT_TIMEOUT_MS = 5_000;

export async function measureCrash(options: CrashOptions): Promise<CrashResult> {
  const { children, victim, log, signal } = options;
  const child = children[victim - 1];
  if (!child || child.exitCode !== null || child.signalCode !== null) {
    throw new BenchError(`node ${victim} is not running: nothing to crash`);
  }
  const survivors = children.flatMap((c, i) =>
    i + 1 !== victim && c.exitCode === null && c.signalCode === null ? [i + 1] : [],
  );
  const reports = new Map<number, CrashReport>();
  let killedAt = Number.NaN;
  let killedAtEpoch = Number.NaN;
  let allReported: () => void = () => {};
  const reported = new Promise<void>((resolve) => {
    allReported = resolve;
  });
  const stopListening = log.listen(({ event, receivedAt }) => {
    if (Number.isNaN(killedAt) || reports.has(event.node) || !survivors.includes(event.node)) return;
    if (event.event !== "PARTITION" && event.event !== "DISCONNECT") return;
    if (!event.changed.some((m) => m.node === victim)) return;
    reports.set(event.node, {
      survivor: event.node,
      event: event.event,
      cause: event.cause,
      atMs: event.at - killedAtEpoch,
      receivedMs: receivedAt - killedAt,
    });
    if (reports.size === survivors.length) allReported();
  });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  try {
    log.phase = "crash";
    // The nodes' `at` is performance.timeOrigin + performance.now() (transport/clock.ts monotonicClock).
    killedAt = performance.now();
    killedAtEpoch = performance.timeOrigin + killedAt;
    child.kill("SIGKILL");
    await within(signal, EXIT_TIMEOUT_MS, `exit of node ${victim} after SIGKILL`, exited);
    if (survivors.length === 0) allReported();
    try {
      await within(
        signal,
        options.timeoutMs,
        `PARTITION/DISCONNECT of node ${victim} from ${survivors.length} survivors`,
        reported,
      );
    } catch (error) {
      if (!(error instanceof BenchTimeoutError)) throw error;
    }
  } finally {
    stopListening();
  }
  if (signal.aborted) throw abortError(signal);
  return {
    victim,
    survivors,
    timeoutMs: options.timeoutMs,
    reports: [...reports.values()],
    silent: survivors.filter((n) => !reports.has(n)),
    waitedMs: performance.now() - killedAt,
  };
}
