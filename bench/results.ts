// Results files, so that a run's numbers can be compared across commits:
// `<dir>/<name>.json` (the run, with the commit it measured), `<dir>/<name>.md`
// (a table of its rows) and one line per run appended to `<dir>/history.jsonl`.
// Used by `npm run bench`, `npm run scale` and the chaos runner.
import { spawnSync } from "node:child_process";
import { appendFileSync, mkdirSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join, resolve } from "node:path";
import { BenchError } from "./errors.js";
import { findRepoRoot } from "./repoRoot.js";
import { columns, judge, type Verdict } from "./report.js";
import type { Target } from "./row.js";

/**
 * One measured number. A bench row becomes several: one per measurement
 * (`name`, `value`, `unit`) and one per ratio (`value` in "×", with `of`,
 * `target` and `verdict`), grouped by the bench row's name.
 */
export interface ResultRow {
  /** Stable across runs: the key a comparison matches on, e.g. "rqst-latency/ours.p50". */
  readonly name: string;
  /** Non-finite values (NaN: not measured) are written as null in JSON. */
  readonly value: number;
  /** "ms", "MB", "×", "req/s", … */
  readonly unit: string;
  /** What the row belongs to: the bench row, the chaos scenario, the scale part. */
  readonly group?: string;
  /** Where the number comes from, e.g. "ours.p50 / raw.p50". */
  readonly of?: string;
  /** In the unit of `value`. */
  readonly target?: Target;
  /** `value / target.value`; computed from the target when absent. ≤ 1 passes a "<=" target. */
  readonly ratio?: number;
  /** Judged from `value` and `target` when absent. */
  readonly verdict?: Verdict;
  /** The row could not be measured. */
  readonly error?: { readonly name: string; readonly message: string };
}

export interface ResultsRun {
  /** The file names' stem: letters, digits, `.`, `_` and `-`. */
  readonly name: string;
  readonly rows: readonly ResultRow[];
  readonly meta?: Record<string, unknown>;
}

/** What `<name>.json` holds, and each line of history.jsonl. */
export interface ResultsDocument {
  readonly schema: 1;
  readonly name: string;
  /** ISO 8601, when the results were written. */
  readonly date: string;
  /** `git rev-parse --short HEAD`, or "unknown" outside a work tree. */
  readonly commit: string;
  /** Uncommitted changes (untracked files included) when measured; null when git could not tell. */
  readonly dirty: boolean | null;
  readonly node: string;
  readonly cpus: number;
  readonly rows: readonly ResultRow[];
  readonly meta: Record<string, unknown>;
}

export interface WrittenResults {
  readonly json: string;
  readonly markdown: string;
  readonly history: string;
}

/** Writes `<dir>/<name>.json` and `<dir>/<name>.md` and appends the run to `<dir>/history.jsonl`. */
export function writeResults(run: ResultsRun, options: { dir?: string } = {}): WrittenResults {
  if (!/^[\w.-]+$/.test(run.name) || run.name.startsWith(".")) {
    throw new BenchError(`results name ${JSON.stringify(run.name)} is not a plain file name`);
  }
  const root = findRepoRoot();
  const dir = options.dir === undefined ? join(root, "results") : resolve(options.dir);
  const git = gitState(root);
  const doc: ResultsDocument = {
    schema: 1,
    name: run.name,
    date: new Date().toISOString(),
    commit: git.commit,
    dirty: git.dirty,
    node: process.version,
    cpus: cpus().length,
    rows: run.rows.map(judgeResultRow),
    meta: run.meta ?? {},
  };
  mkdirSync(dir, { recursive: true });
  const written = {
    json: join(dir, `${run.name}.json`),
    markdown: join(dir, `${run.name}.md`),
    history: join(dir, "history.jsonl"),
  };
  writeFileSync(written.json, `${JSON.stringify(doc, null, 2)}\n`);
  writeFileSync(written.markdown, renderResultsMarkdown(doc));
  // One write of one line: concurrent runs append whole lines.
  appendFileSync(written.history, `${JSON.stringify(doc)}\n`);
  return written;
}

/** The row with its `ratio` and `verdict` filled in from its target (as written to the files). */
export function judgeResultRow(row: ResultRow): ResultRow {
  if (!row.target) return row;
  const ratio = row.ratio ?? (row.target.value !== 0 ? row.value / row.target.value : Number.NaN);
  return { ...row, ratio, verdict: row.verdict ?? judge(row.value, row.target) };
}

function gitState(cwd: string): { commit: string; dirty: boolean | null } {
  const git = (...args: string[]) => {
    const r = spawnSync("git", args, { cwd, encoding: "utf8", timeout: 5_000 });
    return r.status === 0 ? r.stdout.trim() : undefined;
  };
  const commit = git("rev-parse", "--short", "HEAD");
  if (commit === undefined) return { commit: "unknown", dirty: null };
  const status = git("status", "--porcelain");
  return { commit, dirty: status === undefined ? null : status.length > 0 };
}

/** `<name>.md`: a heading naming the commit, then one table line per row. */
export function renderResultsMarkdown(doc: ResultsDocument): string {
  const commit = `${doc.commit}${doc.dirty ? " (dirty)" : ""}`;
  const out = [
    `# ${doc.name}`,
    "",
    `${doc.date}, commit ${commit}, node ${doc.node}, ${doc.cpus} CPUs`,
    "",
    "| row | value | unit | target | of target | verdict |",
    "|---|---:|---|---|---:|---|",
  ];
  for (const r of doc.rows) out.push(`| ${resultCells(r).map(cell).join(" | ")} |`);
  out.push("");
  return out.join("\n");
}

/** The cells of one table line: row, value, unit, target, of target, verdict (a judged row). */
export function resultCells(r: ResultRow): string[] {
  const target = r.target ? `${r.target.op === "<=" ? "≤" : "≥"} ${r.target.value}` : "";
  const ratio = r.ratio === undefined ? "" : Number.isFinite(r.ratio) ? `${r.ratio.toFixed(2)}×` : "n/a";
  const verdict = r.error ? `ERROR ${r.error.name}: ${r.error.message}` : (r.verdict ?? "");
  return [r.name, number(r.value), r.unit, target, ratio, verdict];
}

/** A judged run as the commands print it: one aligned line per row, then the notes. */
export function renderResultTable(rows: readonly ResultRow[], notes: readonly string[]): string {
  const lines = columns(
    [["row", "value", "unit", "target", "of target", "verdict"], ...rows.map(resultCells)],
    [false, true, false, false, true, false],
  );
  return [...lines, "", ...notes.map((n) => `· ${n}`)].join("\n");
}

function number(value: number): string {
  if (!Number.isFinite(value)) return "n/a";
  if (Math.abs(value) >= 1000) return Math.round(value).toLocaleString("en-US");
  return String(Number(value.toPrecision(4)));
}

const cell = (text: string) => text.replaceAll("|", "\\|").replaceAll("\n", " ");

/** The row of a part that could not be measured: its error, no value. */
export function errorRow(group: string, error: unknown): ResultRow {
  const e = error instanceof Error ? error : new Error(String(error));
  return { name: group, group, value: Number.NaN, unit: "", error: { name: e.name, message: e.message } };
}
