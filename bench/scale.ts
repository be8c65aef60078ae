// Entry of `npm run scale`: how dvsd holds up with many nodes. Two parts:
// real `dvsd run` processes on a nats-server of its own (view convergence,
// idle RSS against the SPEC's 80 MB), and node runtimes on the simulated
// network (what a simulated second costs in wall time, convergence, heap).
// Prints a table and writes results/scale.{json,md} (bench/results.ts).

import { fork } from "node:child_process";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { abortError, type LastResort, runLastResort, Scope, within } from "./context.js";
import { runIfMain } from "./entry.js";
import { BenchAbortedError, BenchError } from "./errors.js";
import { findRepoRoot } from "./repoRoot.js";
import { columns } from "./report.js";
import { judgeResultRow, type ResultRow, resultCells, writeResults } from "./results.js";
import { type ProcessScaleResult, runProcessScale } from "./scaleProcesses.js";
import type { SimScaleResult } from "./scaleSim.js";
import type { SimWorkerMessage, SimWorkerOptions } from "./scaleSimWorker.js";
import { percentile } from "./stats.js";

/** SPEC 10: `dvsd` idle RSS ≤ 80 MB (read here as MiB, as /proc reports kB = KiB). */
const RSS_TARGET_MIB = 80;
/** Sizes measured instead when an asked size does not finish in its budget, to show how the cost grows. */
const LADDER = [100, 250, 500];

export interface ScaleOptions {
  readonly processes: number;
  readonly idleSeconds: number;
  readonly simNodes: readonly number[];
  readonly simSeconds: number;
  readonly simBudgetSeconds: number;
  readonly seed: number;
  readonly only?: "processes" | "sim";
  readonly signal: AbortSignal;
  readonly progress: (message: string) => void;
}

export interface ScaleReport {
  readonly rows: ResultRow[];
  readonly notes: string[];
  readonly meta: Record<string, unknown>;
  readonly errors: number;
}

export async function runScale(options: ScaleOptions): Promise<ScaleReport> {
  const repoRoot = findRepoRoot();
  const lastResort: LastResort = new Set();
  const onExit = () => runLastResort(lastResort);
  process.on("exit", onExit);
  const rows: ResultRow[] = [];
  const notes: string[] = [];
  const meta: Record<string, unknown> = {
    options: {
      processes: options.processes,
      idleSeconds: options.idleSeconds,
      simNodes: options.simNodes,
      simSeconds: options.simSeconds,
      simBudgetSeconds: options.simBudgetSeconds,
      seed: options.seed,
      only: options.only ?? "both",
    },
    cpuModel: cpus()[0]?.model.trim() ?? "unknown",
  };
  // Other work on the machine skews every figure here: say how busy it was.
  const load = (when: string) => {
    const [one, five] = loadavg();
    notes.push(
      `load average ${when}: ${one?.toFixed(2)} (1 min), ${five?.toFixed(2)} (5 min) on ${cpus().length} CPUs`,
    );
  };
  load("at the start");
  try {
    if (options.only !== "sim") {
      const scope = new Scope(lastResort);
      try {
        const result = await runProcessScale({
          processes: options.processes,
          idleMs: options.idleSeconds * 1000,
          convergeTimeoutMs: 180_000,
          repoRoot,
          scope,
          signal: options.signal,
          progress: (m) => options.progress(`processes: ${m}`),
        });
        rows.push(...processRows(result));
        notes.push(...processNotes(result));
        meta.processes = result;
      } catch (error) {
        if (options.signal.aborted) throw abortError(options.signal);
        rows.push(errorRow("processes", error));
        options.progress(`processes: ERROR ${describe(error)}`);
      } finally {
        for (const failure of await scope.close()) options.progress(`processes: cleanup: ${failure.message}`);
      }
    }
    if (options.only !== "processes") {
      if (options.only !== "sim") load("between the parts");
      const scope = new Scope(lastResort);
      try {
        const results: SimScaleResult[] = [];
        const measure = async (nodes: number) => {
          try {
            const r = await runSimWorker(scope, options, nodes);
            results.push(r);
            rows.push(...simRows(r));
            return r;
          } catch (error) {
            if (options.signal.aborted) throw abortError(options.signal);
            rows.push(errorRow(`sim-${nodes}`, error));
            options.progress(`sim ${nodes}: ERROR ${describe(error)}`);
            return undefined;
          }
        };
        const asked = [...options.simNodes];
        for (const nodes of asked) await measure(nodes);
        const unfinished = asked.filter((n) => !results.some((r) => r.nodes === n && r.finished));
        const smallest = Math.min(...asked);
        if (unfinished.length > 0 && LADDER.some((n) => n < smallest)) {
          const ladder = LADDER.filter((n) => n < smallest);
          const line = `sim: ${unfinished.join(", ")} nodes did not finish ${options.simSeconds} simulated s within ${options.simBudgetSeconds} s of wall time; measuring ${ladder.join(", ")} nodes (same budget) to show how the cost grows`;
          options.progress(line);
          notes.push(line);
          for (const nodes of ladder) await measure(nodes);
        }
        const fit = growth(results);
        if (fit) {
          rows.push({
            name: "sim/growth-exponent",
            group: "sim",
            value: fit.exponent,
            unit: "",
            of: `log-log slope of wall ms per simulated s over ${fit.sizes.join(", ")} nodes`,
          });
        }
        notes.push(...simNotes(results, fit));
        meta.sim = results;
      } finally {
        for (const failure of await scope.close()) options.progress(`sim: cleanup: ${failure.message}`);
      }
    }
    load("at the end");
  } finally {
    process.off("exit", onExit);
  }
  meta.notes = notes;
  return { rows: rows.map(judgeResultRow), notes, meta, errors: rows.filter((r) => r.error).length };
}

