// The flags both model CLIs take (cli.ts, electionCli.ts), parsed and checked
// once: seed, runs, steps, a counterexample's path to replay, a planted bug.
import { parseArgs } from "node:util";

export interface ModelArgs<M> {
  readonly seed: number;
  readonly numRuns: number;
  readonly maxCommands: number;
  /** The planted bug's name and value, when --mutation was given. */
  readonly mutation: { readonly name: string; readonly value: M } | undefined;
  readonly path: string | undefined;
  readonly replayPath: string | undefined;
}

/** The parsed flags, or the exit code when they were wrong (2) or asked for help (0); the message is printed. */
export function parseModelArgs<M>(
  script: string,
  mutations: ReadonlyMap<string, M>,
  defaultSteps: number,
): ModelArgs<M> | number {
  const usage = `usage: node dist/test/model/${script} [--seed S] [--runs N] [--steps M] [--path P --replay-path R] [--mutation ${[
    ...mutations.keys(),
  ].join("|")}]`;
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
  const maxCommands = Number(values.steps ?? defaultSteps);
  if (![seed, numRuns, maxCommands].every(Number.isSafeInteger) || numRuns < 1 || maxCommands < 1) {
    console.error(`--seed, --runs and --steps take positive integers\n${usage}`);
    return 2;
  }
  let mutation: ModelArgs<M>["mutation"];
  if (values.mutation !== undefined) {
    const value = mutations.get(values.mutation);
    if (value === undefined) {
      console.error(`unknown mutation ${values.mutation}\n${usage}`);
      return 2;
    }
    mutation = { name: values.mutation, value };
  }
  return { seed, numRuns, maxCommands, mutation, path: values.path, replayPath: values["replay-path"] };
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
