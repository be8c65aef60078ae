// `npm run model:processes -- --seed S --runs N [--steps M] [--path P] [--mutation NAME]`:
// long exploration of the process message model (link cuts, route cuts,
// crashes, MIGRATE) outside CI, with progress on stderr; prints any
// counterexample (shrunk, with its trace) and exits 1.
import { parseModelArgs } from "./cliArgs.js";
import { checkProcessMessages, emptyProcessCoverage, type ProcessCoverage } from "./processMessages.js";
import { processMutations } from "./processMutations.js";

async function main(): Promise<number> {
  const args = parseModelArgs("processMessagesCli.js", processMutations, 40);
  if (typeof args === "number") return args;
  const started = performance.now();
  const elapsed = () => `${((performance.now() - started) / 1000).toFixed(1)} s`;
  console.error(
    `process message model: seed ${args.seed}, ${args.numRuns} runs of at most ${args.maxCommands} commands${
      args.mutation ? `, planted bug ${args.mutation.name}` : ""
    }`,
  );
  const total = emptyProcessCoverage();
  let runs = 0;
  let failedAt: number | undefined;
  const every = Math.max(1, Math.round(args.numRuns / 20));
  const details = await checkProcessMessages({
    seed: args.seed,
    numRuns: args.numRuns,
    maxCommands: args.maxCommands,
    ...(args.mutation ? { mutation: args.mutation.value } : {}),
    ...(args.path !== undefined ? { path: args.path } : {}),
    ...(args.replayPath !== undefined ? { replayPath: args.replayPath } : {}),
    onRun: (passed, coverage) => {
      runs++;
      if (failedAt === undefined && coverage) {
        for (const k of Object.keys(total) as (keyof ProcessCoverage)[]) total[k] += coverage[k];
      }
      if (failedAt === undefined && !passed) {
        failedAt = runs;
        console.error(`  run ${runs} failed after ${elapsed()}; shrinking...`);
      } else if (failedAt === undefined && runs % every === 0) {
        console.error(`  ${runs}/${args.numRuns} runs passed (${elapsed()})`);
      }
    },
  });
  if (details.failed) {
    const commands = String(details.counterexample?.[1] ?? "");
    const replay = /replayPath="([^"]*)"/.exec(commands)?.[1];
    console.log(
      `replay: npm run model:processes -- --seed ${details.seed} --steps ${args.maxCommands} --path "${details.counterexamplePath}"${
        replay !== undefined ? ` --replay-path "${replay}"` : ""
      }${args.mutation ? ` --mutation ${args.mutation.name}` : ""}`,
    );
    console.log(commands);
    console.log(
      details.errorInstance instanceof Error ? details.errorInstance.message : details.errorInstance,
    );
  } else {
    console.log(`${details.numRuns} scenarios passed`);
  }
  console.error(
    `coverage before any failure: ${total.sends} SENDs (${total.ok} OK, ${total.errors} errors, ${total.timeouts} unanswered in time), ${total.migrations} MIGRATEs (${total.migrated} done), ${total.crashes} crashes, ${total.linkCuts} link cuts, ${total.routeCuts} route cuts, ${total.resent} frames resent, ${total.gaveUp} given up`,
  );
  console.error(`done in ${elapsed()}`);
  return details.failed ? 1 : 0;
}

process.exitCode = await main();
