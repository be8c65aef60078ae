// The contract every ProcessSnapshotStore keeps, run unchanged against the
// in-memory store (memory.test.ts) and the records on disk (file.test.ts).
import { describe, expect, it } from "vitest";
import type { ProcessSnapshotStore } from "../../../actors/processes/processStore.js";
import type { ProcessRecord } from "../../../protocol/processes.js";

/** A counter process's record at `endpoint`, its count set to `count`. */
export const record = (endpoint: number, count: number): ProcessRecord => ({
  v: 1,
  dcid: 1,
  endpoint,
  name: "c",
  machine: "counter",
  epoch: 1,
  gen: 0,
  priv: { rqsts: ["*"], endpoints: [65_536] },
  snapshot: { status: "active", value: "counting", context: { count, updates: 0, reads: 0 } },
  mailbox: { delivered: { "c:1.1:tool": 3 }, pending: {} },
  ready: [],
  sendSeq: { "1:7": 2 },
  delivered: 3,
  spawnedAt: 0,
});

export function processSnapshotStoreContract(name: string, make: () => ProcessSnapshotStore) {
  describe(name, () => {
    it("saves, replaces, removes and loads process records", async () => {
      const store = make();
      expect((await store.load()).processes).toEqual([]);
      await store.save(record(5, 1));
      await store.save(record(-3, 2));
      await store.save(record(5, 7));
      const loaded = await store.load();
      expect(loaded.skipped).toEqual([]);
      expect(
        loaded.processes.map((p) => [
          p.endpoint,
          (p.snapshot as { context: { count: number } }).context.count,
        ]),
      ).toEqual([
        [-3, 2],
        [5, 7],
      ]);
      await store.remove(1, -3);
      await store.remove(1, 99);
      expect((await store.load()).processes.map((p) => p.endpoint)).toEqual([5]);
    });
  });
}
