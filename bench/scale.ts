// Entry of `npm run scale`: how dvsd holds up with many nodes. Two parts:
// real `dvsd run` processes at each size asked, each on a nats-server of its
// own (view convergence, idle CPU, RSS and server traffic per node, false
// events, optionally a crash), with the ratios across sizes; and node
// runtimes on the simulated network (what a simulated second costs in wall
// time, convergence, heap). Prints a table and writes results/scale.{json,md}
// (bench/results.ts).

import { fork } from "node:child_process";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { defaultTimings } from "../machines/membershipContext.js";
import { abortError, abortOnSignals, type LastResort, runLastResort, Scope, within } from "./context.js";
import { runIfMain } from "./entry.js";
import { BenchAbortedError, BenchError } from "./errors.js";
import { findRepoRoot } from "./repoRoot.js";
import { errorRow, judgeResultRow, type ResultRow, renderResultTable, writeResults } from "./results.js";
import { type FloorResult, runFloor } from "./scaleFloor.js";
import { floorRows } from "./scaleFloorRows.js";
import { type ProcessScaleResult, runProcessScale } from "./scaleProcesses.js";
import { flatnessRows, processNotes, processRows } from "./scaleProcessRows.js";
import type { SimScaleResult } from "./scaleSim.js";
import type { SimWorkerMessage, SimWorkerOptions } from "./scaleSimWorker.js";

/** Issue 20's sizes and spells. */
const DEFAULTS = {
  processes: "4,16,32,64,100",
  idleSeconds: 10,
  convergeSeconds: 300,
  crashSeconds: 30,
  simNodes: "100,1000,10000",
  simSeconds: 3,
  simBudgetSeconds: 600,
  floorProcesses: 16,
} as const;
/** Sizes measured instead when an asked size does not finish in its budget, to show how the cost grows. */
const LADDER = [100, 250, 500];

const PARTS = ["processes", "floor", "sim"] as const;
export type ScalePart = (typeof PARTS)[number];

