// The context a row runs in, and the scope that owns what it starts: every
// connection, server, process and temp dir is registered for cleanup when it
// is created, and every cleanup has its own time limit so that a stuck close
// cannot hang the run.
import { type ChildProcess, type SpawnOptions, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { DEV_USERS } from "../client/credentials.js";
import { type NatsServer, startNatsServer } from "../daemon/natsServer.js";
import { DVSD_NODE_FLAGS } from "../daemon/nodeFlags.js";
import { connectNats } from "../transport/nats.js";
import { BenchAbortedError, BenchTimeoutError } from "./errors.js";
import type { BenchContext, StartNatsServerOptions } from "./row.js";

const CLEANUP_TIMEOUT_MS = 5_000;
const CONNECT_TIMEOUT_MS = 5_000;
const SERVER_READY_TIMEOUT_MS = 10_000;

/**
 * Synchronous last-resort cleanups (SIGKILL a process, remove a directory) for
 * when the process exits before the scopes could close: a second Ctrl-C, or a
 * crash. Shared by every scope of a run; run newest first.
 */
export type LastResort = Set<() => void>;

export function runLastResort(lastResort: LastResort): void {
  for (const cleanup of [...lastResort].reverse()) {
    try {
      cleanup();
    } catch {
      // The process is exiting; there is no one left to tell.
    }
  }
  lastResort.clear();
}

/** Owns resources; `close()` releases them newest first and reports what failed instead of throwing. */
export class Scope {
  readonly #cleanups: { what: string; run: () => unknown }[] = [];

  constructor(readonly lastResort: LastResort) {}

  defer(what: string, run: () => unknown): void {
    this.#cleanups.push({ what, run });
  }

  track(child: ChildProcess, what: string): void {
    const kill = () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    };
    this.lastResort.add(kill);
    child.once("exit", () => this.lastResort.delete(kill));
    this.defer(what, () => {
      kill();
      this.lastResort.delete(kill);
    });
  }

  tempDir(prefix: string): string {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    const remove = () => rmSync(dir, { recursive: true, force: true });
    this.lastResort.add(remove);
    this.defer(`remove ${dir}`, () => {
      this.lastResort.delete(remove);
      remove();
    });
    return dir;
  }

  async startNatsServer(natsConf: string, options: StartNatsServerOptions = {}): Promise<NatsServer> {
    const storeDir = this.tempDir("dvs-bench-nats-");
    const server = await startNatsServer({
      config: options.config ?? natsConf,
      port: 0,
      storeDir,
      readyTimeoutMs: SERVER_READY_TIMEOUT_MS,
      ...(options.extraArgs ? { extraArgs: options.extraArgs } : {}),
    });
    this.track(server.process, `kill nats-server ${server.pid}`);
    this.defer(`stop nats-server ${server.pid}`, () => server.stop(2_000));
    return server;
  }

  async close(): Promise<Error[]> {
    const failures: Error[] = [];
    for (let c = this.#cleanups.pop(); c !== undefined; c = this.#cleanups.pop()) {
      try {
        await limit(CLEANUP_TIMEOUT_MS, c.what, Promise.resolve().then(c.run));
      } catch (error) {
        failures.push(error instanceof Error ? error : new Error(String(error)));
      }
    }
    return failures;
  }
}

export interface ContextOptions {
  readonly url: string;
  readonly quick: boolean;
  readonly signal: AbortSignal;
  readonly repoRoot: string;
  readonly natsConf: string;
  /** DVSD_NODE_FLAGS when absent. */
  readonly nodeFlags?: readonly string[];
  readonly scope: Scope;
  readonly progress: (message: string) => void;
}

export function createContext(options: ContextOptions): BenchContext {
  const { scope, signal } = options;
  return {
    url: options.url,
    quick: options.quick,
    signal,
    repoRoot: options.repoRoot,
    natsConf: options.natsConf,
    nodeFlags: options.nodeFlags ?? DVSD_NODE_FLAGS,
    async connect(name, url = options.url) {
      const transport = await connectNats({
        servers: [url],
        name,
        connectTimeoutMs: CONNECT_TIMEOUT_MS,
        ...DEV_USERS.admin,
      });
      scope.defer(`close transport ${name}`, async () => {
        // Draining is polite but may wait on a busy subscription; a bench only needs the socket gone.
        await limit(CLEANUP_TIMEOUT_MS / 2, `drain ${name}`, transport.close()).catch(() =>
          transport.connection.close(),
        );
      });
      return transport;
    },
    async connectRaw(name, url = options.url) {
      const nc = await connect({
        servers: url,
        name,
        timeout: CONNECT_TIMEOUT_MS,
        maxReconnectAttempts: 0,
        ...DEV_USERS.admin,
      });
      scope.defer(`close connection ${name}`, () => (nc.isClosed() ? undefined : nc.close()));
      return nc;
    },
    startNatsServer: (serverOptions) => scope.startNatsServer(options.natsConf, serverOptions),
    spawn(command, args, spawnOptions: SpawnOptions = {}) {
      const child = spawn(command, args, { stdio: "ignore", ...spawnOptions });
      scope.track(child, `kill ${command} ${child.pid ?? "?"}`);
      return child;
    },
    tempDir: (prefix) => scope.tempDir(prefix),
    defer: (cleanup) => scope.defer("row cleanup", cleanup),
    within: (timeoutMs, what, promise) => within(signal, timeoutMs, what, promise),
    progress: options.progress,
  };
}

/** `promise`, or a BenchTimeoutError after `timeoutMs`, or the abort reason as soon as `signal` fires. */
export function within<T>(
  signal: AbortSignal,
  timeoutMs: number,
  what: string,
  promise: Promise<T>,
): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => {});
    return Promise.reject(abortError(signal));
  }
  return new Promise<T>((resolve, reject) => {
    const settle = (fn: () => void) => {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      fn();
    };
    const onAbort = () => settle(() => reject(abortError(signal)));
    const timer = setTimeout(() => settle(() => reject(new BenchTimeoutError(what, timeoutMs))), timeoutMs);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => settle(() => resolve(value)),
      (error: unknown) => settle(() => reject(error)),
    );
  });
}

function limit<T>(timeoutMs: number, what: string, promise: Promise<T>): Promise<T> {
  return within(new AbortController().signal, timeoutMs, what, promise);
}

export function abortError(signal: AbortSignal): BenchAbortedError {
  const reason: unknown = signal.reason;
  if (reason instanceof BenchAbortedError) return reason;
  const text = reason instanceof Error ? reason.message : String(reason ?? "aborted");
  return new BenchAbortedError(text, { cause: reason });
}

/**
 * SIGINT and SIGTERM abort the returned signal (a command then stops and cleans
 * up); a second one exits at once with 130, the `exit` hook still killing every
 * child. `dispose` takes the handlers off again.
 */
export function abortOnSignals(tag: string): { readonly signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (++interrupts > 1) process.exit(130);
    process.stderr.write(`[${tag}] ${signal}: stopping and cleaning up (again to force)\n`);
    controller.abort(new BenchAbortedError(signal));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  return {
    signal: controller.signal,
    dispose() {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    },
  };
}

/** Sleeps `ms`, or rejects with the abort reason when `signal` fires. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(abortError(signal));
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
