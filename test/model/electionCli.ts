// `node dist/test/model/electionCli.js --seed S --runs N [--steps M] [--path P --replay-path R] [--mutation NAME]`:
// long exploration of the election property outside CI, with progress on
// stderr; prints any counterexample (shrunk, with its trace) and exits 1.
import { parseArgs } from "node:util";
import { checkElection, describeElectionFailure, plantedBugs } from "./election.js";
import { type ElectionCoverage, emptyElectionCoverage } from "./electionHarness.js";

const usage = `usage: node dist/test/model/electionCli.js [--seed S] [--runs N] [--steps M] [--path P --replay-path R] [--mutation ${[
  ...plantedBugs.keys(),
].join("|")}]`;

const parse = () =>
  parseArgs({
    options: {
      seed: { type: "string" },
      runs: { type: "string" },
      steps: { type: "string" },
      path: { type: "string" },
      "replay-path": { type: "string" },
      mutation: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });

async function main(): Promise<number> {
  let values: ReturnType<typeof parse>["values"];
  try {
    values = parse().values;
  } catch (error) {
    console.error(error instanceof Error ? error.message : error, `\n${usage}`);
    return 2;
  }
  if (values.help) {
    console.log(usage);
    return 0;
  }
  const seed = values.seed !== undefined ? Number(values.seed) : Date.now() % 0x7fffffff;
  const numRuns = Number(values.runs ?? 100);
  const maxCommands = Number(values.steps ?? 20);
  const planted = values.mutation !== undefined ? plantedBugs.get(values.mutation) : undefined;
  if (![seed, numRuns, maxCommands].every(Number.isSafeInteger) || numRuns < 1 || maxCommands < 1) {
    console.error(`--seed, --runs and --steps take positive integers\n${usage}`);
    return 2;
  }
  if (values.mutation !== undefined && !planted) {
    console.error(`unknown mutation ${values.mutation}\n${usage}`);
    return 2;
  }

  const started = performance.now();
  const elapsed = () => `${((performance.now() - started) / 1000).toFixed(1)} s`;
  console.error(
    `election model: seed ${seed}, ${numRuns} runs of at most ${maxCommands} commands${
      values.mutation ? `, mutation ${values.mutation}` : ""
    }${values.path ? `, replaying path ${values.path}` : ""}`,
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
    ...(values.path !== undefined ? { path: values.path } : {}),
    ...(values["replay-path"] !== undefined ? { replayPath: values["replay-path"] } : {}),
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
      ...(values.mutation !== undefined ? { mutation: values.mutation } : {}),
    }),
  );
  console.error(
    `coverage before any failure: ${total.steps} steps, ${total.checks} simulated events checked, ${total.terms} terms granted, ${total.elected} elections (${total.electedDuringFaults} with a fault on), ${total.failedReports} FAILED reports, ${total.heals} heals (slowest agreement ${total.slowestAgreementMs} ms after a heal)`,
  );
  console.error(`done in ${elapsed()}`);
  return details.failed ? 1 : 0;
}

process.exitCode = await main();
