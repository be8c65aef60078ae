// The results of a run: judged against their targets, and rendered as the
// terminal table, Markdown, or (as is) JSON; and as the rows of a results file.
import type { ResultRow } from "./results.js";
import type { Measurement, Ratio, Target } from "./row.js";

export type Verdict = "PASS" | "MISS";

export interface JudgedRatio extends Ratio {
  /** Present when the ratio has a target. */
  readonly verdict?: Verdict;
}

interface RowReportBase {
  readonly name: string;
  readonly title: string;
  readonly durationMs: number;
  readonly measurements: readonly Measurement[];
  readonly ratios: readonly JudgedRatio[];
  readonly notes: readonly string[];
}

export type RowReport =
  | (RowReportBase & { readonly status: "ok" })
  | (RowReportBase & {
      readonly status: "error";
      readonly error: { readonly name: string; readonly message: string };
    });

export interface Environment {
  readonly node: string;
  readonly natsServer: string;
  readonly platform: string;
  readonly cpus: number;
  readonly cpuModel: string;
}

export interface BenchReport {
  readonly bench: "dvsd";
  readonly schema: 1;
  readonly quick: boolean;
  readonly startedAt: string;
  readonly durationMs: number;
  readonly environment: Environment;
  readonly rows: readonly RowReport[];
  readonly summary: { readonly pass: number; readonly miss: number; readonly errors: number };
}

export function judge(value: number, target: Target): Verdict {
  if (Number.isNaN(value)) return "MISS";
  return (target.op === "<=" ? value <= target.value : value >= target.value) ? "PASS" : "MISS";
}

export function judgeAll(ratios: readonly Ratio[]): JudgedRatio[] {
  return ratios.map((r) => (r.target ? { ...r, verdict: judge(r.value, r.target) } : r));
}

export function summarizeRows(rows: readonly RowReport[]): BenchReport["summary"] {
  const verdicts = rows.flatMap((r) => r.ratios.map((q) => q.verdict));
  return {
    pass: verdicts.filter((v) => v === "PASS").length,
    miss: verdicts.filter((v) => v === "MISS").length,
    errors: rows.filter((r) => r.status === "error").length,
  };
}

export function formatValue(value: number, unit: string): string {
  if (!Number.isFinite(value)) return "n/a";
  switch (unit) {
    case "us":
      return `${value.toFixed(1)} µs`;
    case "ms":
      return `${value.toFixed(1)} ms`;
    case "req/s":
      return `${Math.round(value).toLocaleString("en-US")} req/s`;
    case "requests":
      return Math.round(value).toLocaleString("en-US");
    default:
      return `${Number(value.toPrecision(4))} ${unit}`;
  }
}

const formatRatio = (value: number) => (Number.isFinite(value) ? `${value.toFixed(2)}×` : "n/a");
const formatTarget = (t: Target | undefined) => (t ? `${t.op === "<=" ? "≤" : "≥"} ${t.value}` : "");

function heading(report: BenchReport): string {
  const e = report.environment;
  return [
    `dvsd bench, ${report.quick ? "quick" : "full"} run of ${report.startedAt}`,
    `node ${e.node}, nats-server ${e.natsServer}, ${e.platform}, ${e.cpus} × ${e.cpuModel}`,
  ].join("\n");
}

/** Plain-text table for the terminal. */
export function renderTable(report: BenchReport): string {
  const out = [heading(report), ""];
  for (const row of report.rows) {
    out.push(`${row.name}: ${row.title} (${(row.durationMs / 1000).toFixed(1)} s)`);
    if (row.status === "error") {
      out.push(`  ERROR ${row.error.name}: ${row.error.message}`, "");
      continue;
    }
    const lines: string[][] = [
      ...row.measurements.map((m) => [m.name, formatValue(m.value, m.unit), "", "", ""]),
      ...row.ratios.map((r) => [
        `ratio ${r.name}`,
        formatRatio(r.value),
        r.of,
        formatTarget(r.target),
        r.verdict ?? "",
      ]),
    ];
    out.push(...columns(lines, [false, true, false, false, false]).map((l) => `  ${l}`));
    for (const note of row.notes) out.push(`  · ${note}`);
    out.push("");
  }
  const s = report.summary;
  out.push(`targets: ${s.pass} PASS, ${s.miss} MISS; rows with errors: ${s.errors}`);
  if (s.miss > 0)
    out.push("(a MISS is reported, not fatal: re-run on a quiet machine before drawing conclusions)");
  return out.join("\n");
}

/** Pads cells to aligned columns; `right[i]` right-aligns column i. Trailing blanks are trimmed. */
export function columns(rows: readonly string[][], right: readonly boolean[]): string[] {
  const widths: number[] = [];
  for (const row of rows) {
    for (const [i, cell] of row.entries()) widths[i] = Math.max(widths[i] ?? 0, cell.length);
  }
  return rows.map((row) =>
    row
      .map((cell, i) => (right[i] ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd(),
  );
}

/**
 * The rows of a results file (bench/results.ts): each measurement and each
 * ratio of each bench row, named `<row>/<measurement>` and `<row>/ratio <ratio>`
 * and grouped by the bench row; a row that failed is one row with its error.
 * Titles, durations and notes go in `resultsMeta`.
 */
export function toResultRows(report: BenchReport): ResultRow[] {
  return report.rows.flatMap((row): ResultRow[] => {
    if (row.status === "error") {
      return [{ name: row.name, group: row.name, value: Number.NaN, unit: "", error: row.error }];
    }
    return [
      ...row.measurements.map((m) => ({
        name: `${row.name}/${m.name}`,
        group: row.name,
        value: m.value,
        unit: m.unit,
      })),
      ...row.ratios.map((r) => ({
        name: `${row.name}/ratio ${r.name}`,
        group: row.name,
        value: r.value,
        unit: "×",
        of: r.of,
        ...(r.target ? { target: r.target } : {}),
        ...(r.verdict ? { verdict: r.verdict } : {}),
      })),
    ];
  });
}

/** What a results file keeps of the report besides its rows. */
export function resultsMeta(report: BenchReport): Record<string, unknown> {
  return {
    quick: report.quick,
    startedAt: report.startedAt,
    durationMs: report.durationMs,
    environment: report.environment,
    summary: report.summary,
    benchRows: report.rows.map((r) => ({
      name: r.name,
      title: r.title,
      status: r.status,
      durationMs: r.durationMs,
      notes: r.notes,
    })),
  };
}
