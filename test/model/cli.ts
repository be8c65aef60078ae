// `npm run model -- --seed S --runs N [--steps M] [--path P --replay-path R] [--mutation NAME]`:
// long exploration of the cluster property (membership and requests) outside
// CI, with progress on stderr; prints any counterexample (shrunk, with its
// trace) and exits 1.
import { parseModelArgs } from "./cliArgs.js";
import type { CoverageCounts, ModelMutation } from "./harness.js";
import { mutations } from "./mutations.js";
import { checkMembership, describeFailure } from "./property.js";
import { emptyRequestCoverage } from "./requests.js";

function main(): Promise<number> | number {
  const args = parseModelArgs("cli.js", mutations, 25);
  if (typeof args === "number") return args;
  return explore({
    seed: args.seed,
    numRuns: args.numRuns,
    maxCommands: args.maxCommands,
    mutation: args.mutation?.value ?? {},
    path: args.path,
    replayPath: args.replayPath,
  });
}

async function explore(o: {
  seed: number;
  numRuns: number;
  maxCommands: number;
  mutation: ModelMutation;
  path: string | undefined;
  replayPath: string | undefined;
}): Promise<number> {
  const started = performance.now();
  const elapsed = () => `${((performance.now() - started) / 1000).toFixed(1)} s`;
  console.error(
    `cluster model: seed ${o.seed}, ${o.numRuns} runs of at most ${o.maxCommands} commands${
      o.path ? `, replaying path ${o.path}` : ""
    }`,
  );
  let runs = 0;
  let failedAt: number | undefined;
  const total: CoverageCounts = {
    steps: 0,
    quietChecks: 0,
    splitChecks: 0,
    leaveReceivers: 0,
    mergeSpreads: 0,
    events: 0,
    ...emptyRequestCoverage(),
  };
  const every = Math.max(1, Math.round(o.numRuns / 20));
  const details = await checkMembership({
    seed: o.seed,
    numRuns: o.numRuns,
    maxCommands: o.maxCommands,
    ...(o.mutation.machine ? { machine: o.mutation.machine } : {}),
    ...(o.mutation.gather ? { gather: o.mutation.gather } : {}),
    ...(o.path !== undefined ? { path: o.path } : {}),
    ...(o.replayPath !== undefined ? { replayPath: o.replayPath } : {}),
    onRun: (passed, coverage) => {
      runs++;
      if (failedAt === undefined && coverage) {
        for (const k of Object.keys(total) as (keyof CoverageCounts)[]) total[k] += coverage[k];
      }
      if (failedAt === undefined && !passed) {
        failedAt = runs;
        console.error(`  run ${runs} failed after ${elapsed()}; shrinking...`);
      } else if (failedAt === undefined && runs % every === 0) {
        console.error(`  ${runs}/${o.numRuns} runs passed (${elapsed()})`);
      } else if (failedAt !== undefined && (runs - failedAt) % 100 === 0) {
        console.error(`  ${runs - failedAt} shrinking runs (${elapsed()})`);
      }
    },
  });
  console.log(describeFailure(details));
  console.error(
    `coverage before any failure: ${total.steps} steps, ${total.events} events, ${total.quietChecks} quiet-period checks (${total.splitChecks} with a partition), ${total.leaveReceivers} leave receivers checked, ${total.mergeSpreads} observer MERGEs followed by their component`,
  );
  console.error(
    `requests: ${total.requests} sent; ${total.allReplies} ALL replies (${total.timedOutEntries} ETIMEDOUT and ${total.hostDownEntries} EHOSTDOWN entries), ${total.unicastReplies} unicast replies, ${total.quietReplies} checked against the quiet-cluster bounds, ${total.unanswered} unanswered (each excused by a crash, a cut or no node to take it)`,
  );
  console.error(`done in ${elapsed()}`);
  return details.failed ? 1 : 0;
}

process.exitCode = await main();
