// The simulated half of `npm run scale` on a small cluster: what it reports is
// what the nodes did (one view of all, when, and that every simulated second ran).
import { describe, expect, it } from "vitest";
import { runSimScale } from "../../bench/scaleSim.js";

const run = (
  nodes: number,
  simSeconds: number,
  budgetMs: number,
  progress: (line: string) => void = () => {},
) => runSimScale({ nodes, simSeconds, seed: 3, budgetMs, signal: new AbortController().signal, progress });

describe("the simulated scale run", () => {
  it("30 nodes started at once hold one view of all 30 once the join window closes, and every simulated second is measured", async () => {
    const progress: string[] = [];
    const r = await run(30, 2, 60_000, (line) => progress.push(line));
    expect(r).toMatchObject({ nodes: 30, finished: true, simSecondsRun: 2, converged: true });
    // The join window is 300 ms with the default 200 ms heartbeat; the check runs every 100 ms.
    expect(r.convergedAtSimMs).toBe(300);
    expect(r.wallMsEachSecond).toHaveLength(2);
    // One JOIN (started) per node, nothing else: all start together and nobody fails.
    expect(r.events).toBe(30);
    expect(progress.at(-1)).toContain("simulated 2/2 s");
  });

  it("stops at the wall budget and says it did not finish", async () => {
    const r = await run(10, 5, 0);
    expect(r.finished).toBe(false);
    expect(r.simSecondsRun).toBeLessThan(5);
  });
});
