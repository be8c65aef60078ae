// The results rows of the process half of `npm run scale`: one group per
// size (`processes-<N>/…`), and the ratios across sizes that say whether a
// node's idle cost stays flat as the cluster grows (`processes/…`), computed
// from the sizes measured in the same run.
import { cpus } from "node:os";
import type { ResultRow } from "./results.js";
import { PHASES } from "./scaleEvents.js";
import type { ProcessScaleResult } from "./scaleProcesses.js";
import { percentile, summarize } from "./stats.js";

/** SPEC 10: `dvsd` idle RSS ≤ 80 MB (read here as MiB, as /proc reports kB = KiB). */
const RSS_TARGET_MIB = 80;
/** SPEC 10: a crash is reported by every survivor within 300 ms p50, 500 ms max. */
const CRASH_TARGET = { p50Ms: 300, maxMs: 500 };
/** Issue 20: per-node idle figures may differ by at most this factor across sizes. */
const FLAT_WITHIN = 2;
/** The sizes each flatness ratio is taken over (issue 20): idle CPU from 4 to 64, delivered messages 16 to 64. */
export const FLAT_RANGES = {
  idleCpu: { from: 4, to: 64 },
  delivered: { from: 16, to: 64 },
} as const;

export function processRows(r: ProcessScaleResult): ResultRow[] {
  const rss = Float64Array.from(r.nodeRss.map((x) => x.rssMiB)).sort();
  const cpu = Float64Array.from(r.idleCpuMsPerS).sort();
  const peak = Math.max(...r.nodeRss.map((x) => x.peakMiB));
  const idle = `during the ${r.idleMs / 1000} s idle spell`;
  const g = `processes-${r.processes}`;
  const rows: ResultRow[] = [
    { name: `${g}/spawn`, group: g, value: r.spawnMs, unit: "ms", of: "first spawn → last spawn" },
    {
      name: `${g}/all-answered`,
      group: g,
      value: r.allAnsweredMs,
      unit: "ms",
      of: `last spawn → all ${r.processes} answer the status request, in any view`,
    },
    {
      name: `${g}/converged`,
      group: g,
      value: r.convergedMs,
      unit: "ms",
      of: `last spawn → all ${r.processes} answer with one view of ${r.processes}`,
    },
    {
      name: `${g}/idle-cpu.median`,
      group: g,
      value: percentile(cpu, 50),
      unit: "ms/s",
      of: `CPU time per wall second of one node ${idle}`,
    },
    { name: `${g}/idle-cpu.max`, group: g, value: cpu[cpu.length - 1] ?? Number.NaN, unit: "ms/s" },
    {
      name: `${g}/idle-cpu.total`,
      group: g,
      value: r.idleCpuMsPerS.reduce((a, b) => a + b, 0),
      unit: "ms/s",
      of: `all ${r.processes} nodes together; the machine has ${cpus().length} × 1000`,
    },
    {
      name: `${g}/nats.in-msgs`,
      group: g,
      value: r.nats.inMsgsPerS,
      unit: "msg/s",
      of: `nats-server /varz in_msgs ${idle}`,
    },
    {
      name: `${g}/nats.delivered`,
      group: g,
      value: r.nats.outMsgsPerS,
      unit: "msg/s",
      of: `nats-server /varz out_msgs ${idle}`,
    },
    {
      name: `${g}/nats.delivered-per-node`,
      group: g,
      value: r.nats.outMsgsPerS / r.processes,
      unit: "msg/s",
      of: `out_msgs per second / ${r.processes} nodes`,
    },
    {
      name: `${g}/nats.delivered-bytes-per-node`,
      group: g,
      value: r.nats.outBytesPerS / r.processes,
      unit: "B/s",
      of: `out_bytes per second / ${r.processes} nodes`,
    },
    {
      name: `${g}/false-events`,
      group: g,
      value: r.falseEvents,
      unit: "events",
      of: `PARTITION, DISCONNECT or MERGE ${idle}: nobody was killed`,
      target: { op: "<=", value: 0 },
    },
    {
      name: `${g}/unexpected-events.start`,
      group: g,
      value: Object.entries(r.events.start)
        .filter(([key]) => !key.startsWith("JOIN "))
        .reduce((sum, [, n]) => sum + n, 0),
      unit: "events",
      of: "until one view: anything but a JOIN",
    },
    { name: `${g}/rss.min`, group: g, value: rss[0] ?? Number.NaN, unit: "MiB" },
    { name: `${g}/rss.median`, group: g, value: percentile(rss, 50), unit: "MiB" },
    {
      name: `${g}/rss.max`,
      group: g,
      value: rss[rss.length - 1] ?? Number.NaN,
      unit: "MiB",
      of: `VmRSS after ${r.idleMs / 1000} s idle`,
      target: { op: "<=", value: RSS_TARGET_MIB },
    },
    { name: `${g}/rss-peak.max`, group: g, value: peak, unit: "MiB", of: "VmHWM: the largest peak RSS" },
    { name: `${g}/nats-server.rss`, group: g, value: r.natsServerRss.rssMiB, unit: "MiB" },
  ];
  const c = r.crash;
  if (c) {
    const at = summarize(c.reports.map((x) => x.atMs));
    const received = summarize(c.reports.map((x) => x.receivedMs));
    const who = `node ${c.victim} SIGKILLed → each survivor's first PARTITION/DISCONNECT of it`;
    rows.push(
      {
        name: `${g}/crash.reported`,
        group: g,
        value: c.reports.length,
        unit: "survivors",
        of: `of ${c.survivors.length}, within ${c.timeoutMs / 1000} s`,
      },
      {
        name: `${g}/crash.silent`,
        group: g,
        value: c.silent.length,
        unit: "survivors",
        of: "no report by the timeout",
        target: { op: "<=", value: 0 },
      },
      { name: `${g}/crash.at.p50`, group: g, value: at.p50, unit: "ms", of: `${who}: its event's at` },
      { name: `${g}/crash.at.max`, group: g, value: at.max, unit: "ms" },
      {
        name: `${g}/crash.received.p50`,
        group: g,
        value: received.p50,
        unit: "ms",
        of: `${who}: received by the observer`,
        target: { op: "<=", value: CRASH_TARGET.p50Ms },
      },
      {
        name: `${g}/crash.received.max`,
        group: g,
        value: received.max,
        unit: "ms",
        target: { op: "<=", value: CRASH_TARGET.maxMs },
      },
    );
  }
  rows.push({ name: `${g}/stop`, group: g, value: r.stopMs, unit: "ms", of: "SIGTERM to all → all exited" });
  return rows;
}

