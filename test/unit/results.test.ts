// Results files (bench/results.ts): what `npm run bench`, `npm run scale` and
// `npm run chaos` leave behind so two commits' numbers can be compared.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { BenchError } from "../../bench/errors.js";
import { type ResultsDocument, writeResults } from "../../bench/results.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const scratch = () => {
  const d = mkdtempSync(join(tmpdir(), "dvs-results-"));
  dirs.push(d);
  return d;
};

describe("results files", () => {
  it("write the run with its commit, judge rows against their targets, and append to the history", () => {
    const dir = scratch();
    const rows = [
      { name: "rss.max", value: 120, unit: "MiB", target: { op: "<=" as const, value: 80 } },
      { name: "violations", value: 0, unit: "", target: { op: "<=" as const, value: 0 } },
      { name: "episodes", value: 95, unit: "" },
    ];
    const written = writeResults({ name: "chaos", rows, meta: { seed: 1 } }, { dir });
    const doc = JSON.parse(readFileSync(written.json, "utf8")) as ResultsDocument;
    expect(doc).toMatchObject({ schema: 1, name: "chaos", meta: { seed: 1 } });
    expect(doc.commit).toMatch(/^([0-9a-f]{4,}|unknown)$/);
    expect(doc.rows[0]).toMatchObject({ ratio: 1.5, verdict: "MISS" });
    expect(doc.rows[1]).toMatchObject({ verdict: "PASS" });
    expect(doc.rows[2]?.verdict).toBeUndefined();
    const table = readFileSync(written.markdown, "utf8");
    expect(table).toContain("| rss.max | 120 | MiB | ≤ 80 | 1.50× | MISS |");
    writeResults({ name: "chaos", rows: rows.slice(2) }, { dir });
    const history = readFileSync(written.history, "utf8").trim().split("\n");
    expect(history.map((l) => (JSON.parse(l) as ResultsDocument).rows.length)).toEqual([3, 1]);
  });

  it("refuse a name that is not a plain file name", () => {
    expect(() => writeResults({ name: "../x", rows: [] }, { dir: scratch() })).toThrow(BenchError);
  });
});
