// One size of the process half of `npm run scale`: a nats-server of its own
// (monitoring on loopback) and N real `dvsd run` processes with default
// settings, timed from the last spawn until every node answers the status
// subject with one view of all N; then an idle spell (each node's CPU from
// /proc, the messages nats-server received and delivered from its /varz, the
// membership events nobody should have sent), each process's resident set
// from /proc against the SPEC's 80 MB, and optionally a SIGKILL of one node
// timed at every survivor (scaleCrash.ts).
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { agreeOnView, collectStatus } from "../client/clusterStatus.js";
import { DEV_USERS } from "../client/credentials.js";
import { devNodeCredentials } from "../daemon/credentials.js";
import { devServerConfig, renderNatsConfig } from "../daemon/natsAccounts.js";
import { dvsdRunArgs } from "../daemon/nodeFlags.js";
import type { NodeStatus } from "../protocol/messages.js";
import { connectNats } from "../transport/nats.js";
import { abortError, type Scope, within } from "./context.js";
import { BenchError } from "./errors.js";
import { readVarz, startMonitoredNatsServer, type VarzRates, varzRates } from "./natsMonitor.js";
import { type CrashResult, measureCrash } from "./scaleCrash.js";
import { ClusterEventLog, FALSE_IN_IDLE, type Phase } from "./scaleEvents.js";
import { summarize } from "./stats.js";

export interface ProcessScaleOptions {
  readonly processes: number;
  readonly idleMs: number;
  readonly convergeTimeoutMs: number;
  /** After the idle spell, SIGKILL the last node and wait up to `timeoutMs` for every survivor's report. */
  readonly crash?: { readonly timeoutMs: number };
  readonly repoRoot: string;
  readonly scope: Scope;
  readonly signal: AbortSignal;
  readonly progress: (message: string) => void;
}

/** Resident set sizes in MiB (VmRSS, and the peak VmHWM), read from /proc. */
export interface Rss {
  readonly rssMiB: number;
  readonly peakMiB: number;
}

export interface ProcessScaleResult {
  readonly processes: number;
  /** First spawn → last spawn. */
  readonly spawnMs: number;
  /** Last spawn → every node answers the status request (in whatever view): start-up done. */
  readonly allAnsweredMs: number;
  /** Last spawn → every node answers with one view of all of them. */
  readonly convergedMs: number;
  /** Status polls it took. */
  readonly polls: number;
  readonly idleMs: number;
  /** Per node, in node order: CPU time (user + system) used during the idle spell, ms per s. */
  readonly idleCpuMsPerS: readonly number[];
  /** Per node, in node order, after the idle spell. */
  readonly nodeRss: readonly Rss[];
  readonly natsServerRss: Rss;
  /** What nats-server received and delivered during the idle spell (/varz deltas). */
  readonly nats: VarzRates;
  /** PARTITION, DISCONNECT and MERGE announced during the idle spell: false, nobody was killed. */
  readonly falseEvents: number;
  readonly crash?: CrashResult;
  /** SIGTERM → all exited. */
  readonly stopMs: number;
  /** Membership events on dvs.<c>.events.* by phase of the run and "NAME (cause)". */
  readonly events: Record<Phase, Record<string, number>>;
  /** Nodes that did not exit 0 after SIGTERM (exit code or signal), or needed a SIGKILL. */
  readonly unclean: readonly string[];
}

const CLUSTER = "scale";
const STOP_GRACE_MS = 15_000;

