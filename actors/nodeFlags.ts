// The V8 flags every dvsd node process runs with. An idle node's live heap is
// about 20 MB, but with V8's defaults its RSS climbs past 100 MiB before a
// major collection gives memory back; these keep it near 70 MiB (SPEC 10:
// idle RSS ≤ 80 MB; `npm run scale` measures it). `dvsd up`, the systemd unit
// of docs/deploy.md, the tests and the benchmarks all start nodes with them.
export const DVSD_NODE_FLAGS: readonly string[] = [
  // A young generation of 1 MiB per semi-space instead of 16: scavenges are
  // more frequent but each is short, and little garbage lingers.
  "--max-semi-space-size=1",
  // Heap growth and code caches tuned for memory rather than peak speed.
  "--optimize-for-size",
];
