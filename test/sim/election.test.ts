// Scenarios of the election over the simulated network (SPEC 7): one
// coordinator, a new one after a crash, none on a side without the store.
import { describe, expect, it } from "vitest";
import { SimCluster } from "../support/simCluster.js";

function coordinators(cluster: SimCluster): number[] {
  return [...cluster.nodes]
    .filter(([, n]) => n.election?.state().term !== null && n.election !== undefined)
    .map(([id]) => id);
}

function whoAll(cluster: SimCluster): string[] {
  return [...cluster.nodes.values()].map((n) => {
    const who = n.election?.state().who;
    return who?.type === "OK" ? `${who.coordinator}@${who.epoch}` : "NOTHING";
  });
}

describe("election over the simulated network", () => {
  it("five nodes agree on one coordinator, and on a new one after it crashes", async () => {
    const cluster = new SimCluster({ seed: 7, election: {} });
    for (const id of [1, 2, 3, 4, 5]) cluster.start(id);
    await cluster.advance(2_000);
    const first = coordinators(cluster);
    expect(first).toHaveLength(1);
    const who = whoAll(cluster);
    expect(new Set(who).size).toBe(1);
    expect(who[0]).toMatch(new RegExp(`^${first[0]}@`));
    cluster.crash(first[0] as number);
    const crashedAt = cluster.clock.now();
    const ok = await cluster.clock.runUntil(() => {
      const w = whoAll(cluster);
      return new Set(w).size === 1 && w[0] !== "NOTHING" && !w[0]?.startsWith(`${first[0]}@`);
    }, 5_000);
    expect(ok).toBe(true);
    expect(cluster.clock.now() - crashedAt).toBeLessThan(1_000);
    await cluster.advance(50);
    expect(coordinators(cluster)).toHaveLength(1);
  });
});
