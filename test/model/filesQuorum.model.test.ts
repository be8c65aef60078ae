// The file store model in quorum mode (docs/protocol.md 9.5): the same
// property as files.model.test.ts, every node with membership.quorum on, and
// commands that also split the nodes into a minority that keeps the store and
// a majority that loses it. On top of the file store's invariants, a node
// marked minority records no COMMIT sent while it was marked, and no read is
// refused as read-only. CI: 40 runs of at most 20 commands from a fixed seed,
// and 20 of the split alone (what filesMutations.test.ts's "ignore-minority"
// finds within 10 runs); FILES_QUORUM_SEED and FILES_QUORUM_RUNS override them,
// FILES_QUORUM_PATH and FILES_QUORUM_REPLAY_PATH replay a counterexample of the
// first test (the path and replayPath its report prints).
import { describe, expect, it } from "vitest";
import { checkFiles, describeFilesFailure, filesConfigArbitrary } from "./files.js";
import { minorityArbitraries, quorumArbitraries } from "./filesCommands.js";
import { emptyFilesCoverage, type FilesCoverage } from "./filesHarness.js";
import { threeOnOneServer, withQuorum } from "./filesQuorum.js";

const env = process.env;
const seed = Number(env.FILES_QUORUM_SEED ?? 20_261_207);
const numRuns = Number(env.FILES_QUORUM_RUNS ?? 40);
const maxCommands = 20;
const replay = {
  ...(env.FILES_QUORUM_PATH ? { path: env.FILES_QUORUM_PATH } : {}),
  ...(env.FILES_QUORUM_REPLAY_PATH ? { replayPath: env.FILES_QUORUM_REPLAY_PATH } : {}),
};
/** The report's replay line names files.model.test.ts; this one takes the same path under its own names. */
const replayHere =
  "replay here: FILES_QUORUM_SEED=<seed> FILES_QUORUM_PATH=<path> FILES_QUORUM_REPLAY_PATH=<replayPath> npx vitest run test/model/filesQuorum.model.test.ts";

describe("file store model in quorum mode", () => {
  it("a node in a minority accepts no COMMIT and still answers reads, and acknowledged versions survive, under crashes, splits and heals", async () => {
    const total: FilesCoverage = emptyFilesCoverage();
    let runs = 0;
    const details = await checkFiles({
      seed,
      numRuns,
      maxCommands,
      config: withQuorum(filesConfigArbitrary),
      commands: quorumArbitraries,
      ...replay,
      onRun: (_passed, coverage) => {
        runs++;
        if (coverage === undefined) return;
        total.minorityMarked += coverage.minorityMarked;
        total.minorityRefused += coverage.minorityRefused;
        total.successes += coverage.successes;
      },
    });
    expect(details.failed, `${describeFilesFailure(details, { maxCommands })}\n${replayHere}`).toBe(false);
    if (replay.path !== undefined) return;
    expect(runs).toBe(numRuns);
    // The runs did reach the case: nodes marked themselves minority, and commits were refused as read-only.
    expect(total.minorityMarked).toBeGreaterThan(0);
    expect(total.minorityRefused).toBeGreaterThan(0);
    expect(total.successes).toBeGreaterThan(0);
  }, 300_000);

  it("a minority that keeps the store and its coordinator takes no COMMIT across splits, crashes and heals", async () => {
    const details = await checkFiles({
      seed: seed + 1,
      numRuns: Math.max(1, Math.floor(numRuns / 2)),
      maxCommands,
      config: threeOnOneServer(filesConfigArbitrary),
      commands: minorityArbitraries,
    });
    expect(details.failed, describeFilesFailure(details, { maxCommands })).toBe(false);
  }, 300_000);
});