// ---- processes ----

function processRows(r: ProcessScaleResult): ResultRow[] {
  const rss = Float64Array.from(r.nodeRss.map((x) => x.rssMiB)).sort();
  const cpu = Float64Array.from(r.idleCpuMsPerS).sort();
  const peak = Math.max(...r.nodeRss.map((x) => x.peakMiB));
  const g = "processes";
  return [
    { name: "processes/nodes", group: g, value: r.processes, unit: "processes" },
    { name: "processes/spawn", group: g, value: r.spawnMs, unit: "ms", of: "first spawn → last spawn" },
    {
      name: "processes/all-answered",
      group: g,
      value: r.allAnsweredMs,
      unit: "ms",
      of: `last spawn → all ${r.processes} answer the status request, in any view`,
    },
    {
      name: "processes/converged",
      group: g,
      value: r.convergedMs,
      unit: "ms",
      of: `last spawn → all ${r.processes} answer with one view of ${r.processes}`,
    },
    {
      name: "processes/idle-cpu.median",
      group: g,
      value: percentile(cpu, 50),
      unit: "ms/s",
      of: `CPU time per wall second of one node during the ${r.idleMs / 1000} s idle spell`,
    },
    { name: "processes/idle-cpu.max", group: g, value: cpu[cpu.length - 1] ?? Number.NaN, unit: "ms/s" },
    {
      name: "processes/idle-cpu.total",
      group: g,
      value: r.idleCpuMsPerS.reduce((a, b) => a + b, 0),
      unit: "ms/s",
      of: `all ${r.processes} nodes together; the machine has ${cpus().length} × 1000`,
    },
    { name: "processes/rss.min", group: g, value: rss[0] ?? Number.NaN, unit: "MiB" },
    { name: "processes/rss.median", group: g, value: percentile(rss, 50), unit: "MiB" },
    {
      name: "processes/rss.max",
      group: g,
      value: rss[rss.length - 1] ?? Number.NaN,
      unit: "MiB",
      of: `VmRSS after ${r.idleMs / 1000} s idle`,
      target: { op: "<=", value: RSS_TARGET_MIB },
    },
    { name: "processes/rss-peak.max", group: g, value: peak, unit: "MiB", of: "VmHWM: the largest peak RSS" },
    {
      name: "processes/unexpected-events",
      group: g,
      value: [r.events.untilConverged, r.events.afterwards]
        .flatMap((counts) => Object.entries(counts))
        .filter(([key]) => !EXPECTED_EVENTS.has(key))
        .reduce((sum, [, n]) => sum + n, 0),
      unit: "events",
      of: "nobody is killed: anything but a JOIN (started | new node) or DISCONNECT (left)",
    },
    { name: "processes/nats-server.rss", group: g, value: r.natsServerRss.rssMiB, unit: "MiB" },
    { name: "processes/stop", group: g, value: r.stopMs, unit: "ms", of: "SIGTERM to all → all exited" },
  ];
}

