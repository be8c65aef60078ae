// Runs the script configured for each membership event (JOIN, DISCONNECT,
// PARTITION, MERGE), one at a time and in order, so that membership only ever
// enqueues and never waits: a slow, hung or missing script is timed out,
// killed or reported, and the queue moves on. A script sees a clean
// environment (PATH, LANG and its DVS_* variables), never the daemon's.
import { type ChildProcess, spawn } from "node:child_process";
import { z } from "zod";
import type { Logger } from "../actors/logger.js";
import { describeIssues, type MembershipEventName } from "../protocol/messages.js";
import type { Clock, TimerHandle } from "../transport/clock.js";
import { CappedOutput, signalGroup } from "./childProcess.js";
import { ConfigError } from "./errors.js";
import { childEnvironment } from "./host/childEnvironment.js";

/** A program and its arguments; the first element is the program. Never run through a shell. */
const argvSchema = z.tuple([z.string().min(1)], z.string());

export const scriptsConfigSchema = z.strictObject({
  JOIN: argvSchema.optional(),
  DISCONNECT: argvSchema.optional(),
  PARTITION: argvSchema.optional(),
  MERGE: argvSchema.optional(),
  /** A run longer than this is sent SIGTERM, then SIGKILL. */
  timeoutMs: z.number().int().min(100).max(600_000).default(10_000),
  /** stdout and stderr are each kept up to this many bytes; the rest is counted, not kept. */
  maxOutputBytes: z
    .number()
    .int()
    .min(0)
    .max(16 * 1024 * 1024)
    .default(65_536),
  /** Events waiting to run; beyond this a new event is dropped. */
  maxQueue: z.number().int().min(1).max(1_000_000).default(1_000),
});

export type ScriptsConfig = z.output<typeof scriptsConfigSchema>;
export type ScriptsConfigInput = z.input<typeof scriptsConfigSchema>;

/** What a script is told about one view change (also its stdin, as one JSON line). */
export interface ScriptEvent {
  readonly v: 1;
  /** The observing node, the one running the script. */
  readonly node: number;
  readonly incarnation: number;
  readonly event: MembershipEventName;
  readonly view: { readonly id: number; readonly members: readonly number[] };
  readonly changed: readonly { readonly node: number; readonly incarnation: number }[];
  readonly cause: string;
  readonly at: number;
}

/** How a run ended; `failed` is a non-zero exit or a signal not sent by the runner. */
export type ScriptOutcome = "ok" | "failed" | "timedOut" | "spawnFailed" | "stopped";

export interface ScriptResult {
  readonly event: ScriptEvent;
  readonly argv: readonly string[];
  readonly outcome: ScriptOutcome;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly timedOut: boolean;
  readonly durationMs: number;
  readonly stdout: string;
  readonly stderr: string;
  /** stdout or stderr went past maxOutputBytes; only the first bytes are kept. */
  readonly truncated: boolean;
  readonly error?: ScriptSpawnError;
}

export interface ScriptStats {
  /** Runs finished, whatever their outcome. */
  ran: number;
  /** Runs that did not exit 0 (timed out and spawn failures included). */
  failed: number;
  timedOut: number;
  /** Events dropped because the queue was full. */
  dropped: number;
  /** Events whose type has no script configured. */
  skipped: number;
}

export type EnqueueOutcome = "queued" | "skipped" | "dropped" | "stopped";

export interface ScriptRunnerOptions {
  readonly logger: Logger;
  readonly clock: Clock;
  /** Called after every run, in order; an exception is logged and ignored. */
  readonly onRun?: (result: ScriptResult) => void;
  /** Between SIGTERM and SIGKILL; default 2 s. */
  readonly killGraceMs?: number;
}

/** The program could not be started (missing, not executable, ...). `code` is the errno name. */
export class ScriptSpawnError extends Error {
  override name = "ScriptSpawnError";
  readonly code: string | undefined;
  constructor(
    readonly argv: readonly string[],
    options?: ErrorOptions,
  ) {
    const cause = options?.cause as NodeJS.ErrnoException | undefined;
    super(`cannot start ${argv[0]}: ${cause?.message ?? "unknown error"}`, options);
    this.code = cause?.code;
  }
}

/** `drain` gave up with events still queued or running. */
export class ScriptQueueTimeoutError extends Error {
  override name = "ScriptQueueTimeoutError";
  constructor(
    readonly timeoutMs: number,
    readonly pending: number,
    readonly running: boolean,
  ) {
    super(`script queue not drained after ${timeoutMs} ms (${pending} pending, running: ${running})`);
  }
}

