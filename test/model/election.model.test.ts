// Model-based property test of the election (SPEC 7, 9) over the simulated
// network and store. CI defaults: 200 runs of at most 25 commands from a fixed
// seed, 11 to 14 s on one core when nothing fails (each run checks the
// invariants after every simulated event; a failure adds its shrinking).
// ELECTION_MODEL_SEED,
// ELECTION_MODEL_RUNS and ELECTION_MODEL_STEPS override them to explore;
// ELECTION_MODEL_PATH and ELECTION_MODEL_REPLAY_PATH replay a counterexample,
// as its report says.
import { describe, expect, it } from "vitest";
import { checkElection, describeElectionFailure } from "./election.js";

const env = process.env;
const seed = Number(env.ELECTION_MODEL_SEED ?? 20_250_702);
const numRuns = Number(env.ELECTION_MODEL_RUNS ?? 200);
const maxCommands = Number(env.ELECTION_MODEL_STEPS ?? 25);

describe("election model", () => {
  it("real nodes keep at most one valid coordinator, growing epochs and no minority election, and agree after a heal, under crashes, partitions and delays", async () => {
    const details = await checkElection({
      seed,
      numRuns,
      maxCommands,
      ...(env.ELECTION_MODEL_PATH ? { path: env.ELECTION_MODEL_PATH } : {}),
      ...(env.ELECTION_MODEL_REPLAY_PATH ? { replayPath: env.ELECTION_MODEL_REPLAY_PATH } : {}),
    });
    expect(details.failed, describeElectionFailure(details, { maxCommands })).toBe(false);
  }, 300_000);
});
