// `npm run model -- --seed S --runs N [--steps M] [--path P --replay-path R] [--mutation NAME]`:
// long exploration of the cluster property (membership and requests) outside
// CI, with progress on stderr; prints any counterexample (shrunk, with its
// trace) and exits 1.
import { parseArgs } from "node:util";
import type { CoverageCounts, ModelMutation } from "./harness.js";
import { mutations } from "./mutations.js";
import { checkMembership, describeFailure } from "./property.js";
import { emptyRequestCoverage } from "./requests.js";

const usage = `usage: node dist/test/model/cli.js [--seed S] [--runs N] [--steps M] [--path P --replay-path R] [--mutation ${[...mutations.keys()].join("|")}]`;

function main(): Promise<number> | number {
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
  const maxCommands = Number(values.steps ?? 25);
  const mutation = values.mutation !== undefined ? mutations.get(values.mutation) : undefined;
  if (![seed, numRuns, maxCommands].every(Number.isSafeInteger) || numRuns < 1 || maxCommands < 1) {
    console.error(`--seed, --runs and --steps take positive integers\n${usage}`);
    return 2;
  }
  if (values.mutation !== undefined && !mutation) {
    console.error(`unknown mutation ${values.mutation}\n${usage}`);
    return 2;
  }
  return explore({
    seed,
    numRuns,
    maxCommands,
    mutation: mutation ?? {},
    path: values.path,
    replayPath: values["replay-path"],
  });
}

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
    `coverage before any failure: ${total.steps} steps, ${total.events} events, ${total.quietChecks} quiet-period checks (${total.splitChecks} with a partition), ${total.leaveReceivers} leave receivers checked`,
  );
  console.error(
    `requests: ${total.requests} sent; ${total.allReplies} ALL replies (${total.timedOutEntries} ETIMEDOUT and ${total.hostDownEntries} EHOSTDOWN entries), ${total.unicastReplies} unicast replies, ${total.quietReplies} checked against the quiet-cluster bounds, ${total.unanswered} unanswered (each excused by a crash, a cut or no node to take it)`,
  );
  console.error(`done in ${elapsed()}`);
  return details.failed ? 1 : 0;
}

process.exitCode = await main();
