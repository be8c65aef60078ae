// The file store property (SPEC 8, 9), shared by the vitest suites and the
// exploration CLI: for any setting (seed, placement of five nodes and two
// clients on three servers, the two passive nodes, the latency) and any
// sequence of commits and updates in flight, crashes, restarts, wiped disks,
// cut links and routes, isolated servers and time steps, the real runtimes
// keep the invariants of filesInvariants.ts as each catalog write happens and
// each call ends, and serve every file's newest recorded version after the
// final heal. Also the planted bugs the property must catch.
import fc from "fast-check";
import { catalogKey } from "../../actors/files/catalog.js";
import { CatalogWrites } from "../../actors/files/catalogWrites.js";
import { MemoryReplicas, SimDisk } from "../../actors/files/memoryReplicas.js";
import type { ReplicaStore, ReplicaWriter } from "../../actors/files/replicaStore.js";
import type { NodeId } from "../../protocol/messages.js";
import type { CasStore } from "../../transport/kv.js";
import {
  callArbitraries,
  commandArbitraries,
  type FilesCommand,
  initialModel,
  minorityArbitraries,
  repairArbitraries,
} from "./filesCommands.js";
import {
  type FilesConfig,
  type FilesCoverage,
  FilesHarness,
  type FilesMutation,
  NODE_IDS,
  type StoreMutation,
} from "./filesHarness.js";
import { ignoresTheMinorityMark, threeOnOneServer } from "./filesQuorum.js";

export interface FilesPropertyOptions {
  /** Planted bugs (default: none). */
  readonly mutation?: FilesMutation;
  /** The settings to draw from (default: filesConfigArbitrary). */
  readonly config?: fc.Arbitrary<FilesConfig>;
  /** The commands to draw from (default: commandArbitraries). */
  readonly commands?: fc.Arbitrary<FilesCommand>[];
  /** Most commands per run. */
  readonly maxCommands: number;
  /** Replays the commands of one counterexample: the `replayPath` fast-check prints beside them. */
  readonly replayPath?: string;
  /** Fail on a commit recorded as a second version (FILES_INVARIANTS.commitOnce); false only counts it. Default true. */
  readonly commitOnce?: boolean;
  /** Called after each run of the predicate (shrinking runs included). */
  readonly onRun?: (passed: boolean, coverage: FilesCoverage | undefined) => void;
}

/** Every server gets a node (the other two go anywhere), so a cut route can leave nodes on a minority side. */
const placement: fc.Arbitrary<number[]> = fc
  .tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 }))
  .chain(([x, y]) => fc.shuffledSubarray([0, 1, 2, x, y], { minLength: 5, maxLength: 5 }));

export const filesConfigArbitrary: fc.Arbitrary<FilesConfig> = fc.record({
  seed: fc.integer({ min: 1, max: 0x7fffffff }),
  serverOf: placement,
  passive: fc.uniqueArray(fc.constantFrom<NodeId>(...NODE_IDS), { minLength: 2, maxLength: 2 }),
  clientServer: fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 2 })),
  // The default 1..3 ms most often; up to 20 or 60 ms reorders answers, reads and catalog writes.
  latencyMaxMs: fc.constantFrom(3, 3, 20, 60),
});

export function filesProperty(options: FilesPropertyOptions) {
  return fc.asyncProperty(
    options.config ?? filesConfigArbitrary,
    fc.commands(options.commands ?? commandArbitraries, {
      maxCommands: options.maxCommands,
      size: "max",
      ...(options.replayPath !== undefined ? { replayPath: options.replayPath } : {}),
    }),
    async (config, commands) => {
      let passed = false;
      let harness: FilesHarness | undefined;
      try {
        const h = new FilesHarness(config, options.mutation, { commitOnce: options.commitOnce ?? true });
        harness = h;
        await h.begin();
        await fc.asyncModelRun(() => ({ model: initialModel(), real: h }), commands);
        await h.finish();
        passed = true;
      } finally {
        options.onRun?.(passed, harness?.coverage);
      }
    },
  );
}

export type FilesRunDetails = fc.RunDetails<[FilesConfig, Iterable<FilesCommand>]>;

export interface FilesCheckOptions extends FilesPropertyOptions {
  readonly seed: number;
  readonly numRuns: number;
  /** Replays one counterexample (the path fast-check printed). */
  readonly path?: string;
  /** Stops at the first counterexample without shrinking it (bounded time for the mutation suite). */
  readonly noShrink?: boolean;
}