/** After the script's process exits, how long its stdout/stderr may stay open (held by a child it left behind). */
const STDIO_GRACE_MS = 1_000;
/** Between two "queue full" error lines; the line carries the total dropped. */
const DROP_LOG_INTERVAL_MS = 10_000;

interface Running {
  readonly done: Promise<ScriptResult>;
  /** SIGTERM to the script's process group, SIGKILL after the grace. */
  terminate(reason: "timeout" | "stop"): void;
}

export class ScriptRunner {
  readonly stats: ScriptStats = { ran: 0, failed: 0, timedOut: 0, dropped: 0, skipped: 0 };
  private readonly config: ScriptsConfig;
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly onRun: ((result: ScriptResult) => void) | undefined;
  private readonly killGraceMs: number;
  private readonly queue: ScriptEvent[] = [];
  private current: Running | undefined;
  private pumping = false;
  private stopped = false;
  private lastDropLogAt = Number.NEGATIVE_INFINITY;
  private readonly idleWaiters = new Set<() => void>();

  constructor(config: ScriptsConfigInput, options: ScriptRunnerOptions) {
    const parsed = scriptsConfigSchema.safeParse(config);
    if (!parsed.success) {
      throw new ConfigError(
        "invalid scripts config",
        describeIssues(parsed.error).map((i) => ({ ...i, path: `scripts.${i.path}` })),
      );
    }
    this.config = parsed.data;
    this.logger = options.logger;
    this.clock = options.clock;
    this.onRun = options.onRun;
    this.killGraceMs = options.killGraceMs ?? 2_000;
  }

  /** Events waiting to run (not counting the one running). */
  get pending(): number {
    return this.queue.length;
  }

  /** Queues the event and returns at once; the script starts after the caller's synchronous code. */
  enqueue(event: ScriptEvent): EnqueueOutcome {
    if (this.stopped) return "stopped";
    if (this.config[event.event] === undefined) {
      this.stats.skipped++;
      this.logger.debug({ event: event.event, viewId: event.view.id }, "no script configured for event");
      return "skipped";
    }
    if (this.queue.length >= this.config.maxQueue) {
      this.stats.dropped++;
      const now = this.clock.now();
      if (now - this.lastDropLogAt >= DROP_LOG_INTERVAL_MS) {
        this.lastDropLogAt = now;
        this.logger.error(
          {
            event: event.event,
            viewId: event.view.id,
            dropped: this.stats.dropped,
            maxQueue: this.config.maxQueue,
          },
          "script queue full; membership event dropped",
        );
      }
      return "dropped";
    }
    this.queue.push(event);
    if (!this.pumping) {
      this.pumping = true;
      queueMicrotask(() => void this.pump());
    }
    return "queued";
  }

