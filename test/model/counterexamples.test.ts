// Counterexamples the membership property found, shrunk, kept as deterministic
// scenarios: each replays the commands through the model harness, which checks
// every invariant on the way and after healing and a quiet period.
import { describe, expect, it } from "vitest";
import { MembershipHarness } from "./harness.js";

async function replay(initial: number[], commands: (h: MembershipHarness) => Promise<void>): Promise<void> {
  const harness = new MembershipHarness({ seed: 1, servers: 1, serverOf: [], initial });
  await harness.begin();
  await commands(harness);
  await harness.healAndSettle();
}

describe("membership counterexamples found by the model", () => {
  it("a node stopped while it is still starting does not stay in the others' views", async () => {
    // Shrunk from seed 2: start(6), stop(6).
    await expect(
      replay([1], async (h) => {
        await h.start(6);
        await h.stop(6);
      }),
    ).resolves.toBeUndefined();
  });

  it("a node stopped while it waits for its first link does not come back as a member", async () => {
    // Shrunk from seed 3: cutLink(2), start(2), stop(2).
    await expect(
      replay([1], async (h) => {
        await h.cutLink(2);
        await h.start(2);
        await h.advance(100);
        await h.stop(2);
      }),
    ).resolves.toBeUndefined();
  });

  it("a node whose link drops during its join window MERGEs no peer it never announced", async () => {
    // Shrunk from seed 7: start(3), advance(202), cutLink(3).
    await expect(
      replay([1], async (h) => {
        await h.start(3);
        await h.advance(202);
        await h.cutLink(3);
      }),
    ).resolves.toBeUndefined();
  });

  it("a node whose link drops during its join window DISCONNECTs no peer it never announced", async () => {
    // Shrunk from seed 6: start(6), advance(202), crash(1), cutLink(6).
    await expect(
      replay([1], async (h) => {
        await h.start(6);
        await h.advance(202);
        await h.crash(1);
        await h.cutLink(6);
      }),
    ).resolves.toBeUndefined();
  });

  it("an event announced after the link broke but before the node noticed still reaches dvs.<c>.events", async () => {
    // Shrunk from seed 22: start(1), advance(298), cutLink(1), advance(1) — the JOIN falls in the gap.
    await expect(
      replay([5], async (h) => {
        await h.start(1);
        await h.advance(298);
        await h.cutLink(1);
        await h.advance(1);
      }),
    ).resolves.toBeUndefined();
  });
});
