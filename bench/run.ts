// Entry of `npm run bench`: starts its own nats-server (loopback, free port,
// temporary store), runs the rows of bench/rows in turn, prints a table (or
// one JSON document with --json) and writes results/bench.{json,md} and a
// line of results/history.jsonl (bench/results.ts).
// A missed target is reported, never fatal; only an error exits non-zero.

import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { arch, cpus, platform } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ANY_CLUSTER, DEV_NODE_COUNT, devServerConfig, renderNatsConfig } from "../daemon/natsAccounts.js";
import {
  abortError,
  abortOnSignals,
  createContext,
  type LastResort,
  runLastResort,
  Scope,
} from "./context.js";
import { runIfMain } from "./entry.js";
import { BenchAbortedError, UnknownRowError } from "./errors.js";
import { findRepoRoot } from "./repoRoot.js";
import {
  type BenchReport,
  type Environment,
  judgeAll,
  type RowReport,
  renderTable,
  resultsMeta,
  summarizeRows,
  toResultRows,
} from "./report.js";
import { writeResults } from "./results.js";
import type { BenchRow } from "./row.js";
import { ROWS } from "./rows/index.js";

export interface BenchOptions {
  /** A short smoke run: every row, with small sample sizes. */
  readonly quick: boolean;
  /** Names of the rows to run, in that order; every row when absent. */
  readonly rows?: readonly string[];
  /** Interrupts the run; everything started is released before runBench rejects with BenchAbortedError. */
  readonly signal?: AbortSignal;
  /** Where progress lines go; stderr by default. */
  readonly progress?: (message: string) => void;
  /** V8 flags of the node processes instead of DVSD_NODE_FLAGS (to measure another setting). */
  readonly nodeFlags?: readonly string[];
}

/**
 * Runs the selected rows against a nats-server of its own and returns the
 * judged results. A row that fails is reported with status "error" and the run
 * goes on; unknown row names reject with UnknownRowError before anything starts.
 */
export async function runBench(options: BenchOptions): Promise<BenchReport> {
  const rows = selectRows(options.rows);
  const signal = options.signal ?? new AbortController().signal;
  const progress = options.progress ?? ((message: string) => process.stderr.write(`[bench] ${message}\n`));
  const repoRoot = findRepoRoot();
  // Shared by every scope of the run, so a process that exits abruptly still kills its children.
  const lastResort: LastResort = new Set();
  const onExit = () => runLastResort(lastResort);
  process.on("exit", onExit);
  const runScope = new Scope(lastResort);
  // Each row runs its own cluster name on the one server: the development
  // accounts with node users that follow their id across clusters (never in production).
  const natsConf = join(runScope.tempDir("dvs-bench-conf-"), "nats.conf");
  writeFileSync(natsConf, renderNatsConfig(devServerConfig(DEV_NODE_COUNT, ANY_CLUSTER)));
  const startedAt = new Date();
  const start = performance.now();
  const reports: RowReport[] = [];
  try {
    const server = await runScope.startNatsServer(natsConf);
    progress(`nats-server ${server.pid} on ${server.url}`);
    for (const row of rows) {
      if (signal.aborted) throw abortError(signal);
      progress(`${row.name}: ${options.quick ? "quick" : "full"} run`);
      const scope = new Scope(lastResort);
      const ctx = createContext({
        url: server.url,
        quick: options.quick,
        signal,
        repoRoot,
        natsConf,
        ...(options.nodeFlags ? { nodeFlags: options.nodeFlags } : {}),
        scope,
        progress: (message) => progress(`${row.name}: ${message}`),
      });
      try {
        reports.push(await runRow(row, ctx));
      } finally {
        for (const failure of await scope.close()) progress(`${row.name}: cleanup: ${failure.message}`);
      }
    }
  } finally {
    for (const failure of await runScope.close()) progress(`cleanup: ${failure.message}`);
    process.off("exit", onExit);
  }
  return {
    bench: "dvsd",
    schema: 1,
    quick: options.quick,
    startedAt: startedAt.toISOString(),
    durationMs: Math.round(performance.now() - start),
    environment: environment(),
    rows: reports,
    summary: summarizeRows(reports),
  };
}

