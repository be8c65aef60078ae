// The transport floor part of `npm run scale`: what N bare nats.js processes
// cost at idle when they do nothing but the traffic SPEC 4's default
// membership settings give a node (a heartbeat every 200 ms, heard by K = 5
// observers; bench/floorClient.ts), started with the same V8 flags and
// `connectNats` options as `dvsd run`, on a nats-server of their own. Three
// variants, one after the other: connected and silent; heartbeats each at its
// own phase; heartbeats in step on wall-clock multiples of the period (the
// cheapest a node's wake-ups can be bunched). The median is the least a dvsd
// node can cost on this machine with those defaults, to set beside the
// processes part's idle CPU and SPEC 10's 5 ms/s.
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DEV_USERS } from "../client/credentials.js";
import { devServerConfig, renderNatsConfig } from "../daemon/natsAccounts.js";
import { DVSD_NODE_FLAGS } from "../daemon/nodeFlags.js";
import { type Scope, sleep } from "./context.js";
import { readVarz, startMonitoredNatsServer, varzRates } from "./natsMonitor.js";
import { readCpuSeconds, stopAll } from "./scaleProcesses.js";

export interface FloorOptions {
  readonly processes: number;
  readonly idleMs: number;
  /** Heartbeat period and observers per node: SPEC 4's defaults (`membership.heartbeatMs`, `membership.observers`). */
  readonly periodMs: number;
  readonly observers: number;
  readonly repoRoot: string;
  readonly scope: Scope;
  readonly signal: AbortSignal;
  readonly progress: (message: string) => void;
}

export interface FloorVariant {
  readonly name: "connected" | "heartbeats" | "heartbeats-aligned";
  readonly observers: number;
  readonly aligned: boolean;
}

export const FLOOR_VARIANTS: readonly FloorVariant[] = [
  { name: "connected", observers: 0, aligned: false },
  { name: "heartbeats", observers: -1, aligned: false },
  { name: "heartbeats-aligned", observers: -1, aligned: true },
];

export interface FloorResult {
  readonly variant: FloorVariant["name"];
  readonly processes: number;
  readonly observers: number;
  readonly periodMs: number;
  readonly idleMs: number;
  /** Per process, CPU time (user + system) during the idle spell, ms per s. */
  readonly cpuMsPerS: readonly number[];
  /** nats-server /varz out_msgs per second per process during the idle spell. */
  readonly deliveredPerProcess: number;
}

/** Time after the last spawn for every client to connect and subscribe before the spell starts. */
const SETTLE_MS = 3_000;

export async function runFloor(options: FloorOptions): Promise<FloorResult[]> {
  const { scope, progress } = options;
  const natsConf = join(scope.tempDir("dvs-floor-conf-"), "nats.conf");
  writeFileSync(natsConf, renderNatsConfig(devServerConfig(1, "floor")));
  const { server, monitorUrl } = await startMonitoredNatsServer(scope, natsConf);
  const dir = scope.tempDir("dvs-floor-");
  const client = join(options.repoRoot, "dist/bench/floorClient.js");
  const results: FloorResult[] = [];
  for (const variant of FLOOR_VARIANTS) {
    const observers = variant.observers < 0 ? options.observers : variant.observers;
    const children: ChildProcess[] = [];
    try {
      for (let id = 0; id < options.processes; id++) {
        const args = {
          url: server.url,
          ...DEV_USERS.admin,
          id,
          processes: options.processes,
          observers,
          periodMs: options.periodMs,
          aligned: variant.aligned,
          prefix: `floor.${variant.name}`,
        };
        const out = openSync(join(dir, `${variant.name}-${id}.log`), "a");
        const child = spawn(process.execPath, [...DVSD_NODE_FLAGS, client, JSON.stringify(args)], {
          stdio: ["ignore", out, out],
          env: { ...process.env, DVS_PARENT_PID: String(process.pid) },
        });
        closeSync(out);
        scope.track(child, `kill floor client ${variant.name} ${id}`);
        children.push(child);
      }
      await sleep(SETTLE_MS, options.signal);
      const dead = children.findIndex((c) => c.exitCode !== null || c.signalCode !== null);
      if (dead >= 0) throw new Error(`floor client ${dead} exited early (log in ${dir})`);
      const before = children.map((c, i) => readCpuSeconds(c.pid, `floor client ${i}`));
      const varzBefore = await readVarz(monitorUrl);
      await sleep(options.idleMs, options.signal);
      const varzAfter = await readVarz(monitorUrl);
      const seconds = options.idleMs / 1000;
      const cpuMsPerS = children.map(
        (c, i) => ((readCpuSeconds(c.pid, `floor client ${i}`) - (before[i] ?? 0)) * 1000) / seconds,
      );
      const rates = varzRates(varzBefore, varzAfter);
      const result: FloorResult = {
        variant: variant.name,
        processes: options.processes,
        observers,
        periodMs: options.periodMs,
        idleMs: options.idleMs,
        cpuMsPerS,
        deliveredPerProcess: rates.outMsgsPerS / options.processes,
      };
      const sorted = [...cpuMsPerS].sort((a, b) => a - b);
      progress(
        `${variant.name}: median CPU ${sorted[Math.floor(sorted.length / 2)]?.toFixed(1)} ms/s per process, ${result.deliveredPerProcess.toFixed(1)} msgs/s delivered to each`,
      );
      results.push(result);
    } finally {
      await stopAll(children, 5_000);
    }
  }
  return results;
}