export async function runProcessScale(options: ProcessScaleOptions): Promise<ProcessScaleResult> {
  const { scope, signal, progress } = options;
  // The development accounts for this cluster and as many nodes as it runs (nats.conf has 16, of cluster dvs).
  const natsConf = join(scope.tempDir("dvs-scale-conf-"), "nats.conf");
  writeFileSync(natsConf, renderNatsConfig(devServerConfig(options.processes, CLUSTER)));
  const { server, monitorUrl } = await startMonitoredNatsServer(scope, natsConf);
  progress(`nats-server ${server.pid} on ${server.url}, monitoring on ${monitorUrl}`);
  const dir = scope.tempDir("dvs-scale-");
  const transport = await connectNats({
    servers: [server.url],
    name: "dvs-scale-observer",
    connectTimeoutMs: 5_000,
    ...DEV_USERS.admin,
  });
  scope.defer("close the observer", () =>
    within(new AbortController().signal, 2_500, "drain the observer", transport.close()).catch(() =>
      transport.connection.close(),
    ),
  );
  const log = new ClusterEventLog(transport, CLUSTER);
  await within(signal, 5_000, "observer flush", transport.flush());

  const ids = Array.from({ length: options.processes }, (_, i) => i + 1);
  const dvsd = join(options.repoRoot, "dist/bin/dvsd.js");
  const children: ChildProcess[] = [];
  // Registered before the first spawn, so a failure half-way still stops what was started.
  scope.defer(`stop ${options.processes} dvsd processes`, () => stopAll(children, STOP_GRACE_MS));
  const firstSpawn = performance.now();
  for (const node of ids) {
    const out = openSync(join(dir, `node-${node}.log`), "a");
    const child = spawn(
      process.execPath,
      dvsdRunArgs({ bin: dvsd, node, cluster: CLUSTER, nats: server.url }),
      {
        cwd: dir,
        // Default settings; each node's state dir defaults to ./data/node-<id> under `cwd`.
        stdio: ["ignore", out, out],
        env: {
          ...process.env,
          // Should this run die without cleaning up, the daemons stop by themselves.
          DVS_PARENT_PID: String(process.pid),
          // Each node as itself.
          DVS_NATS_USER: devNodeCredentials(node).user,
          DVS_NATS_PASS: devNodeCredentials(node).pass,
        },
      },
    );
    closeSync(out);
    scope.track(child, `kill dvsd node ${node}`);
    children.push(child);
  }
  const lastSpawn = performance.now();
  progress(`spawned ${ids.length} dvsd processes in ${Math.round(lastSpawn - firstSpawn)} ms`);

  const exitedEarly = () => {
    const i = children.findIndex((c) => c.exitCode !== null || c.signalCode !== null);
    return i < 0 ? undefined : i + 1;
  };
  let polls = 0;
  let last: NodeStatus[] = [];
  let allAnsweredMs = Number.NaN;
  const converge = async (): Promise<number> => {
    for (;;) {
      if (signal.aborted) throw abortError(signal);
      const dead = exitedEarly();
      if (dead !== undefined) {
        throw new BenchError(`node ${dead} exited before the cluster converged; see ${dir}/node-${dead}.log`);
      }
      polls++;
      last = (await collectStatus(transport, { cluster: CLUSTER, timeoutMs: 1_000 })).nodes;
      const at = performance.now() - lastSpawn;
      if (Number.isNaN(allAnsweredMs) && last.length === ids.length) allAnsweredMs = at;
      if (agreeOnView(last, ids)) return at;
      if (polls % 20 === 0) progress(`${last.length}/${ids.length} nodes answer; ${describeViews(last)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  let convergedMs: number;
  try {
    convergedMs = await within(
      signal,
      options.convergeTimeoutMs,
      `one view of ${ids.length} nodes`,
      converge(),
    );
  } catch (error) {
    if (error instanceof Error && error.name === "BenchTimeoutError") {
      error.message += `; last: ${last.length} answered, ${describeViews(last)}`;
    }
    throw error;
  }
  log.phase = "idle";
  progress(
    `one view of ${ids.length} after ${Math.round(convergedMs)} ms (${polls} status polls); idle for ${options.idleMs / 1000} s`,
  );

  // Nothing of ours talks to the server during the spell: what /varz counts is the nodes' own traffic.
  const varzBefore = await readVarz(monitorUrl);
  const cpuBefore = children.map((c, i) => readCpuSeconds(c.pid, `node ${i + 1}`));
  const idleStart = performance.now();
  await within(
    signal,
    options.idleMs + 5_000,
    "the idle spell",
    new Promise((r) => setTimeout(r, options.idleMs)),
  );
  const idleSeconds = (performance.now() - idleStart) / 1000;
  const idleCpuMsPerS = children.map(
    (c, i) => ((readCpuSeconds(c.pid, `node ${i + 1}`) - (cpuBefore[i] ?? 0)) * 1000) / idleSeconds,
  );
  const nats = varzRates(varzBefore, await readVarz(monitorUrl));
  const falseEvents = log.count("idle", FALSE_IN_IDLE);
  const nodeRss = children.map((c, i) => readRss(c.pid, `node ${i + 1}`));
  const natsServerRss = readRss(server.pid, "nats-server");
  progress(
    `idle: median CPU ${summarize(idleCpuMsPerS).p50.toFixed(1)} ms/s per node, nats-server delivered ${Math.round(nats.outMsgsPerS)} msgs/s, ${falseEvents} false events`,
  );

  let crash: CrashResult | undefined;
  if (options.crash) {
    const victim = ids.length;
    progress(`SIGKILL node ${victim}; waiting up to ${options.crash.timeoutMs / 1000} s for every survivor`);
    crash = await measureCrash({ children, victim, log, timeoutMs: options.crash.timeoutMs, signal });
    progress(
      `node ${victim} reported by ${crash.reports.length}/${crash.survivors.length} survivors${crash.silent.length > 0 ? `; silent: ${crash.silent.join(", ")}` : ""}`,
    );
  }

  log.phase = "stop";
  const stopStart = performance.now();
  const unclean = await stopAll(children, STOP_GRACE_MS);
  const stopMs = performance.now() - stopStart;
  progress(`all ${ids.length} stopped in ${Math.round(stopMs)} ms after SIGTERM`);
  return {
    processes: ids.length,
    spawnMs: lastSpawn - firstSpawn,
    allAnsweredMs,
    convergedMs,
    polls,
    idleMs: options.idleMs,
    idleCpuMsPerS,
    nodeRss,
    natsServerRss,
    nats,
    falseEvents,
    ...(crash ? { crash } : {}),
    stopMs,
    events: log.counts,
    unclean,
  };
}

/** "view 31 ×30, view 30 ×2" */
function describeViews(nodes: readonly NodeStatus[]): string {
  const counts = new Map<string, number>();
  for (const n of nodes) {
    const key = `view ${n.view.id} of ${n.view.members.length}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([k, c]) => `${k} ×${c}`).join(", ") || "no views";
}

/** User + system CPU seconds so far, from /proc/<pid>/stat (fields 14 and 15, in USER_HZ = 100 ticks per s). */
export function readCpuSeconds(pid: number | undefined, what: string): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces: count from the closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch (error) {
    throw new BenchError(`cannot read /proc/${pid}/stat of ${what}`, { cause: error });
  }
}

function readRss(pid: number | undefined, what: string): Rss {
  if (pid === undefined) throw new BenchError(`${what} has no pid`);
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, "utf8");
  } catch (error) {
    throw new BenchError(`cannot read /proc/${pid}/status of ${what} (gone, or not Linux)`, { cause: error });
  }
  const kib = (field: string) => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, "m").exec(status);
    if (!m) throw new BenchError(`no ${field} in /proc/${pid}/status of ${what}`);
    return Number(m[1]) / 1024;
  };
  return { rssMiB: kib("VmRSS"), peakMiB: kib("VmHWM") };
}

/**
 * SIGTERM to every live child, SIGKILL to any still there after `graceMs`;
 * resolves with the ones that did not stop cleanly (exit 0 on SIGTERM).
 */
export async function stopAll(children: readonly ChildProcess[], graceMs: number): Promise<string[]> {
  const unclean: string[] = [];
  await Promise.all(
    children.map(async (child, i) => {
      const name = `node ${i + 1}`;
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      child.kill("SIGTERM");
      let killed = false;
      const timer = setTimeout(() => {
        killed = true;
        child.kill("SIGKILL");
      }, graceMs);
      await exited;
      clearTimeout(timer);
      if (killed) unclean.push(`${name}: SIGKILL after ${graceMs} ms`);
      else if (child.exitCode !== 0) unclean.push(`${name}: ${child.signalCode ?? `exit ${child.exitCode}`}`);
    }),
  );
  return unclean;
}
