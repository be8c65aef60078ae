// The V8 flags every dvsd node process runs with. An idle node's live heap is
// about 20 MB, but with V8's defaults (16 MiB semi-spaces, heap growth tuned
// for speed) its RSS sits near 100-106 MiB. These keep it at 71-77 MiB, under
// the 80 MB of SPEC 10, also with 32 nodes on 2 busy cores (`npm run scale`;
// docs/operations.md "Memory" has the figures). The price is request
// throughput under a flood: the fuzz test's 30,000 messages took a node 66 s
// with both flags, 41 s with the semi-space flag alone (RSS 80-86 MiB with 32
// busy nodes) and 33 s with none. Request latency did not measurably change
// with them: `rqst-latency` against a `dvsd run` process gave the same p50
// ratio within noise with 1, 2 or 4 MiB semi-spaces, without either flag and
// with --single-threaded-gc (bench/README.md, "Requests to one node"), while
// without the semi-space flag the node's RSS after that run was 114-116 MiB.
// `dvsd up`, the `dvsd` shebang, the systemd unit of docs/deploy.md, the
// tests and the benchmarks all use these.
export const DVSD_NODE_FLAGS: readonly string[] = [
  // A young generation of 1 MiB per semi-space instead of 16: scavenges are
  // more frequent but each is short, and little garbage lingers.
  "--max-semi-space-size=1",
  // Heap growth and code caches tuned for memory rather than peak speed.
  "--optimize-for-size",
];

/** What a `dvsd run` command line names; the rest comes from the node's config file or its defaults. */
export interface DvsdRun {
  /** The compiled CLI (`dist/bin/dvsd.js`). */
  readonly bin: string;
  readonly node: number;
  /** Server URLs, comma-separated. */
  readonly nats: string;
  readonly cluster?: string;
  readonly config?: string;
  readonly state?: string;
  readonly logLevel?: string;
  /** Options added at the end (`--admin-keys …`). */
  readonly extra?: readonly string[];
  /** V8 flags instead of DVSD_NODE_FLAGS (the bench's `--node-flags`, to measure another setting). */
  readonly flags?: readonly string[];
}

/** The arguments after `node` for one `dvsd run` process: the V8 flags, the CLI, then its options. */
export function dvsdRunArgs(run: DvsdRun): string[] {
  const option = (name: string, value: string | undefined) => (value === undefined ? [] : [name, value]);
  return [
    ...(run.flags ?? DVSD_NODE_FLAGS),
    run.bin,
    "run",
    "--node",
    String(run.node),
    ...option("--cluster", run.cluster),
    "--nats",
    run.nats,
    ...option("--config", run.config),
    ...option("--state", run.state),
    ...option("--log-level", run.logLevel),
    ...(run.extra ?? []),
  ];
}
