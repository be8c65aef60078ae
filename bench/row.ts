// What a benchmark row is: a small module with a name and a `run(ctx)` that
// returns named measurements and ratios. The harness owns the servers,
// connections and processes a row starts through its context, and judges the
// ratios against their targets.
import type { ChildProcess, SpawnOptions } from "node:child_process";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServer } from "../daemon/natsServer.js";
import type { NatsTransport } from "../transport/nats.js";

export interface Measurement {
  readonly name: string;
  readonly value: number;
  /** "us", "ms", "req/s", "requests", … */
  readonly unit: string;
}

/** A ratio is judged PASS when `value op target` holds, MISS otherwise (NaN always misses). */
export interface Target {
  readonly op: "<=" | ">=";
  readonly value: number;
}

export interface Ratio {
  readonly name: string;
  readonly value: number;
  /** Where the number comes from, e.g. "ours.p50 / raw.p50". */
  readonly of: string;
  readonly target?: Target;
}

export interface RowResult {
  readonly measurements: readonly Measurement[];
  readonly ratios: readonly Ratio[];
  /** One-line facts about how the row ran (sample sizes, blocks, in-flight count). */
  readonly notes?: readonly string[];
}

export interface BenchRow {
  /** Short, kebab-case, stable: used by `--row` and as the key in the JSON results. */
  readonly name: string;
  readonly title: string;
  run(ctx: BenchContext): Promise<RowResult>;
}

export interface StartNatsServerOptions {
  readonly config?: string;
  readonly extraArgs?: readonly string[];
}

/**
 * Everything a row may use. Whatever a row starts through it is closed, stopped
 * or killed when the row ends, whether it returned, threw or was interrupted.
 */
export interface BenchContext {
  /** URL of the run's nats-server: loopback, free port, its own temporary store. */
  readonly url: string;
  /** A short smoke run: rows should shrink their sample sizes, not skip work. */
  readonly quick: boolean;
  /** Aborted on SIGINT/SIGTERM; long loops should check it. */
  readonly signal: AbortSignal;
  readonly repoRoot: string;
  /** nats.conf at the repository root. */
  readonly natsConf: string;
  /** The V8 flags of the node processes a row starts (`dvsd run`, the echo responder): DVSD_NODE_FLAGS unless `--node-flags`. */
  readonly nodeFlags: readonly string[];
  /** A dvsd Transport on `url` (or the given server). */
  connect(name: string, url?: string): Promise<NatsTransport>;
  /** A bare nats.js connection, for baselines that must not go through our code. */
  connectRaw(name: string, url?: string): Promise<NatsConnection>;
  /** Another nats-server on a free port with its own temporary store. */
  startNatsServer(options?: StartNatsServerOptions): Promise<NatsServer>;
  /** A child process (e.g. a dvsd node); SIGKILLed if still alive when the row ends. */
  spawn(command: string, args: readonly string[], options?: SpawnOptions): ChildProcess;
  /** A fresh temporary directory, removed when the row ends. */
  tempDir(prefix: string): string;
  /** Runs `cleanup` when the row ends; the last registered runs first. */
  defer(cleanup: () => unknown): void;
  /** `promise`, or a BenchTimeoutError after `timeoutMs`, or a BenchAbortedError on interrupt. */
  within<T>(timeoutMs: number, what: string, promise: Promise<T>): Promise<T>;
  /** A progress line on stderr (never on stdout, which carries the table or the JSON). */
  progress(message: string): void;
}