function processNotes(r: ProcessScaleResult): string[] {
  return [
    `processes: ${r.processes} dvsd run with default settings on ${cpus().length} CPUs; convergence polled with the status request (${r.polls} polls); RSS read from /proc/<pid>/status after ${r.idleMs / 1000} s idle`,
    `processes: membership events until one view: ${formatCounts(r.events.untilConverged)}; after it (idle, then SIGTERM): ${formatCounts(r.events.afterwards)}`,
    r.unclean.length === 0
      ? `processes: all ${r.processes} exited 0 on SIGTERM`
      : `processes: did not stop cleanly: ${r.unclean.join("; ")}`,
  ];
}

/** What a cold start and a graceful stop of every node should announce, and nothing else. */
const EXPECTED_EVENTS = new Set(["JOIN (started)", "JOIN (new node)", "DISCONNECT (left)"]);

const formatCounts = (counts: Record<string, number>) =>
  Object.entries(counts)
    .map(([name, n]) => `${name} ${n}`)
    .join(", ") || "none";

// ---- simulation ----

/** Runs one size in a forked worker, bounded by its budget plus a margin for start-up and the last timer. */
async function runSimWorker(scope: Scope, options: ScaleOptions, nodes: number): Promise<SimScaleResult> {
  const workerOptions: SimWorkerOptions = {
    nodes,
    simSeconds: options.simSeconds,
    seed: options.seed,
    budgetMs: options.simBudgetSeconds * 1000,
  };
  const worker = fork(join(import.meta.dirname, "scaleSimWorker.js"), [JSON.stringify(workerOptions)], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  scope.track(worker, `kill the ${nodes}-node simulation`);
  options.progress(
    `sim ${nodes}: worker ${worker.pid}, ${options.simSeconds} simulated s, budget ${options.simBudgetSeconds} s`,
  );
  const done = new Promise<SimScaleResult>((resolve, reject) => {
    let result: SimScaleResult | undefined;
    let failure: Error | undefined;
    worker.on("message", (m: SimWorkerMessage) => {
      if (m.type === "progress") options.progress(`sim ${nodes}: ${m.message}`);
      else if (m.type === "result") result = m.result;
      else failure = Object.assign(new BenchError(m.message), { name: m.name });
    });
    worker.once("exit", (code, signal) => {
      if (result) resolve(result);
      else
        reject(
          failure ??
            new BenchError(
              `the ${nodes}-node simulation exited (${signal ?? `code ${code}`}) without a result; out of memory?`,
            ),
        );
    });
  });
  const marginMs = 120_000;
  return within(options.signal, workerOptions.budgetMs + marginMs, `the ${nodes}-node simulation`, done);
}

function simRows(r: SimScaleResult): ResultRow[] {
  const g = `sim-${r.nodes}`;
  const steady = r.wallMsEachSecond.slice(1);
  return [
    {
      name: `${g}/wall-per-sim-second`,
      group: g,
      value: r.wallMsPerSimSecond,
      unit: "ms",
      of: `wall ms / simulated s over ${r.simSecondsRun} s`,
    },
    ...(steady.length > 0
      ? [
          {
            name: `${g}/wall-per-sim-second.after-first`,
            group: g,
            value: steady.reduce((a, b) => a + b, 0) / steady.length,
            unit: "ms",
            of: `mean over simulated seconds 2–${r.wallMsEachSecond.length}`,
          },
        ]
      : []),
    {
      name: `${g}/simulated`,
      group: g,
      value: r.simSecondsRun,
      unit: "s",
      of: r.finished ? "as asked" : `budget spent: ${r.simSecondsRun} of ${r.simSecondsAsked} s asked`,
    },
    {
      name: `${g}/converged`,
      group: g,
      value: r.converged ? 1 : 0,
      unit: "bool",
      of: `one view of all ${r.nodes}`,
    },
    {
      name: `${g}/converged-at`,
      group: g,
      value: r.convergedAtSimMs ?? Number.NaN,
      unit: "ms",
      of: `simulated, checked every ${r.stepMs} ms`,
    },
    {
      name: `${g}/heap-used`,
      group: g,
      value: r.heapUsedMiB,
      unit: "MiB",
      of: "heapUsed at the end (garbage included)",
    },
    {
      name: `${g}/start`,
      group: g,
      value: r.startWallMs,
      unit: "ms",
      of: "wall, starting every node runtime",
    },
  ];
}

/** The exponent k of wall ≈ c·nodesᵏ, least squares on logs, over the sizes that measured at least a second. */
function growth(results: readonly SimScaleResult[]): { exponent: number; sizes: number[] } | undefined {
  const points = results
    .filter((r) => r.simSecondsRun >= 1 && Number.isFinite(r.wallMsPerSimSecond))
    .sort((a, b) => a.nodes - b.nodes);
  if (points.length < 2) return undefined;
  const xs = points.map((r) => Math.log(r.nodes));
  const ys = points.map((r) => Math.log(r.wallMsPerSimSecond));
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  let num = 0;
  let den = 0;
  for (const [i, x] of xs.entries()) {
    num += (x - mx) * ((ys[i] ?? 0) - my);
    den += (x - mx) ** 2;
  }
  return { exponent: num / den, sizes: points.map((r) => r.nodes) };
}

function simNotes(
  results: readonly SimScaleResult[],
  fit: { exponent: number; sizes: number[] } | undefined,
): string[] {
  const notes = results.map(
    (r) =>
      `sim ${r.nodes}: ${r.finished ? "finished" : "STOPPED AT THE BUDGET"} ${r.simSecondsRun}/${r.simSecondsAsked} simulated s; wall ms per simulated second: ${r.wallMsEachSecond.map((w) => Math.round(w)).join(", ") || "(no whole second)"}; ${r.events} membership events`,
  );
  if (fit) {
    notes.push(
      `sim: wall time per simulated second grows as nodes^${fit.exponent.toFixed(2)} over ${fit.sizes.join(", ")} nodes`,
    );
  }
  return notes;
}

// ---- shared ----

function errorRow(group: string, error: unknown): ResultRow {
  const e = error instanceof Error ? error : new Error(String(error));
  return { name: group, group, value: Number.NaN, unit: "", error: { name: e.name, message: e.message } };
}

const describe = (error: unknown) =>
  error instanceof Error ? `${error.name}: ${error.message}` : String(error);

export function renderScaleTable(report: ScaleReport): string {
  const lines = columns(
    [["row", "value", "unit", "target", "of target", "verdict"], ...report.rows.map(resultCells)],
    [false, true, false, false, true, false],
  );
  return [...lines, "", ...report.notes.map((n) => `· ${n}`)].join("\n");
}

// ---- command line ----

function usage(): string {
  return `Usage: npm run scale -- [options]    (or: node dist/bench/scale.js [options])

Measures dvsd with many nodes and prints a table; results also go to
results/scale.json and scale.md, and a line of results/history.jsonl.

  processes  a nats-server of its own and N real \`dvsd run\` processes: time from
             the last spawn to one view of all N, then after an idle spell each
             process's RSS (/proc) against the 80 MB target, and nats-server's.
  sim        N node runtimes on the simulated network and clock, run S simulated
             seconds, each size in a process of its own: wall ms per simulated
             second, convergence, heap. A size that does not finish within its
             wall budget stops there and says so; then 100, 250 and 500 nodes
             (those below the smallest asked) are measured too, to show the growth.

Options:
  --processes <n>      dvsd processes (default 32)
  --idle-seconds <s>   idle spell before RSS is read (default 10)
  --sim-nodes <n,…>    simulated nodes, one size or a comma-separated list (default 100,250,1000)
  --sim-seconds <s>    simulated seconds per size (default 3)
  --sim-budget <s>     wall-clock seconds allowed per size (default 600)
  --seed <n>           simulation seed (default 1)
  --only <part>        processes or sim
  --out <dir>          write the results files there instead of results/
  -h, --help           show this help
`;
}

class UsageError extends BenchError {
  override name = "UsageError";
}

function positiveInt(flag: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1)
    throw new UsageError(`${flag} wants a positive integer, not ${JSON.stringify(text)}`);
  return n;
}