async function runRow(row: BenchRow, ctx: ReturnType<typeof createContext>): Promise<RowReport> {
  const start = performance.now();
  const base = { name: row.name, title: row.title };
  try {
    const result = await row.run(ctx);
    return {
      ...base,
      status: "ok",
      durationMs: Math.round(performance.now() - start),
      measurements: result.measurements,
      ratios: judgeAll(result.ratios),
      notes: result.notes ?? [],
    };
  } catch (error) {
    if (ctx.signal.aborted) throw abortError(ctx.signal);
    const e = error instanceof Error ? error : new Error(String(error));
    ctx.progress(`ERROR ${e.name}: ${e.message}`);
    return {
      ...base,
      status: "error",
      durationMs: Math.round(performance.now() - start),
      error: { name: e.name, message: e.message },
      measurements: [],
      ratios: [],
      notes: [],
    };
  }
}

function selectRows(names: readonly string[] | undefined): BenchRow[] {
  if (names === undefined || names.length === 0) return [...ROWS];
  const known = ROWS.map((r) => r.name);
  return names.map((name) => {
    const row = ROWS.find((r) => r.name === name);
    if (!row) throw new UnknownRowError(name, known);
    return row;
  });
}

function environment(): Environment {
  const probe = spawnSync("nats-server", ["--version"], { encoding: "utf8", timeout: 5_000 });
  const cpuList = cpus();
  return {
    node: process.version,
    natsServer: /v\d+\.\d+\.\d+\S*/.exec(probe.stdout ?? "")?.[0] ?? "unknown",
    platform: `${platform()} ${arch()}`,
    cpus: cpuList.length,
    cpuModel: cpuList[0]?.model.trim() ?? "unknown",
  };
}

// ---- command line ----

function usage(): string {
  const rows = ROWS.map((r) => `  ${r.name.padEnd(18)} ${r.title}`).join("\n");
  return `Usage: npm run bench -- [options]    (or: node dist/bench/run.js [options])

Runs the dvsd benchmarks against a nats-server of their own and prints a table.
Results are also written to results/bench.json and bench.md, and appended
to results/history.jsonl (see --out).
Targets (SPEC 10) are shown as PASS/MISS; a MISS never fails the run, an error does.

Options:
  --json          print one JSON document on stdout instead of the table
  --quick         short smoke run (small sample sizes)
  --row <name>    run only this row (repeatable, or comma-separated)
  --out <dir>     write the results files there instead of results/
  --node-flags <flags>
                  V8 flags of the node processes (\`dvsd run\`, the echo responder) instead
                  of daemon/nodeFlags.ts's, space-separated ("" for none): to measure another setting
  -h, --help      show this help

Rows:
${rows}
`;
}

async function main(argv: readonly string[]): Promise<number> {
  let values: {
    json?: boolean;
    quick?: boolean;
    help?: boolean;
    row?: string[];
    out?: string;
    "node-flags"?: string;
  };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        json: { type: "boolean" },
        quick: { type: "boolean" },
        help: { type: "boolean", short: "h" },
        row: { type: "string", multiple: true },
        out: { type: "string" },
        "node-flags": { type: "string" },
      },
      strict: true,
    }));
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n\n${usage()}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(usage());
    return 0;
  }
  const interrupt = abortOnSignals("bench");
  try {
    const rows = values.row
      ?.flatMap((r) => r.split(","))
      .map((r) => r.trim())
      .filter(Boolean);
    const nodeFlags = values["node-flags"]?.split(/\s+/).filter(Boolean);
    const report = await runBench({
      quick: values.quick ?? false,
      signal: interrupt.signal,
      ...(rows ? { rows } : {}),
      ...(nodeFlags ? { nodeFlags } : {}),
    });
    const written = writeResults(
      { name: "bench", rows: toResultRows(report), meta: resultsMeta(report) },
      values.out === undefined ? {} : { dir: values.out },
    );
    process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : `${renderTable(report)}\n`);
    process.stderr.write(
      `[bench] results written to ${written.json}, ${written.markdown} and ${written.history}\n`,
    );
    return report.summary.errors > 0 ? 1 : 0;
  } catch (error) {
    if (error instanceof BenchAbortedError) {
      process.stderr.write(`[bench] ${error.message}\n`);
      return 130;
    }
    const e = error instanceof Error ? error : new Error(String(error));
    process.stderr.write(`[bench] ${e.name}: ${e.message}\n`);
    return 1;
  } finally {
    interrupt.dispose();
  }
}

await runIfMain(import.meta.url, main);
