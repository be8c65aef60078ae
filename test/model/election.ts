// The election property (SPEC 7, 9), shared by the vitest suites and the
// exploration CLI: for any setting (seed, placement of five nodes on three
// servers, the passive one, the nodes up at time 0) and any sequence of
// crashes, graceful stops, restarts, cut links and routes, isolated servers,
// delays, FAILED reports and time steps, the real runtimes keep the invariants of electionInvariants.ts at
// every simulated event, and agree on one coordinator after each heal and
// the stabilisation bound. Also the planted bugs the property must catch.
import fc from "fast-check";
import { defaultElectionTimings } from "../../machines/electionTimings.js";
import type { NodeId } from "../../protocol/messages.js";
import { CasConflictError } from "../../transport/errors.js";
import { commandArbitraries, type ElectionCommand, initialModel } from "./electionCommands.js";
import {
  type ElectionConfig,
  type ElectionCoverage,
  ElectionHarness,
  type ElectionMutation,
  NODE_IDS,
  type StoreMutation,
} from "./electionHarness.js";

export interface ElectionPropertyOptions {
  /** Planted bugs (default: none). */
  readonly mutation?: ElectionMutation;
  /** The settings to draw from (default: electionConfigArbitrary). */
  readonly config?: fc.Arbitrary<ElectionConfig>;
  /** Most commands per run. */
  readonly maxCommands: number;
  /** Replays the commands of one counterexample: the `replayPath` fast-check prints beside them. */
  readonly replayPath?: string;
  /** Called after each run of the predicate (shrinking runs included). */
  readonly onRun?: (passed: boolean, coverage: ElectionCoverage | undefined) => void;
}

/** Every server gets a node (the other two go anywhere), so a cut route can leave nodes on a minority side. */
const placement: fc.Arbitrary<number[]> = fc
  .tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 }))
  .chain(([x, y]) => fc.shuffledSubarray([0, 1, 2, x, y], { minLength: 5, maxLength: 5 }));

export const electionConfigArbitrary: fc.Arbitrary<ElectionConfig> = fc.record({
  seed: fc.integer({ min: 1, max: 0x7fffffff }),
  serverOf: placement,
  passive: fc.constantFrom<NodeId>(...NODE_IDS),
  initial: fc.uniqueArray(fc.constantFrom<NodeId>(...NODE_IDS), { minLength: 1, maxLength: 5 }),
  // The default 1..3 ms most often; jitter up to a few ticks reorders watch deliveries, reads and answers.
  latencyMaxMs: fc.constantFrom(3, 3, 20, 60),
});

export function electionProperty(options: ElectionPropertyOptions) {
  return fc.asyncProperty(
    options.config ?? electionConfigArbitrary,
    fc.commands(commandArbitraries, {
      maxCommands: options.maxCommands,
      size: "max",
      ...(options.replayPath !== undefined ? { replayPath: options.replayPath } : {}),
    }),
    async (config, commands) => {
      let passed = false;
      let harness: ElectionHarness | undefined;
      try {
        const h = new ElectionHarness(config, options.mutation);
        harness = h;
        await h.begin();
        await fc.asyncModelRun(() => ({ model: initialModel(config.initial), real: h }), commands);
        await h.healAndWait();
        passed = true;
      } finally {
        options.onRun?.(passed, harness?.coverage);
      }
    },
  );
}

export type ElectionRunDetails = fc.RunDetails<[ElectionConfig, Iterable<ElectionCommand>]>;

export interface ElectionCheckOptions extends ElectionPropertyOptions {
  readonly seed: number;
  readonly numRuns: number;
  /** Replays one counterexample (the path fast-check printed). */
  readonly path?: string;
}

export function checkElection(options: ElectionCheckOptions): Promise<ElectionRunDetails> {
  return fc.check(electionProperty(options), {
    seed: options.seed,
    numRuns: options.numRuns,
    ...(options.path !== undefined ? { path: options.path } : {}),
  });
}