async function main(argv: readonly string[]): Promise<number> {
  let parsed: Omit<ScaleOptions, "signal" | "progress"> & { out?: string };
  try {
    const { values } = parseArgs({
      args: [...argv],
      options: {
        processes: { type: "string" },
        "idle-seconds": { type: "string" },
        "sim-nodes": { type: "string" },
        "sim-seconds": { type: "string" },
        "sim-budget": { type: "string" },
        seed: { type: "string" },
        only: { type: "string" },
        out: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    });
    if (values.help) {
      process.stdout.write(usage());
      return 0;
    }
    if (values.only !== undefined && values.only !== "processes" && values.only !== "sim") {
      throw new UsageError(`--only wants processes or sim, not ${JSON.stringify(values.only)}`);
    }
    parsed = {
      processes: positiveInt("--processes", values.processes, 32),
      idleSeconds: positiveInt("--idle-seconds", values["idle-seconds"], 10),
      simNodes: (values["sim-nodes"] ?? "100,250,1000")
        .split(",")
        .map((n) => positiveInt("--sim-nodes", n.trim(), 0)),
      simSeconds: positiveInt("--sim-seconds", values["sim-seconds"], 3),
      simBudgetSeconds: positiveInt("--sim-budget", values["sim-budget"], 600),
      seed: positiveInt("--seed", values.seed, 1),
      ...(values.only ? { only: values.only } : {}),
      ...(values.out !== undefined ? { out: values.out } : {}),
    };
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n\n${usage()}`);
    return 2;
  }
  const controller = new AbortController();
  let interrupts = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (++interrupts > 1) process.exit(130); // the `exit` hook still kills every child
    process.stderr.write(`[scale] ${signal}: stopping and cleaning up (again to force)\n`);
    controller.abort(new BenchAbortedError(signal));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    const started = performance.now();
    const { out, ...options } = parsed;
    const report = await runScale({
      ...options,
      signal: controller.signal,
      progress: (m) => process.stderr.write(`[scale] ${m}\n`),
    });
    const written = writeResults(
      {
        name: "scale",
        rows: report.rows,
        meta: { ...report.meta, durationMs: Math.round(performance.now() - started) },
      },
      out === undefined ? {} : { dir: out },
    );
    process.stdout.write(`${renderScaleTable(report)}\n`);
    process.stderr.write(
      `[scale] results written to ${written.json}, ${written.markdown} and ${written.history}\n`,
    );
    return report.errors > 0 ? 1 : 0;
  } catch (error) {
    if (error instanceof BenchAbortedError) {
      process.stderr.write(`[scale] ${error.message}\n`);
      return 130;
    }
    process.stderr.write(`[scale] ${describe(error)}\n`);
    return 1;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

await runIfMain(import.meta.url, main);
