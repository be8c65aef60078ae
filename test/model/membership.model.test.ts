// Model-based property test of membership and requests (SPEC 3.1, 4, 5, 9)
// over the simulated network. CI defaults: 50 runs of at most 25 commands
// from a fixed seed, about 2 s on two cores when nothing fails (shrinking a
// failure adds a few seconds). MODEL_SEED, MODEL_RUNS and MODEL_STEPS override
// them to explore; MODEL_PATH and MODEL_REPLAY_PATH replay a counterexample,
// as its report says.
import { describe, expect, it } from "vitest";
import { checkMembership, describeFailure } from "./property.js";

const env = process.env;
const seed = Number(env.MODEL_SEED ?? 20_250_601);
const numRuns = Number(env.MODEL_RUNS ?? 50);
const maxCommands = Number(env.MODEL_STEPS ?? 25);

describe("membership model", () => {
  it("real nodes over a simulated network keep the membership invariants and answer every request under crashes, leaves and partitions", async () => {
    const details = await checkMembership({
      seed,
      numRuns,
      maxCommands,
      ...(env.MODEL_PATH ? { path: env.MODEL_PATH } : {}),
      ...(env.MODEL_REPLAY_PATH ? { replayPath: env.MODEL_REPLAY_PATH } : {}),
    });
    expect(details.failed, describeFailure(details)).toBe(false);
  }, 120_000);
});
