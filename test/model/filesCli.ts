// `node dist/test/model/filesCli.js --seed S --runs N [--steps M] [--path P --replay-path R] [--mutation NAME]`:
// long exploration of the file store property outside CI, with progress on
// stderr; prints any counterexample (shrunk, with its trace) and exits 1.
// FILES_MODEL_COMMIT_ONCE=0 only counts a commit recorded as two versions
// instead of failing on it.

import { parseModelArgs } from "./cliArgs.js";
import { checkFiles, describeFilesFailure, plantedBugs } from "./files.js";
import { emptyFilesCoverage, type FilesCoverage } from "./filesHarness.js";

async function main(): Promise<number> {
  const args = parseModelArgs("filesCli.js", plantedBugs, 20);
  if (typeof args === "number") return args;
  const { seed, numRuns, maxCommands, path, replayPath } = args;
  const mutationName = args.mutation?.name;
  const commitOnce = process.env.FILES_MODEL_COMMIT_ONCE !== "0";
  const started = performance.now();
  const elapsed = () => `${((performance.now() - started) / 1000).toFixed(1)} s`;
  console.error(
    `file store model: seed ${seed}, ${numRuns} runs of at most ${maxCommands} commands${
      mutationName ? `, mutation ${mutationName}` : ""
    }${commitOnce ? ", commit ids checked" : ""}${path ? `, replaying path ${path}` : ""}`,
  );
  let runs = 0;
  let failedAt: number | undefined;
  const total: FilesCoverage = emptyFilesCoverage();
  const every = Math.max(1, Math.round(numRuns / 20));
  const details = await checkFiles({
    seed,
    numRuns,
    maxCommands,
    commitOnce,
    ...(args.mutation ? { mutation: args.mutation.value.mutation } : {}),
    ...(args.mutation?.value.config ? { config: args.mutation.value.config } : {}),
    ...(args.mutation?.value.commands ? { commands: args.mutation.value.commands } : {}),
    ...(path !== undefined ? { path } : {}),
    ...(replayPath !== undefined ? { replayPath } : {}),
    onRun: (passed, coverage) => {
      runs++;
      if (failedAt === undefined && coverage) {
        for (const k of Object.keys(total) as (keyof FilesCoverage)[])
          total[k] = k === "largest" ? Math.max(total[k], coverage[k]) : total[k] + coverage[k];
      }
      if (failedAt === undefined && !passed) {
        failedAt = runs;
        console.error(`  run ${runs} failed after ${elapsed()}; shrinking...`);
      } else if (failedAt === undefined && runs % every === 0) {
        console.error(`  ${runs}/${numRuns} runs passed (${elapsed()})`);
      } else if (failedAt !== undefined && (runs - failedAt) % 20 === 0) {
        console.error(`  ${runs - failedAt} shrinking runs (${elapsed()})`);
      }
    },
  });
  console.log(
    describeFilesFailure(details, {
      maxCommands,
      commitOnce,
      ...(mutationName !== undefined ? { mutation: mutationName } : {}),
    }),
  );
  const t = total;
  console.error(
    `coverage before any failure: ${t.steps} steps, ${t.checks} simulated events checked; ` +
      `${t.commits} commits (${t.successes} SUCCESS, ${t.commitErrors} failed, largest ${t.largest} B), ` +
      `${t.updates} updates (${t.fetched} returned a file, ${t.updateErrors} failed), ` +
      `${t.concurrent} calls ended with another on the same file in flight; ` +
      `${t.recorded} catalog writes (${t.recordedAgain} commits recorded as a second version), ${t.coordinatorChanges} coordinators, ${t.wipes} disks wiped; ` +
      `final checks: ${t.served} files required and served (${t.underReplicated} on fewer disks than the replication factor, ${t.obsoleteCopies} obsolete copies left), ${t.excused} excused (every holder wiped)`,
  );
  console.error(`done in ${elapsed()}`);
  return details.failed ? 1 : 0;
}

process.exitCode = await main();
