// Quorum mode in the file store model (docs/protocol.md 9.5): the settings
// that turn quorum mode on, and the planted bug of a node that ignores its
// minority mark. The checks are filesMinority.ts; the command that splits the
// nodes into a minority keeping the store and a majority losing it is
// filesCommands.ts's IsolateMostNodes.
import fc from "fast-check";
import { QuorumGate } from "../../actors/quorumGate.js";
import type { FilesConfig, FilesMutation } from "./filesHarness.js";

/**
 * Quorum mode on, replication factor 2: with the default 3, a minority of
 * five nodes (two) could never gather enough DONEs, and the mark would have
 * nothing to stop.
 */
export const QUORUM_REPLICATION_FACTOR = 2;

/** Settings of the quorum model: any placement, quorum mode on. */
export const withQuorum = (config: fc.Arbitrary<FilesConfig>): fc.Arbitrary<FilesConfig> =>
  config.map((c) => ({ ...c, quorum: true, replicationFactor: QUORUM_REPLICATION_FACTOR }));

/** Three nodes share one server (the other two one each), so isolating it leaves a minority holding the store. */
export const threeOnOneServer = (config: fc.Arbitrary<FilesConfig>): fc.Arbitrary<FilesConfig> =>
  fc
    .tuple(config, fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 4 }))
    .map(([c, crowded, shift]) => {
      const others = [0, 1, 2].filter((s) => s !== crowded);
      const servers = [crowded, crowded, crowded, ...others];
      const serverOf = servers.map((_, i) => servers[(i + shift) % 5] ?? 0);
      return { ...c, quorum: true, replicationFactor: QUORUM_REPLICATION_FACTOR, serverOf };
    });

/** A node whose gate ignores its minority mark: it takes COMMITs (and the listed requests) in a minority. */
export const ignoresTheMinorityMark: FilesMutation = {
  quorumGate: (options) => new QuorumGate({ ...options, minority: () => false }),
};
