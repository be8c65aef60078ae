// A chaos run as results rows (bench/results.ts) and a Markdown table: the
// violations (target 0), the settle times after a heal, and how many
// operations of each kind were answered.
import type { ResultRow } from "../../bench/results.js";
import type { ChaosResult } from "./runner.js";

export function chaosRows(result: ChaosResult): { rows: ResultRow[]; table: string } {
  const settled = result.settles
    .flatMap((s) => (s.settledMs === undefined ? [] : [s.settledMs]))
    .sort((a, b) => a - b);
  const at = (q: number) => quantile(settled, q);
  const views = result.settles
    .flatMap((s) => (s.viewMs === undefined ? [] : [s.viewMs]))
    .sort((a, b) => a - b);
  const streams = result.settles
    .flatMap((s) => (s.streamMs === undefined ? [] : [s.streamMs]))
    .sort((a, b) => a - b);
  // dvsd's part: what the coordinator took once the server's stream was back (0 when it was first).
  const afterStream = result.settles
    .flatMap((s) =>
      s.streamMs === undefined || s.settledMs === undefined ? [] : [Math.max(0, s.settledMs - s.streamMs)],
    )
    .sort((a, b) => a - b);
  const rows: ResultRow[] = [
    {
      group: "chaos",
      name: "violations",
      value: result.violations.length,
      unit: "",
      target: { op: "<=", value: 0 },
    },
    {
      group: "chaos",
      name: "server-defects",
      value: result.serverDefects.length,
      unit: "",
      of: "replica-desync",
    },
    { group: "chaos", name: "episodes", value: result.settles.length, unit: "" },
    {
      group: "chaos",
      name: "settle.p50",
      value: at(0.5),
      unit: "ms",
      of: "heal → one view and one coordinator",
    },
    { group: "chaos", name: "settle.max", value: settled.at(-1) ?? Number.NaN, unit: "ms" },
    { group: "chaos", name: "view.p50", value: quantile(views, 0.5), unit: "ms", of: "heal → one view" },
    { group: "chaos", name: "view.max", value: views.at(-1) ?? Number.NaN, unit: "ms" },
    {
      group: "chaos",
      name: "stream.p50",
      value: quantile(streams, 0.5),
      unit: "ms",
      of: "heal → registry stream has a leader, replicas current (nats-server)",
    },
    { group: "chaos", name: "stream.max", value: streams.at(-1) ?? Number.NaN, unit: "ms" },
    {
      group: "chaos",
      name: "after-stream.p50",
      value: quantile(afterStream, 0.5),
      unit: "ms",
      of: "registry stream ready → one coordinator (dvsd)",
    },
    { group: "chaos", name: "after-stream.max", value: afterStream.at(-1) ?? Number.NaN, unit: "ms" },
    { group: "chaos", name: "elapsed", value: result.elapsedMs / 1000, unit: "s" },
  ];
  for (const [kind, c] of Object.entries(result.counts)) {
    rows.push({ group: "chaos", name: `${kind}.answered`, value: c.ok, unit: "ops" });
    rows.push({ group: "chaos", name: `${kind}.failed`, value: c.failed, unit: "ops" });
  }
  const byKind = new Map<string, number[]>();
  for (const s of result.settles) {
    const kind = s.kind;
    const list = byKind.get(kind) ?? [];
    if (s.settledMs !== undefined) list.push(s.settledMs);
    byKind.set(kind, list);
  }
  const lines = [
    `| fault | episodes | one view p50 / max (ms) | one coordinator p50 / max (ms) | registry stream ready p50 / max (ms) |`,
    `|---|---:|---:|---:|---:|`,
    ...[...byKind.entries()].map(([kind, list]) => {
      const sorted = [...list].sort((a, b) => a - b);
      const mine = result.settles.filter((s) => s.kind === kind);
      const v = mine.flatMap((s) => (s.viewMs === undefined ? [] : [s.viewMs])).sort((a, b) => a - b);
      const st = mine.flatMap((s) => (s.streamMs === undefined ? [] : [s.streamMs])).sort((a, b) => a - b);
      return `| ${kind} | ${mine.length} | ${quantile(v, 0.5)} / ${v.at(-1) ?? "-"} | ${quantile(sorted, 0.5)} / ${sorted.at(-1) ?? "-"} | ${quantile(st, 0.5)} / ${st.at(-1) ?? "-"} |`;
    }),
    "",
    `| operation | answered | failed |`,
    `|---|---:|---:|`,
    ...Object.entries(result.counts).map(([kind, c]) => `| ${kind} | ${c.ok} | ${c.failed} |`),
    "",
    `violations: ${result.violations.length}, nats-server defects: ${result.serverDefects.length}, seed ${result.seed}, schedule ${result.fingerprint}, ${Math.round(result.elapsedMs / 1000)} s`,
  ];
  return { rows, table: lines.join("\n") };
}

/** The q-quantile of ascending `sorted` (NaN when empty). */
function quantile(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}
