// The benchmark harness runs end to end on small samples: every row completes
// without error and reports its ratios (the figures themselves are not judged
// here); `npm run scale` reads nats-server's /varz and times a crash at every
// survivor with three processes.
import { describe, expect, it } from "vitest";
import { runBench } from "../bench/run.js";
import { runScale } from "../bench/scale.js";
import { flatness } from "../bench/scaleProcessRows.js";

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

describe("npm run scale", () => {
  it("counts what nats-server delivered while idle, hears a SIGKILLed node from every survivor, and measures the transport floor", async () => {
    const report = await runScale({
      processes: [3],
      idleSeconds: 1,
      convergeSeconds: 60,
      crashSeconds: 20,
      simNodes: [],
      simSeconds: 1,
      simBudgetSeconds: 1,
      seed: 1,
      floorProcesses: 3,
      only: ["processes", "floor"],
      signal: new AbortController().signal,
      progress: () => {},
    });
    expect(report.errors).toBe(0);
    const value = (name: string) => report.rows.find((r) => r.name === name)?.value;
    expect(value("processes-3/nats.delivered")).toBeGreaterThan(0);
    expect(value("processes-3/crash.reported")).toBe(2);
    expect(value("processes-3/crash.silent")).toBe(0);
    expect(value("processes-3/crash.received.max")).toBeGreaterThan(0);
    // The floor: silent clients get nothing; with heartbeats each of 3 hears the other 2, 5 times a second.
    expect(value("floor-connected/nats.delivered-per-process")).toBe(0);
    expect(value("floor-heartbeats/nats.delivered-per-process")).toBeGreaterThan(5);
    expect(value("floor-heartbeats/nats.delivered-per-process")).toBeLessThan(15);
    expect(value("floor-heartbeats-aligned/idle-cpu.median")).toBeGreaterThanOrEqual(0);
    expect(value("floor/dvsd-over-floor-3")).toBeGreaterThan(0);
  }, 120_000);

  it("a flatness ratio is the largest over the smallest per-node figure, over the sizes in its range", () => {
    const points = [
      { processes: 2, value: 100 },
      { processes: 4, value: 10 },
      { processes: 16, value: 15 },
      { processes: 64, value: 12 },
      { processes: 100, value: 1 },
    ];
    expect(flatness(points, { from: 4, to: 64 })).toEqual({
      sizes: [4, 16, 64],
      values: [10, 15, 12],
      spread: 1.5,
      growth: 1.2,
    });
    expect(flatness(points, { from: 16, to: 32 })).toBeUndefined();
  });
});
