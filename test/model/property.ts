// The cluster property, shared by the vitest suite and the exploration CLI:
// for any setting (seed, 1–2 servers, placement, initial nodes) and any command
// sequence, the real runtimes over the simulated network keep the membership
// invariants of invariants.ts after every command and after healing and a
// quiet period, and every request the tool sent meanwhile settles as
// requestInvariants.ts says.
import fc from "fast-check";
import type { MembershipMachine } from "../../machines/membership.js";
import { commandArbitraries, type MembershipCommand, type TopologyModel } from "./commands.js";
import { type CoverageCounts, MembershipHarness, type ModelConfig, NODE_IDS } from "./harness.js";
import type { GatherMutation } from "./requests.js";

export interface MembershipPropertyOptions {
  /** The membership machine under test (default: production's). */
  readonly machine?: MembershipMachine;
  /** A planted bug in every replication server's gather (default: none). */
  readonly gather?: GatherMutation;
  /** Most commands per run. */
  readonly maxCommands: number;
  /** Replays the commands of one counterexample: the `replayPath` fast-check prints beside them. */
  readonly replayPath?: string;
  /** Called after each run of the predicate (shrinking runs included). */
  readonly onRun?: (passed: boolean, coverage: CoverageCounts | undefined) => void;
}

export const configArbitrary: fc.Arbitrary<ModelConfig> = fc.record({
  seed: fc.integer({ min: 1, max: 0x7fffffff }),
  servers: fc.constantFrom<1 | 2>(1, 2),
  serverOf: fc.array(fc.integer({ min: 0, max: 1 }), {
    minLength: NODE_IDS.length,
    maxLength: NODE_IDS.length,
  }),
  initial: fc.uniqueArray(fc.constantFrom(...NODE_IDS), { minLength: 1, maxLength: 5 }),
  // Observers per node: 1 and 2 split six nodes' watching into a ring; 5 is everyone watching everyone.
  observers: fc.constantFrom(1, 2, 5),
});

export function membershipProperty(options: MembershipPropertyOptions) {
  return fc.asyncProperty(
    configArbitrary,
    fc.commands(commandArbitraries, {
      maxCommands: options.maxCommands,
      size: "max",
      ...(options.replayPath !== undefined ? { replayPath: options.replayPath } : {}),
    }),
    async (config, commands) => {
      let passed = false;
      let harness: MembershipHarness | undefined;
      try {
        const h = new MembershipHarness(config, {
          ...(options.machine ? { machine: options.machine } : {}),
          ...(options.gather ? { gather: options.gather } : {}),
        });
        harness = h;
        await h.begin();
        const model = (): TopologyModel => ({
          servers: config.servers,
          running: new Set(config.initial),
          linkCut: new Set(),
          routeCut: false,
        });
        await fc.asyncModelRun(() => ({ model: model(), real: h }), commands);
        await h.healAndSettle();
        passed = true;
      } finally {
        options.onRun?.(passed, harness?.coverage);
      }
    },
  );
}

export type MembershipRunDetails = fc.RunDetails<[ModelConfig, Iterable<MembershipCommand>]>;

export interface CheckOptions extends MembershipPropertyOptions {
  readonly seed: number;
  readonly numRuns: number;
  /** Replays one counterexample (the path fast-check printed). */
  readonly path?: string;
}

export function checkMembership(options: CheckOptions): Promise<MembershipRunDetails> {
  return fc.check(membershipProperty(options), {
    seed: options.seed,
    numRuns: options.numRuns,
    ...(options.path !== undefined ? { path: options.path } : {}),
  });
}

/** A failure as a human reads it: how to replay, the shrunk commands, and the trace of the failing run. */
export function describeFailure(details: MembershipRunDetails): string {
  if (!details.failed) return `passed ${details.numRuns} runs (seed ${details.seed})`;
  const commands = details.counterexample ? String(details.counterexample[1]) : "";
  // fc.commands needs its own replay path, printed beside the commands, to replay them exactly.
  const replayPath = /replayPath="([^"]*)"/.exec(commands)?.[1];
  const cli = `--seed ${details.seed} --path "${details.counterexamplePath}"${replayPath ? ` --replay-path "${replayPath}"` : ""}`;
  const env = `MODEL_SEED=${details.seed} MODEL_PATH="${details.counterexamplePath}"${
    replayPath ? ` MODEL_REPLAY_PATH="${replayPath}"` : ""
  }`;
  const lines = [
    `cluster property failed after ${details.numRuns} run(s), shrunk ${details.numShrinks} time(s)`,
    `replay: node dist/test/model/cli.js ${cli}`,
    `    or: ${env} npx vitest run test/model/membership.model.test.ts`,
  ];
  if (details.counterexample) {
    lines.push(`setting: ${fc.stringify(details.counterexample[0])}`, `commands: ${commands}`);
  }
  const error = details.errorInstance;
  lines.push("", error instanceof Error ? `${error.name}: ${error.message}` : String(error));
  return lines.join("\n");
}
