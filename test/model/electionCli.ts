// `node dist/test/model/electionCli.js --seed S --runs N [--steps M] [--path P --replay-path R] [--mutation NAME]`:
// long exploration of the election property outside CI, with progress on
// stderr; prints any counterexample (shrunk, with its trace) and exits 1.

import { parseModelArgs } from "./cliArgs.js";
import { checkElection, describeElectionFailure, plantedBugs } from "./election.js";
import { type ElectionCoverage, emptyElectionCoverage } from "./electionHarness.js";

async function main(): Promise<number> {
  const args = parseModelArgs("electionCli.js", plantedBugs, 20);
  if (typeof args === "number") return args;
  const { seed, numRuns, maxCommands, path, replayPath } = args;
  const planted = args.mutation?.value;
  const mutationName = args.mutation?.name;
  const started = performance.now();
  const elapsed = () => `${((performance.now() - started) / 1000).toFixed(1)} s`;
  console.error(
    `election model: seed ${seed}, ${numRuns} runs of at most ${maxCommands} commands${
      mutationName ? `, mutation ${mutationName}` : ""
    }${path ? `, replaying path ${path}` : ""}`,
  );
  let runs = 0;
  let failedAt: number | undefined;
  const total: ElectionCoverage = emptyElectionCoverage();
  const every = Math.max(1, Math.round(numRuns / 20));
  const details = await checkElection({
    seed,
    numRuns,
    maxCommands,
    ...(planted ? { mutation: planted.mutation } : {}),
    ...(planted?.config ? { config: planted.config } : {}),
    ...(path !== undefined ? { path } : {}),
    ...(replayPath !== undefined ? { replayPath } : {}),
    onRun: (passed, coverage) => {
      runs++;
      if (failedAt === undefined && coverage) {
        for (const k of [
          "steps",
          "checks",
          "terms",
          "elected",
          "electedDuringFaults",
          "heals",
          "failedReports",
        ] as const)
          total[k] += coverage[k];
        total.slowestAgreementMs = Math.max(total.slowestAgreementMs, coverage.slowestAgreementMs);
      }
      if (failedAt === undefined && !passed) {
        failedAt = runs;
        console.error(`  run ${runs} failed after ${elapsed()}; shrinking...`);
      } else if (failedAt === undefined && runs % every === 0) {
        console.error(`  ${runs}/${numRuns} runs passed (${elapsed()})`);
      } else if (failedAt !== undefined && (runs - failedAt) % 100 === 0) {
        console.error(`  ${runs - failedAt} shrinking runs (${elapsed()})`);
      }
    },
  });
  console.log(
    describeElectionFailure(details, {
      maxCommands,
      ...(mutationName !== undefined ? { mutation: mutationName } : {}),
    }),
  );
  console.error(
    `coverage before any failure: ${total.steps} steps, ${total.checks} simulated events checked, ${total.terms} terms granted, ${total.elected} elections (${total.electedDuringFaults} with a fault on), ${total.failedReports} FAILED reports, ${total.heals} heals (slowest agreement ${total.slowestAgreementMs} ms after a heal)`,
  );
  console.error(`done in ${elapsed()}`);
  return details.failed ? 1 : 0;
}

process.exitCode = await main();