export function processNotes(r: ProcessScaleResult): string[] {
  const p = `processes ${r.processes}`;
  const notes = [
    `${p}: dvsd run with default settings on ${cpus().length} CPUs; one view after ${r.polls} status polls; idle ${r.nats.seconds.toFixed(1)} s by /varz (${r.nats.slowConsumers} new slow consumers); RSS from /proc/<pid>/status after it`,
    `${p}: membership events by phase: ${PHASES.map((phase) => `${phase}: ${formatCounts(r.events[phase])}`).join("; ")}`,
  ];
  const c = r.crash;
  if (c) {
    const reports = [...c.reports]
      .sort((a, b) => a.survivor - b.survivor)
      .map((x) => `${x.survivor} ${x.event} at ${Math.round(x.atMs)}/recv ${Math.round(x.receivedMs)}`);
    notes.push(
      `${p}: crash of node ${c.victim}, ms after the kill (event at / received): ${reports.join(", ") || "none"}`,
      c.silent.length === 0
        ? `${p}: every one of ${c.survivors.length} survivors reported node ${c.victim} (last after ${Math.round(c.waitedMs)} ms)`
        : `${p}: SILENT after ${c.timeoutMs / 1000} s: ${c.silent.map((n) => `node ${n}`).join(", ")}`,
    );
  }
  notes.push(
    r.unclean.length === 0
      ? `${p}: all exited 0 on SIGTERM`
      : `${p}: did not stop cleanly: ${r.unclean.join("; ")}`,
  );
  return notes;
}

/** How far apart a per-node figure is over the sizes measured within a range. */
export interface Flatness {
  readonly sizes: readonly number[];
  readonly values: readonly number[];
  /** Largest / smallest value: flat within 2× means ≤ 2. */
  readonly spread: number;
  /** Value at the largest size / value at the smallest: which way it goes. */
  readonly growth: number;
}

/** Over the results whose size is within [from, to] and whose figure is finite; undefined below two sizes. */
export function flatness(
  points: readonly { readonly processes: number; readonly value: number }[],
  range: { readonly from: number; readonly to: number },
): Flatness | undefined {
  const within = points
    .filter((p) => p.processes >= range.from && p.processes <= range.to && Number.isFinite(p.value))
    .sort((a, b) => a.processes - b.processes);
  if (within.length < 2) return undefined;
  const values = within.map((p) => p.value);
  const first = values[0] as number;
  const last = values[values.length - 1] as number;
  return {
    sizes: within.map((p) => p.processes),
    values,
    spread: Math.max(...values) / Math.min(...values),
    growth: last / first,
  };
}

/** The cross-size ratios, and a note for each one the run could not compute. */
export function flatnessRows(results: readonly ProcessScaleResult[]): { rows: ResultRow[]; notes: string[] } {
  const rows: ResultRow[] = [];
  const notes: string[] = [];
  const figures = [
    {
      key: "idle-cpu-per-node",
      what: "median idle CPU per node",
      range: FLAT_RANGES.idleCpu,
      value: (r: ProcessScaleResult) => percentile(Float64Array.from(r.idleCpuMsPerS).sort(), 50),
    },
    {
      key: "delivered-per-node",
      what: "nats-server delivered msgs/s per node",
      range: FLAT_RANGES.delivered,
      value: (r: ProcessScaleResult) => r.nats.outMsgsPerS / r.processes,
    },
  ];
  for (const f of figures) {
    const fit = flatness(
      results.map((r) => ({ processes: r.processes, value: f.value(r) })),
      f.range,
    );
    const span = `${f.range.from}–${f.range.to}`;
    if (!fit) {
      notes.push(
        `processes: no ${f.key} ratio: it needs two sizes between ${span} processes, measured ${results.map((r) => r.processes).join(", ") || "none"}`,
      );
      continue;
    }
    const sizes = fit.sizes.join(", ");
    const first = fit.sizes[0];
    const last = fit.sizes[fit.sizes.length - 1];
    rows.push(
      {
        name: `processes/${f.key}.spread`,
        group: "processes",
        value: fit.spread,
        unit: "×",
        of: `largest / smallest ${f.what} over ${sizes} processes (range ${span})`,
        target: { op: "<=", value: FLAT_WITHIN },
      },
      {
        name: `processes/${f.key}.growth`,
        group: "processes",
        value: fit.growth,
        unit: "×",
        of: `${f.what} at ${last} / at ${first} processes`,
      },
    );
    notes.push(
      `processes: ${f.what}: ${fit.sizes.map((n, i) => `${n}: ${(fit.values[i] ?? Number.NaN).toFixed(2)}`).join(", ")}`,
    );
  }
  return { rows, notes };
}

const formatCounts = (counts: Record<string, number>) =>
  Object.entries(counts)
    .map(([name, n]) => `${name} ${n}`)
    .join(", ") || "none";
