// The election's timings (SPEC 7), all derived from the lease: how long a
// coordinator's record stays live, and how often the coordinator renews it,
// sends STATUS and candidates retry. Every node of a cluster must use the same.

export interface ElectionTimings {
  /** How long a coordinator's record stays live without a renewal (observers' clock). */
  readonly leaseMs: number;
  /** How often the coordinator renews. */
  readonly renewMs: number;
  /** Taken off the coordinator's own lease, for clock drift and timer lateness. */
  readonly marginMs: number;
  /** Delay per rank between candidates, so the best placed usually wins alone. */
  readonly staggerMs: number;
  /** How often the coordinator sends STATUS (and every server answers ALIVE). */
  readonly statusMs: number;
  /** First retry after NOTHING; doubles up to `retryMaxMs`. */
  readonly retryMs: number;
  /**
   * The longest wait between two asks: after the store comes back (a heal),
   * the first ELECTED wins, so this bounds dvsd's part of the time to a new
   * coordinator once nats-server's stream has a leader again.
   */
  readonly retryMaxMs: number;
  /**
   * How long after the write that opens a term the registry confirms it (a
   * second compare-and-set on the first one's revision) before the candidate
   * holds the term: longer than the store's Raft round, within which
   * nats-server before 2.9.21 may let a rival's write pass too (machines/registry.ts).
   */
  readonly confirmMs: number;
}

export const defaultElectionTimings = (leaseMs = 400): ElectionTimings => ({
  leaseMs,
  renewMs: Math.max(10, Math.round(leaseMs / 4)),
  marginMs: Math.max(5, Math.round(leaseMs / 10)),
  staggerMs: Math.max(5, Math.round(leaseMs / 16)),
  statusMs: 1_000,
  retryMs: Math.max(10, Math.round(leaseMs / 4)),
  retryMaxMs: 1_000,
  confirmMs: Math.max(5, Math.round(leaseMs / 8)),
});