  /** Resolves once nothing is queued or running; rejects with ScriptQueueTimeoutError after `timeoutMs`. */
  drain(timeoutMs: number): Promise<void> {
    if (this.idle()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onIdle = () => {
        this.clock.clearTimeout(timer);
        resolve();
      };
      const timer = this.clock.setTimeout(() => {
        this.idleWaiters.delete(onIdle);
        reject(new ScriptQueueTimeoutError(timeoutMs, this.queue.length, this.current !== undefined));
      }, timeoutMs);
      this.idleWaiters.add(onIdle);
    });
  }

  /** Drops the queued events and kills the running script; resolves once it has exited. Later events are refused. */
  async stop(): Promise<void> {
    this.stopped = true;
    const discarded = this.queue.length;
    this.queue.length = 0;
    if (discarded > 0) this.logger.warn({ discarded }, "script runner stopped; queued events discarded");
    const running = this.current;
    if (running) {
      running.terminate("stop");
      await running.done;
    }
    if (this.idle()) this.notifyIdle();
  }

  private idle(): boolean {
    return this.queue.length === 0 && this.current === undefined;
  }

  private notifyIdle(): void {
    for (const waiter of this.idleWaiters) waiter();
    this.idleWaiters.clear();
  }

  private async pump(): Promise<void> {
    try {
      for (let event = this.queue.shift(); event !== undefined; event = this.queue.shift()) {
        const argv = this.config[event.event];
        if (argv === undefined) continue;
        this.current = this.run(event, argv);
        const result = await this.current.done;
        this.current = undefined;
        this.report(result);
        if (this.stopped) break;
      }
    } finally {
      this.current = undefined;
      this.pumping = false;
      if (this.idle()) this.notifyIdle();
    }
  }

  private run(event: ScriptEvent, argv: readonly [string, ...string[]]): Running {
    const startedAt = this.clock.now();
    const stdout = new CappedOutput(this.config.maxOutputBytes);
    const stderr = new CappedOutput(this.config.maxOutputBytes);
    let child: ChildProcess;
    let endedBy: "timeout" | "stop" | undefined;
    let timeoutTimer: TimerHandle | undefined;
    let killTimer: TimerHandle | undefined;
    let stdioTimer: TimerHandle | undefined;

    const finish = (code: number | null, signal: NodeJS.Signals | null, error?: ScriptSpawnError) => {
      this.clock.clearTimeout(timeoutTimer);
      this.clock.clearTimeout(killTimer);
      this.clock.clearTimeout(stdioTimer);
      const outcome: ScriptOutcome = error
        ? "spawnFailed"
        : endedBy === "timeout"
          ? "timedOut"
          : endedBy === "stop"
            ? "stopped"
            : code === 0
              ? "ok"
              : "failed";
      return {
        event,
        argv,
        outcome,
        code,
        signal,
        timedOut: endedBy === "timeout",
        durationMs: this.clock.now() - startedAt,
        stdout: stdout.text(),
        stderr: stderr.text(),
        truncated: stdout.truncated || stderr.truncated,
        ...(error ? { error } : {}),
      } satisfies ScriptResult;
    };

    try {
      child = spawn(argv[0], argv.slice(1), {
        shell: false,
        // Its own process group, so a timeout also kills what a shell script started.
        detached: true,
        stdio: ["pipe", "pipe", "pipe"],
        // Nothing of the daemon's environment (DVS_NATS_PASS and the like): PATH, LANG and the event.
        env: childEnvironment(scriptEnvironment(event)),
      });
    } catch (cause) {
      const result = finish(null, null, new ScriptSpawnError(argv, { cause }));
      return { done: Promise.resolve(result), terminate() {} };
    }

    const done = new Promise<ScriptResult>((resolve) => {
      let settled = false;
      const settle = (code: number | null, signal: NodeJS.Signals | null, error?: ScriptSpawnError) => {
        if (settled) return;
        settled = true;
        resolve(finish(code, signal, error));
      };
      child.on("error", (cause) => {
        if (child.pid === undefined) settle(null, null, new ScriptSpawnError(argv, { cause }));
        else this.logger.warn({ err: cause, argv }, "membership script process error");
      });
      child.on("exit", (code, signal) => {
        if (settled) return;
        // A background child of the script may hold stdout open; do not wait for it for long.
        stdioTimer = this.clock.setTimeout(() => {
          child.stdout?.destroy();
          child.stderr?.destroy();
          settle(code, signal);
        }, STDIO_GRACE_MS);
      });
      child.on("close", (code, signal) => settle(code, signal));
    });

    child.stdout?.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stderr?.on("data", (chunk: Buffer) => stderr.push(chunk));
    // A script that exits without reading stdin makes this write fail with EPIPE; that is its choice.
    child.stdin?.on("error", () => {});
    child.stdin?.end(`${JSON.stringify(event)}\n`);

    const terminate = (reason: "timeout" | "stop") => {
      if (endedBy !== undefined) return;
      endedBy = reason;
      signalGroup(child, "SIGTERM");
      killTimer = this.clock.setTimeout(() => signalGroup(child, "SIGKILL"), this.killGraceMs);
    };
    timeoutTimer = this.clock.setTimeout(() => terminate("timeout"), this.config.timeoutMs);
    return { done, terminate };
  }

  private report(result: ScriptResult): void {
    this.stats.ran++;
    if (result.outcome !== "ok") this.stats.failed++;
    if (result.timedOut) this.stats.timedOut++;
    const fields = {
      event: result.event.event,
      viewId: result.event.view.id,
      argv: result.argv,
      outcome: result.outcome,
      code: result.code,
      signal: result.signal,
      timedOut: result.timedOut,
      durationMs: result.durationMs,
      stdout: result.stdout,
      stderr: result.stderr,
      truncated: result.truncated,
      ...(result.error ? { err: result.error } : {}),
    };
    if (result.outcome === "ok") this.logger.info(fields, "membership script ran");
    else this.logger.warn(fields, `membership script ${result.outcome}`);
    try {
      this.onRun?.(result);
    } catch (error) {
      this.logger.error({ err: error }, "script result listener threw");
    }
  }
}

/** The DVS_* variables a script sees, on top of childEnvironment's PATH and LANG. */
export function scriptEnvironment(event: ScriptEvent): Record<string, string> {
  return {
    DVS_EVENT: event.event,
    DVS_NODE: String(event.node),
    DVS_INCARNATION: String(event.incarnation),
    DVS_VIEW_ID: String(event.view.id),
    DVS_MEMBERS: event.view.members.join(","),
    DVS_CHANGED: event.changed.map((m) => `${m.node}:${m.incarnation}`).join(","),
  };
}