export function checkFiles(options: FilesCheckOptions): Promise<FilesRunDetails> {
  return fc.check(filesProperty(options), {
    seed: options.seed,
    numRuns: options.numRuns,
    ...(options.path !== undefined ? { path: options.path } : {}),
    ...(options.noShrink ? { endOnFailure: true } : {}),
  });
}

/** A failure as a human reads it: how to replay, the shrunk setting and commands, and the trace of the failing run. */
export function describeFilesFailure(
  details: FilesRunDetails,
  run: { readonly maxCommands: number; readonly mutation?: string; readonly commitOnce?: boolean },
): string {
  const { maxCommands, mutation } = run;
  const strict = run.commitOnce === false ? "FILES_MODEL_COMMIT_ONCE=0 " : "";
  if (!details.failed) return `passed ${details.numRuns} runs (seed ${details.seed})`;
  const commands = details.counterexample ? String(details.counterexample[1]) : "";
  // fc.commands needs its own replay path, printed beside the commands, to replay them exactly.
  const replayPath = /replayPath="([^"]*)"/.exec(commands)?.[1];
  // The commands arbitrary depends on maxCommands: a replay needs the same.
  const cli = `--seed ${details.seed} --steps ${maxCommands} --path "${details.counterexamplePath}"${
    replayPath ? ` --replay-path "${replayPath}"` : ""
  }${mutation ? ` --mutation ${mutation}` : ""}`;
  const env = `FILES_MODEL_SEED=${details.seed} FILES_MODEL_STEPS=${maxCommands} FILES_MODEL_PATH="${details.counterexamplePath}"${
    replayPath ? ` FILES_MODEL_REPLAY_PATH="${replayPath}"` : ""
  }`;
  const lines = [
    `file store property failed after ${details.numRuns} run(s), shrunk ${details.numShrinks} time(s)`,
    `replay: npm run build && ${strict}node dist/test/model/filesCli.js ${cli}`,
    ...(mutation ? [] : [`    or: ${strict}${env} npx vitest run test/model/files.model.test.ts`]),
  ];
  if (details.counterexample) {
    lines.push(`setting: ${fc.stringify(details.counterexample[0])}`, `commands: ${commands}`);
  }
  const error = details.errorInstance;
  lines.push("", error instanceof Error ? `${error.name}: ${error.message}` : String(error));
  return lines.join("\n");
}

// ---- planted bugs ------------------------------------------------------------------

const isCatalogKey = (key: string): boolean => key.startsWith(catalogKey(""));

/** Wraps a store client: the methods not given are the real client's. */
function storeWith(inner: CasStore, over: Partial<CasStore>): CasStore {
  return {
    bucket: inner.bucket,
    get: (key) => inner.get(key),
    create: (key, value) => inner.create(key, value),
    update: (key, value, expected) => inner.update(key, value, expected),
    keys: (prefix) => inner.keys(prefix),
    watch: (key, onEntry) => inner.watch(key, onEntry),
    close: () => inner.close(),
    ...over,
  };
}

/**
 * A coordinator that does not order its writes of one file's record: a
 * repair's read-then-write may run while a commit of the same file is between
 * its read and its write. Over nats-server 2.9's compare-and-set (the
 * harness's store, `casRaftMs`), both writes can pass the same expected
 * revision, and the repair's record of the older version replaces the
 * commit's acknowledged one.
 */
export class UnorderedCatalogWrites extends CatalogWrites {
  override run<T>(_name: string, work: () => Promise<T>): Promise<T> {
    return work();
  }
}

/** How far behind the lagging replica of `catalogReadFromLaggingReplica` is. */
const READ_LAG_MS = 3_000;

/**
 * Catalog reads served by a replica that lags the leader (as a KV "direct get"
 * from a follower or mirror may): a read returns the record as it was
 * READ_LAG_MS ago, with its revision then. A commit over a stale record loses
 * its compare-and-set and is retried; an UPDATE answers a version the
 * catalog has since replaced.
 */
export const catalogReadFromLaggingReplica: StoreMutation = (store, kv) =>
  storeWith(store, {
    get: async (key) => {
      const entry = await store.get(key);
      if (!isCatalogKey(key) || entry === undefined) return entry;
      const now = kv.network.clock.now();
      return kv.writes.filter((w) => w.entry.key === key && w.at <= now - READ_LAG_MS).at(-1)?.entry;
    },
  });

