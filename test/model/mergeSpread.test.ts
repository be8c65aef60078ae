// The MERGE-spread invariant (mergeSpread.ts) on a route heal, the case where
// only observers hear the other side first: production keeps it, and an
// observer that never withdraws its alert breaks it. (The random search of the
// cluster property rarely finds that bug on its own: a hello or a beacon heals
// the view a little later, so only the bound tells the two apart.)
import { describe, expect, it } from "vitest";
import { defaultTimings, type MembershipMachine } from "../../machines/membership.js";
import { SimCluster } from "../../sim/cluster.js";
import { InvariantViolation } from "./invariants.js";
import { MergeSpread } from "./mergeSpread.js";
import { machineThatNeverWithdrawsAlerts } from "./mutations.js";

async function healRoute(machine?: MembershipMachine): Promise<{ spread: MergeSpread; error: unknown }> {
  const timings = { ...defaultTimings(), observers: 1 };
  const c = new SimCluster({
    seed: 3,
    servers: 2,
    timings,
    ...(machine ? { membershipMachine: machine } : {}),
  });
  for (const id of [1, 2, 3, 4, 5, 6]) c.start(id, id % 2);
  await c.advance(1_000);
  c.network.cutRoute(0, 1);
  // Healed just after the leaders' beacons went out: until the next ones, only the observers know.
  await c.advance(2_300);
  const healedAt = c.clock.now();
  c.network.restoreRoute(0, 1);
  const spread = new MergeSpread(timings.heartbeatMs / 4);
  const world = {
    get now() {
      return c.clock.now();
    },
    lastChange: healedAt,
    *contexts() {
      for (const node of c.nodes.values()) if (node.membership) yield node.membership.context;
    },
    together: () => true,
  };
  let error: unknown;
  try {
    for (let t = 0; t < 1_500; t += 10) {
      await c.advance(10);
      spread.verify(c.events, world);
    }
  } catch (e) {
    error = e;
  }
  for (const id of [...c.nodes.keys()]) c.crash(id);
  return { spread, error };
}

describe("an observer's MERGE reaches its component within the bound", () => {
  it("holds after a route heal", async () => {
    const { spread, error } = await healRoute();
    expect(error).toBeUndefined();
    expect(spread.checked).toBeGreaterThan(0);
  });

  it("catches an observer that never withdraws its alert", async () => {
    const { error } = await healRoute(machineThatNeverWithdrawsAlerts);
    expect(error).toBeInstanceOf(InvariantViolation);
    expect((error as InvariantViolation).invariant).toBe(
      "an observer's MERGE reaches its whole component within the bound",
    );
  });
});