export interface ScaleOptions {
  /** Sizes, run one after the other, each with a nats-server of its own. */
  readonly processes: readonly number[];
  readonly idleSeconds: number;
  readonly convergeSeconds: number;
  /** Seconds to wait for every survivor's report of a SIGKILL after the idle spell; no crash when absent. */
  readonly crashSeconds?: number;
  readonly simNodes: readonly number[];
  readonly simSeconds: number;
  readonly simBudgetSeconds: number;
  readonly seed: number;
  /** Bare nats.js processes of the transport floor (scaleFloor.ts). */
  readonly floorProcesses: number;
  /** The parts to run; all three when absent. */
  readonly only?: readonly ScalePart[];
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
  const lastResort: LastResort = new Set();
  const onExit = () => runLastResort(lastResort);
  process.on("exit", onExit);
  const rows: ResultRow[] = [];
  const notes: string[] = [];
  const meta: Record<string, unknown> = {
    options: {
      processes: options.processes,
      idleSeconds: options.idleSeconds,
      convergeSeconds: options.convergeSeconds,
      crashSeconds: options.crashSeconds ?? null,
      simNodes: options.simNodes,
      simSeconds: options.simSeconds,
      simBudgetSeconds: options.simBudgetSeconds,
      seed: options.seed,
      floorProcesses: options.floorProcesses,
      only: options.only ?? PARTS,
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
  const runs = (part: ScalePart) => options.only === undefined || options.only.includes(part);
  try {
    let processResults: ProcessScaleResult[] = [];
    if (runs("processes")) {
      const results: ProcessScaleResult[] = [];
      for (const [i, processes] of options.processes.entries()) {
        if (i > 0) load(`before ${processes} processes`);
        const result = await measureProcesses(options, processes, lastResort);
        if (result instanceof Error) {
          rows.push(errorRow(`processes-${processes}`, result));
          continue;
        }
        results.push(result);
        rows.push(...processRows(result));
        notes.push(...processNotes(result));
      }
      const flat = flatnessRows(results);
      rows.push(...flat.rows);
      notes.push(...flat.notes);
      meta.processes = results;
      processResults = results;
    }
    if (runs("floor")) {
      if (runs("processes")) load("before the floor");
      const floor = await measureFloor(options, lastResort);
      if (floor instanceof Error) rows.push(errorRow("floor", floor));
      else {
        const made = floorRows(floor, processResults);
        rows.push(...made.rows);
        notes.push(...made.notes);
        meta.floor = floor;
      }
    }
    if (runs("sim")) {
      if (runs("processes") || runs("floor")) load("before the simulation");
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

/**
 * One measurement in a scope of its own: everything it started is gone before
 * the next starts; a failure is returned (and said) so the next still runs.
 */
async function inScope<T>(
  options: ScaleOptions,
  label: string,
  lastResort: LastResort,
  run: (scope: Scope, progress: (m: string) => void) => Promise<T>,
): Promise<T | Error> {
  const progress = (m: string) => options.progress(`${label}: ${m}`);
  const scope = new Scope(lastResort);
  try {
    return await run(scope, progress);
  } catch (error) {
    if (options.signal.aborted) throw abortError(options.signal);
    progress(`ERROR ${describe(error)}`);
    return error instanceof Error ? error : new Error(String(error));
  } finally {
    for (const failure of await scope.close()) progress(`cleanup: ${failure.message}`);
  }
}

function measureProcesses(
  options: ScaleOptions,
  processes: number,
  lastResort: LastResort,
): Promise<ProcessScaleResult | Error> {
  return inScope(options, `processes ${processes}`, lastResort, (scope, progress) =>
    runProcessScale({
      processes,
      idleMs: options.idleSeconds * 1000,
      convergeTimeoutMs: options.convergeSeconds * 1000,
      ...(options.crashSeconds !== undefined ? { crash: { timeoutMs: options.crashSeconds * 1000 } } : {}),
      repoRoot: findRepoRoot(),
      scope,
      signal: options.signal,
      progress,
    }),
  );
}

/** The transport floor, with SPEC 4's default heartbeat period and observers. */
function measureFloor(options: ScaleOptions, lastResort: LastResort): Promise<FloorResult[] | Error> {
  const defaults = defaultTimings();
  return inScope(options, "floor", lastResort, (scope, progress) =>
    runFloor({
      processes: options.floorProcesses,
      idleMs: options.idleSeconds * 1000,
      periodMs: defaults.heartbeatMs,
      observers: defaults.observers,
      repoRoot: findRepoRoot(),
      scope,
      signal: options.signal,
      progress,
    }),
  );
}

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
  try {
    return await within(
      options.signal,
      workerOptions.budgetMs + marginMs,
      `the ${nodes}-node simulation`,
      done,
    );
  } finally {
    // Past its time (a start-up longer than the budget, say), it must not run beside the next size.
    if (worker.exitCode === null && worker.signalCode === null) worker.kill("SIGKILL");
  }
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
      name: `${g}/converged-at.wall`,
      group: g,
      value: r.convergedAtWallMs ?? Number.NaN,
      unit: "ms",
      of: "wall, from starting the first node",
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

const describe = (error: unknown) =>
  error instanceof Error ? `${error.name}: ${error.message}` : String(error);

export function renderScaleTable(report: ScaleReport): string {
  return renderResultTable(report.rows, report.notes);
}

// ---- command line ----

function usage(): string {
  return `Usage: npm run scale -- [options]    (or: node dist/bench/scale.js [options])

Measures dvsd with many nodes and prints a table; results also go to
results/scale.json and scale.md, and a line of results/history.jsonl.

  processes  for each size N asked, one after the other: a nats-server of its own
             (monitoring port on loopback) and N real \`dvsd run\` processes with
             default settings. Reports the time from the last spawn to one view
             of all N; over the idle spell that follows, each node's CPU
             (/proc), the messages nats-server received and delivered (its
             /varz in_msgs, out_msgs) in all and per node, and the PARTITION,
             DISCONNECT and MERGE events on dvs.<c>.events.* (false: nobody was
             killed); then each process's RSS against the 80 MB target. Across
             the sizes: largest / smallest median idle CPU per node over the
             sizes from 4 to 64, and of delivered msgs/s per node from 16 to 64
             (≤ 2 is flat), computed from this run.
  floor      the transport floor: F bare nats.js processes (same V8 flags and
             client options as dvsd run) doing only the traffic of SPEC 4's
             default membership settings, a heartbeat every 200 ms heard by
             5 observers, on a nats-server of their own; idle CPU per process
             over the idle spell, in three variants (connected and silent;
             heartbeats each at its own phase; heartbeats in step on the wall
             clock), and dvsd's idle CPU at F processes over the floor's when
             both ran. The least any node on nats.js pays for those defaults.
  sim        N node runtimes on the simulated network and clock, run S simulated
             seconds, each size in a process of its own: wall ms per simulated
             second, when all N first held one view (simulated and wall time),
             heap. A size that does not finish within its wall budget stops
             there and says so; then 100, 250 and 500 nodes (those below the
             smallest asked) are measured too, to show the growth.

Options:
  --processes <n,…>        dvsd process counts, one or a comma-separated list
                           (default ${DEFAULTS.processes})
  --idle-seconds <s>       idle spell after one view: CPU, /varz and false events are
                           measured over it, RSS read at its end (default ${DEFAULTS.idleSeconds})
  --converge-timeout <s>   longest wait for one view of N, per size (default ${DEFAULTS.convergeSeconds})
  --crash                  after the idle spell, SIGKILL the last node (id N) and time,
                           per survivor, its first PARTITION or DISCONNECT of that node:
                           by the event's own \`at\` and by its arrival (p50, max);
                           survivors silent at the timeout are named
  --crash-timeout <s>      how long --crash waits for every survivor (default ${DEFAULTS.crashSeconds})
  --sim-nodes <n,…>        simulated nodes, one size or a comma-separated list
                           (default ${DEFAULTS.simNodes})
  --sim-seconds <s>        simulated seconds per size (default ${DEFAULTS.simSeconds})
  --sim-budget <s>         wall-clock seconds allowed per simulated size (default ${DEFAULTS.simBudgetSeconds})
  --seed <n>               simulation seed (default 1)
  --floor-processes <n>    processes of the transport floor (default ${DEFAULTS.floorProcesses})
  --only <part,…>          processes, floor or sim, or a comma-separated list
                           (default: all three)
  --out <dir>              write the results files there instead of results/
  -h, --help               show this help
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

const sizes = (flag: string, list: string) => list.split(",").map((n) => positiveInt(flag, n.trim(), 0));

async function main(argv: readonly string[]): Promise<number> {
  let parsed: Omit<ScaleOptions, "signal" | "progress"> & { out?: string };
  try {
    const { values } = parseArgs({
      args: [...argv],
      options: {
        processes: { type: "string" },
        "idle-seconds": { type: "string" },
        "converge-timeout": { type: "string" },
        crash: { type: "boolean" },
        "crash-timeout": { type: "string" },
        "sim-nodes": { type: "string" },
        "sim-seconds": { type: "string" },
        "sim-budget": { type: "string" },
        seed: { type: "string" },
        only: { type: "string" },
        "floor-processes": { type: "string" },
        out: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    });
    if (values.help) {
      process.stdout.write(usage());
      return 0;
    }
    const only = values.only?.split(",").map((p) => p.trim());
    const unknown = only?.find((p) => !(PARTS as readonly string[]).includes(p));
    if (unknown !== undefined) {
      throw new UsageError(
        `--only wants processes, floor or sim (or a comma-separated list), not ${JSON.stringify(unknown)}`,
      );
    }
    if (values["crash-timeout"] !== undefined && !values.crash) {
      throw new UsageError("--crash-timeout only applies with --crash");
    }
    parsed = {
      processes: sizes("--processes", values.processes ?? DEFAULTS.processes),
      idleSeconds: positiveInt("--idle-seconds", values["idle-seconds"], DEFAULTS.idleSeconds),
      convergeSeconds: positiveInt(
        "--converge-timeout",
        values["converge-timeout"],
        DEFAULTS.convergeSeconds,
      ),
      ...(values.crash
        ? { crashSeconds: positiveInt("--crash-timeout", values["crash-timeout"], DEFAULTS.crashSeconds) }
        : {}),
      simNodes: sizes("--sim-nodes", values["sim-nodes"] ?? DEFAULTS.simNodes),
      simSeconds: positiveInt("--sim-seconds", values["sim-seconds"], DEFAULTS.simSeconds),
      simBudgetSeconds: positiveInt("--sim-budget", values["sim-budget"], DEFAULTS.simBudgetSeconds),
      seed: positiveInt("--seed", values.seed, 1),
      floorProcesses: positiveInt("--floor-processes", values["floor-processes"], DEFAULTS.floorProcesses),
      ...(only ? { only: only as ScalePart[] } : {}),
      ...(values.out !== undefined ? { out: values.out } : {}),
    };
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n\n${usage()}`);
    return 2;
  }
  const interrupt = abortOnSignals("scale");
  try {
    const started = performance.now();
    const { out, ...options } = parsed;
    const report = await runScale({
      ...options,
      signal: interrupt.signal,
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
    interrupt.dispose();
  }
}

await runIfMain(import.meta.url, main);
