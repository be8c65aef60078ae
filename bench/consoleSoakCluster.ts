// The cluster side of `npm run console-soak` (consoleSoak.ts): `dvsd up` as a
// child in a process group of its own, its output read for the node pids and
// the console's URL; the cluster's events counted on NATS; CPU and RSS of the
// processes involved, from /proc; and the waits every part shares.
import { type ChildProcess, spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import type { NatsTransport } from "../client/connection.js";
import { watchEvents } from "../client/events.js";
import type { Scope } from "./context.js";
import { BenchError } from "./errors.js";

/** The cluster's name (`dvsd up`'s default). */
export const CLUSTER = "dvs";
/** Every wait in the browser, and every request of the churn, ends by this. */
export const WAIT_MS = 20_000;
/** How long `dvsd up` may take to stop on SIGINT before its group is SIGKILLed (within Scope's 5 s per cleanup). */
const STOP_GRACE_MS = 4_000;

// ---- the cluster: `dvsd up` as a child ----

export interface ClusterUp {
  readonly natsUrl: string;
  readonly consoleUrl: string;
  /** Node id → pid, as `dvsd up` printed them; a killed node is removed. */
  readonly pids: Map<number, number>;
  readonly natsPid: number | undefined;
}

interface Cluster {
  readonly child: ChildProcess;
  readonly ready: Promise<ClusterUp>;
}

export function startCluster(
  scope: Scope,
  dvsdJs: string,
  o: { nodes: number; natsPort: number; consolePort: number; dataDir: string; readyMs: number },
): Cluster {
  const args = [
    dvsdJs,
    "up",
    ...["--nodes", String(o.nodes)],
    ...["--port", String(o.natsPort)],
    ...["--console-port", String(o.consolePort)],
    ...["--data", o.dataDir],
    ...["--log-level", "warn"],
    ...["--ready-timeout", String(o.readyMs)],
    // No Prometheus ports: nothing here scrapes them, and 16 fixed ports could be taken.
    ...["--metrics-port", "0"],
  ];
  // A process group of its own: the last resort kills the launcher and every
  // process it started (nodes, nats-server, console) at once, and a Ctrl-C in
  // the terminal reaches only the bench, which stops the cluster in order.
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"], detached: true });
  const pid = child.pid;
  const killGroup = () => {
    if (pid === undefined) return;
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  };
  scope.lastResort.add(killGroup);
  const tail: string[] = [];
  const keep = (line: string) => {
    tail.push(line);
    if (tail.length > 30) tail.shift();
  };
  const pids = new Map<number, number>();
  let natsUrl: string | undefined;
  let consoleUrl: string | undefined;
  let natsPid: number | undefined;
  const ready = new Promise<ClusterUp>((resolve, reject) => {
    let buffered = "";
    child.stdout?.setEncoding("utf8");
    child.stdout?.on("data", (chunk: string) => {
      buffered += chunk;
      for (let nl = buffered.indexOf("\n"); nl >= 0; nl = buffered.indexOf("\n")) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        keep(line);
        const node = /^node (\d+): pid (\d+),/.exec(line);
        if (node) pids.set(Number(node[1]), Number(node[2]));
        const nats = /^started nats-server \(pid (\d+)\)/.exec(line);
        if (nats) natsPid = Number(nats[1]);
        const console_ = /^console: (http:\/\/\S+)/.exec(line);
        if (console_) consoleUrl = console_[1];
        if (/^the console did not start/.test(line)) reject(new BenchError(`dvsd up: ${line}`));
        const isUp = /^cluster "[^"]+" is up at (\S+);/.exec(line);
        if (isUp) {
          natsUrl = isUp[1];
          if (consoleUrl === undefined) reject(new BenchError("dvsd up did not print a console URL"));
          else if (pids.size < o.nodes)
            reject(new BenchError(`dvsd up printed ${pids.size} node pids, not ${o.nodes}`));
          else resolve({ natsUrl: natsUrl as string, consoleUrl, pids, natsPid });
        }
      }
    });
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (chunk: string) => {
      for (const line of chunk.split("\n")) if (line) keep(`stderr: ${line}`);
    });
    child.once("exit", (code, sig) =>
      reject(
        new BenchError(
          `dvsd up exited (${sig ?? `code ${code}`}) before the cluster was up; its last lines:\n  ${tail.join("\n  ")}`,
        ),
      ),
    );
  });
  ready.catch(() => {});
  scope.defer(`stop dvsd up (pid ${pid})`, async () => {
    // Ctrl-C, as an operator stops it: nodes, console and nats-server in order.
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      child.kill("SIGINT");
      await Promise.race([exited, delay(STOP_GRACE_MS)]);
    }
    // Whatever of its group is left: all of it if it did not stop in time, else a node it did not wait for.
    killGroup();
    scope.lastResort.delete(killGroup);
  });
  return { child, ready };
}

/** The console's RSS in MiB (the `dvsd console` child of the launcher), from /proc; undefined when it cannot tell. */
export function consoleProcessRss(launcherPid: number | undefined): number | undefined {
  if (launcherPid === undefined) return undefined;
  for (const pid of descendants(launcherPid)) {
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").includes("console")) continue;
      const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      return rss ? Number(rss[1]) / 1024 : undefined;
    } catch {
      // Gone between the listing and the read.
    }
  }
  return undefined;
}

/** The pids under `pid` (children, theirs, …), from /proc; empty when it cannot tell. */
function descendants(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${task}/children`, "utf8").trim();
      for (const child of text ? text.split(/\s+/).map(Number) : []) out.push(child, ...descendants(child));
    }
  } catch {
    // Not Linux, or it is gone.
  }
  return out;
}

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ: 100 on Linux). */
const TICKS_PER_S = 100;

/** User + system CPU of the chromium renderers this process started (the page's process), in ms. */
export function rendererCpuMs(): number {
  let ticks = 0;
  let found = false;
  for (const pid of descendants(process.pid)) {
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("--type=renderer")) continue;
      // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(fields[11]) + Number(fields[12]);
      found = true;
    } catch {
      // Gone between the listing and the read.
    }
  }
  return found ? (ticks / TICKS_PER_S) * 1000 : Number.NaN;
}

export async function closeTransport(transport: NatsTransport): Promise<void> {
  await Promise.race([transport.close(), delay(2_500)]).catch(() => {});
  if (!transport.connection.isClosed()) await transport.connection.close().catch(() => {});
}

// ---- events on NATS: counted, and the first PARTITION of a node ----

export class EventCounter {
  published = 0;
  readonly byName = new Map<string, number>();
  #waiter: { node: number; resolve: (at: number) => void } | undefined;

  constructor(transport: NatsTransport) {
    watchEvents(
      transport,
      CLUSTER,
      (event) => {
        const at = Date.now();
        this.published++;
        this.byName.set(event.event, (this.byName.get(event.event) ?? 0) + 1);
        const w = this.#waiter;
        if (
          w &&
          event.event === "PARTITION" &&
          "changed" in event &&
          event.changed.some((m) => m.node === w.node)
        ) {
          this.#waiter = undefined;
          w.resolve(at);
        }
      },
      () => {},
    );
  }

  reset(): void {
    this.published = 0;
    this.byName.clear();
  }

  /** Resolves with Date.now() when the first PARTITION naming `node` arrives from now on. */
  firstPartition(node: number): Promise<number> {
    return new Promise((resolve) => {
      this.#waiter = { node, resolve };
    });
  }
}

// ---- shared ----

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export const describe = (error: unknown) =>
  error instanceof Error ? `${error.name}: ${error.message}` : String(error);