/** Wraps a replica store: the methods not given are the real store's. */
function replicaStoreWith(inner: ReplicaStore, over: Partial<ReplicaStore>): ReplicaStore {
  return {
    open: () => inner.open(),
    held: () => inner.held(),
    get: (ref) => inner.get(ref),
    create: (meta) => inner.create(meta),
    read: (ref, offset, length) => inner.read(ref, offset, length),
    verify: (ref) => inner.verify(ref),
    remove: (ref) => inner.remove(ref),
    markCommitted: (ref) => inner.markCommitted(ref),
    committed: (ref) => inner.committed(ref),
    close: () => inner.close(),
    ...over,
  };
}

/** A holder that answers DONE without keeping anything: `finish` checks nothing and drops the bytes. */
const finishDropsTheBytes = (_id: NodeId, disk: SimDisk): ReplicaStore => {
  const inner = new MemoryReplicas(disk);
  return replicaStoreWith(inner, {
    create: async (meta) => {
      const writer = await inner.create(meta);
      const lying: ReplicaWriter = {
        meta: writer.meta,
        write: (offset, data) => writer.write(offset, data),
        finish: () => writer.abort(),
        abort: () => writer.abort(),
      };
      return lying;
    },
  });
};

/** A holder that skips the fsync: what it keeps lives in the runtime's memory and is gone after a crash. */
const replicasWithoutFsync = (): ReplicaStore => new MemoryReplicas(new SimDisk());

/** A holder whose disk returns every chunk with its first byte flipped (its own hash check reads the disk directly). */
const readsFlipAByte = (_id: NodeId, disk: SimDisk): ReplicaStore => {
  const inner = new MemoryReplicas(disk);
  return replicaStoreWith(inner, {
    read: async (ref, offset, length) => {
      const data = await inner.read(ref, offset, length);
      if (data.byteLength > 0) data[0] = (data[0] ?? 0) ^ 0xff;
      return data;
    },
  });
};

/** A holder that, told a version is obsolete, drops every version of that file (the newest too). */
const removeDropsTheWholeFile = (_id: NodeId, disk: SimDisk): ReplicaStore => {
  const inner = new MemoryReplicas(disk);
  return replicaStoreWith(inner, {
    remove: async (ref) => {
      for (const held of inner.held()) if (held.name === ref.name) await inner.remove(held);
    },
  });
};

/**
 * Holders that keep every old version (as a retention policy might): not a
 * bug alone, but without it a stale catalog answer names copies the holders
 * have already dropped, and the UPDATE fails instead of going back.
 */
const replicasKeepingOldVersions = (_id: NodeId, disk: SimDisk): ReplicaStore =>
  replicaStoreWith(new MemoryReplicas(disk), { remove: async () => {} });

/** A planted bug and the commands it is looked for with (the CLI's `--mutation` replays with the same). */
export interface PlantedBug {
  readonly mutation: FilesMutation;
  readonly config?: fc.Arbitrary<FilesConfig>;
  readonly commands?: fc.Arbitrary<FilesCommand>[];
}

/** By the name the CLI's `--mutation` takes. */
export const plantedBugs: ReadonlyMap<string, PlantedBug> = new Map<string, PlantedBug>([
  [
    "unordered-writes",
    {
      // Commits racing the repairs that holders' crashes make.
      mutation: { catalogWrites: () => new UnorderedCatalogWrites() },
      commands: repairArbitraries,
    },
  ],
  [
    "stale-read",
    {
      mutation: { store: catalogReadFromLaggingReplica, replicas: replicasKeepingOldVersions },
      // An UPDATE shortly after a second SUCCESS of the same file: faults only dilute it.
      commands: callArbitraries,
    },
  ],
  ["finish-drops", { mutation: { replicas: finishDropsTheBytes } }],
  ["no-fsync", { mutation: { replicas: replicasWithoutFsync } }],
  ["corrupt-read", { mutation: { replicas: readsFlipAByte } }],
  ["remove-all", { mutation: { replicas: removeDropsTheWholeFile } }],
  [
    "ignore-minority",
    {
      // Quorum mode, three nodes on one server: isolating it leaves a minority holding the store.
      mutation: ignoresTheMinorityMark,
      config: threeOnOneServer(filesConfigArbitrary),
      commands: minorityArbitraries,
    },
  ],
]);
