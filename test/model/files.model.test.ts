// Model-based property test of the replicated file store (SPEC 8, 9) over the
// simulated network and store. CI defaults: 40 runs of at most 20 commands
// from a fixed seed, about 9 s on one core when nothing fails (each run checks
// the catalog after every simulated event; a failure adds its shrinking).
// FILES_MODEL_SEED, FILES_MODEL_RUNS and FILES_MODEL_STEPS override them to
// explore; FILES_MODEL_PATH and FILES_MODEL_REPLAY_PATH replay a
// counterexample, as its report says; FILES_MODEL_COMMIT_ONCE=0 only counts a
// commit recorded as two versions instead of failing on it. Longer explorations: `npm run model:files
// -- --seed S --runs N`.
import { describe, expect, it } from "vitest";
import { checkFiles, describeFilesFailure } from "./files.js";

const env = process.env;
const seed = Number(env.FILES_MODEL_SEED ?? 20_250_802);
const numRuns = Number(env.FILES_MODEL_RUNS ?? 40);
const maxCommands = Number(env.FILES_MODEL_STEPS ?? 20);
// A commit recorded as a second version fails the run (FILES_MODEL_COMMIT_ONCE=0 only counts it).
const commitOnce = env.FILES_MODEL_COMMIT_ONCE !== "0";

describe("file store model", () => {
  it("acknowledged versions are never lost, reordered or torn, and updates never go back, under crashes, wiped disks, partitions and coordinator changes", async () => {
    const details = await checkFiles({
      seed,
      numRuns,
      maxCommands,
      commitOnce,
      ...(env.FILES_MODEL_PATH ? { path: env.FILES_MODEL_PATH } : {}),
      ...(env.FILES_MODEL_REPLAY_PATH ? { replayPath: env.FILES_MODEL_REPLAY_PATH } : {}),
    });
    expect(details.failed, describeFilesFailure(details, { maxCommands, commitOnce })).toBe(false);
  }, 300_000);
});
