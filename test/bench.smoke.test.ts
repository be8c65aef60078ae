// The benchmark harness runs end to end on small samples: every row completes
// without error and reports its ratios (the figures themselves are not judged here).
import { describe, expect, it } from "vitest";
import { runBench } from "../bench/run.js";

describe("npm run bench", () => {
  it("runs every row in quick mode and reports ratios without errors", async () => {
    const report = await runBench({ quick: true });
    expect(report.summary.errors).toBe(0);
    const names = report.rows.map((r) => r.name);
    expect(names).toEqual(expect.arrayContaining(["rqst-latency", "rqst-throughput", "rqst-all"]));
    for (const row of report.rows) {
      expect(row.status).toBe("ok");
      expect(row.ratios?.length).toBeGreaterThan(0);
      for (const r of row.ratios ?? []) expect(Number.isFinite(r.value) && r.value > 0).toBe(true);
    }
  }, 150_000);
});