/** A failure as a human reads it: how to replay, the shrunk setting and commands, and the trace of the failing run. */
export function describeElectionFailure(
  details: ElectionRunDetails,
  run: { readonly maxCommands: number; readonly mutation?: string },
): string {
  const { maxCommands, mutation } = run;
  if (!details.failed) return `passed ${details.numRuns} runs (seed ${details.seed})`;
  const commands = details.counterexample ? String(details.counterexample[1]) : "";
  // fc.commands needs its own replay path, printed beside the commands, to replay them exactly.
  const replayPath = /replayPath="([^"]*)"/.exec(commands)?.[1];
  // The commands arbitrary depends on maxCommands: a replay needs the same.
  const cli = `--seed ${details.seed} --steps ${maxCommands} --path "${details.counterexamplePath}"${
    replayPath ? ` --replay-path "${replayPath}"` : ""
  }${mutation ? ` --mutation ${mutation}` : ""}`;
  const env = `ELECTION_MODEL_SEED=${details.seed} ELECTION_MODEL_STEPS=${maxCommands} ELECTION_MODEL_PATH="${details.counterexamplePath}"${
    replayPath ? ` ELECTION_MODEL_REPLAY_PATH="${replayPath}"` : ""
  }`;
  const lines = [
    `election property failed after ${details.numRuns} run(s), shrunk ${details.numShrinks} time(s)`,
    `replay: node dist/test/model/electionCli.js ${cli}`,
    ...(mutation ? [] : [`    or: ${env} npx vitest run test/model/election.model.test.ts`]),
  ];
  if (details.counterexample) {
    lines.push(`setting: ${fc.stringify(details.counterexample[0])}`, `commands: ${commands}`);
  }
  const error = details.errorInstance;
  lines.push("", error instanceof Error ? `${error.name}: ${error.message}` : String(error));
  return lines.join("\n");
}

/**
 * A store that overwrites instead of comparing: a write whose expected
 * revision is stale (or a create of a key that exists) is retried against the
 * revision the store holds now, so no writer ever loses. Two candidates that
 * race both win a term.
 */
export const storeWithoutCompareAndSet: StoreMutation = (store, kv) => {
  const overwrite = async (key: string, value: Uint8Array): Promise<number> => {
    for (let attempt = 1; ; attempt++) {
      const current = kv.peek(key);
      try {
        return current === undefined
          ? await store.create(key, value)
          : await store.update(key, value, current.revision);
      } catch (error) {
        if (!(error instanceof CasConflictError) || attempt >= 5) throw error;
      }
    }
  };
  return {
    bucket: store.bucket,
    get: (key) => store.get(key),
    keys: (prefix) => store.keys(prefix),
    create: overwrite,
    update: (key, value) => overwrite(key, value),
    watch: (key, onEntry) => store.watch(key, onEntry),
    close: () => store.close(),
  };
};

/** A coordinator that trusts its lease 300 ms longer than the observers do (marginMs -300 on a 400 ms lease). */
export const leaseOutlivingObservers: ElectionMutation = {
  timings: { ...defaultElectionTimings(), marginMs: -300 },
};

/** A planted bug and the settings it is looked for in (the CLI's `--mutation` replays with the same). */
export interface PlantedBug {
  readonly mutation: ElectionMutation;
  readonly config?: fc.Arbitrary<ElectionConfig>;
}

/** By the name the CLI's `--mutation` takes. */
export const plantedBugs: ReadonlyMap<string, PlantedBug> = new Map<string, PlantedBug>([
  ["no-cas", { mutation: { store: storeWithoutCompareAndSet } }],
  [
    "negative-margin",
    {
      mutation: leaseOutlivingObservers,
      // With every node up, another node is elected while the old lease still runs. (Alone, a
      // node whose lease outlives its own registry's view ends up a worker that never stands
      // again: the agreement invariant, not the one this bug is about.)
      config: electionConfigArbitrary.map((c) => ({ ...c, initial: [...NODE_IDS] })),
    },
  ],
]);
