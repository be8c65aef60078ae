// The table rows and notes of the transport floor (scaleFloor.ts): each
// variant's idle CPU per process against SPEC 10's 5 ms/s, and dvsd's idle CPU
// at the same number of processes over the floor's, when this run measured both.
import type { ResultRow } from "./results.js";
import type { FloorResult } from "./scaleFloor.js";
import type { ProcessScaleResult } from "./scaleProcesses.js";
import { percentile } from "./stats.js";

/** SPEC 10: idle CPU per node, ms per s. */
const IDLE_CPU_TARGET = 5;

export function floorRows(
  floor: readonly FloorResult[],
  processes: readonly ProcessScaleResult[],
): { rows: ResultRow[]; notes: string[] } {
  const rows: ResultRow[] = [];
  const notes: string[] = [];
  const median = (xs: readonly number[]) => percentile(Float64Array.from(xs).sort(), 50);
  for (const f of floor) {
    const g = `floor-${f.variant}`;
    const cpu = Float64Array.from(f.cpuMsPerS).sort();
    const traffic =
      f.observers === 0
        ? "connected, no traffic"
        : `a heartbeat every ${f.periodMs} ms, ${f.observers} observers`;
    rows.push(
      {
        name: `${g}/idle-cpu.median`,
        group: g,
        value: median(f.cpuMsPerS),
        unit: "ms/s",
        of: `one bare nats.js process of ${f.processes} (${traffic}) over ${f.idleMs / 1000} s`,
        target: { op: "<=", value: IDLE_CPU_TARGET },
      },
      { name: `${g}/idle-cpu.max`, group: g, value: cpu[cpu.length - 1] ?? Number.NaN, unit: "ms/s" },
      {
        name: `${g}/nats.delivered-per-process`,
        group: g,
        value: f.deliveredPerProcess,
        unit: "msg/s",
        of: "nats-server /varz out_msgs per second / processes",
      },
    );
  }
  const beats = floor.find((f) => f.variant === "heartbeats");
  const same = beats && processes.find((p) => p.processes === beats.processes);
  if (beats && same) {
    const floorCpu = median(beats.cpuMsPerS);
    rows.push({
      name: `floor/dvsd-over-floor-${beats.processes}`,
      group: "floor",
      value: median(same.idleCpuMsPerS) / floorCpu,
      unit: "×",
      of: `median idle CPU of ${beats.processes} dvsd nodes / of ${beats.processes} floor processes with heartbeats`,
    });
  }
  if (beats)
    notes.push(
      `floor: ${beats.processes} bare nats.js processes doing only SPEC 4's default heartbeat traffic use ${median(beats.cpuMsPerS).toFixed(1)} ms/s each (median) against SPEC 10's ${IDLE_CPU_TARGET} ms/s for a whole node`,
    );
  return { rows, notes };
}
