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

  it("a repair's write of a file's holders never undoes a commit's: the counterexample of nats-server 2.9's racy compare-and-set (seed 2)", async () => {
    // Two commits of a.txt, a power cut of server 1 (a holder's copy gone), a third commit: the repair of
    // v2 and the commit of v3 wrote the record within one Raft round, and both compare-and-sets passed.
    const replay = { maxCommands: 20, commitOnce: true };
    const details = await checkFiles({
      seed: 2,
      numRuns: 1,
      ...replay,
      path: "8:0:3:3:3:6:6:10:15:17:2:16:16:18:18:19:12:0:12:11:11:16:13:17:11:16:16:13:14:14:14",
      replayPath: "EAJA//l:1B",
    });
    expect(details.failed, describeFilesFailure(details, replay)).toBe(false);
  }, 60_000);
});
