// The V8 flags every dvsd node process runs with. An idle node's live heap is
// about 20 MB, but with V8's defaults (16 MiB semi-spaces) its RSS sits near
// 100-106 MiB; with 1 MiB semi-spaces it stays under the 80 MB of SPEC 10
// (`npm run scale` measures it; docs/operations.md "Memory" has the figures).
// `--optimize-for-size` saves a few MiB more but costs about 1.6× in request
// throughput (the fuzz test's 30,000 messages: 66 s against 41 s), so it is
// not used. `dvsd up`, the `dvsd` shebang, the systemd unit of
// docs/deploy.md, the tests and the benchmarks all start nodes with these.
export const DVSD_NODE_FLAGS: readonly string[] = [
  // A young generation of 1 MiB per semi-space instead of 16: scavenges are
  // more frequent but each is short, and little garbage lingers.
  "--max-semi-space-size=1",
];
