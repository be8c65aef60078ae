// Replicas on the simulated disk run the replica store contract; then what only
// the SimDisk shows: syncs counted, unfinished writes never reaching it, corrupt
// replicas set aside.
import { describe, expect, it } from "vitest";
import { ReplicaNotFoundError } from "../../actors/files/errors.js";
import { MemoryReplicas, SimDisk } from "../../actors/files/memoryReplicas.js";
import {
  bytesOf,
  identityOf,
  put,
  replicaStoreContract,
  writeChunks,
} from "../contracts/replicaStore/contract.js";

replicaStoreContract("sim", async () => {
  const disk = new SimDisk();
  const stores: MemoryReplicas[] = [];
  const openStore = async () => {
    const store = new MemoryReplicas(disk);
    stores.push(store);
    await store.open();
    return store;
  };
  return {
    store: await openStore(),
    reopen: openStore,
    corrupt: async (ref) => disk.corrupt(ref),
    cleanup: async () => {
      for (const store of stores) await store.close();
    },
  };
});

describe("replicas on a SimDisk", () => {
  it("count one sync per replica made durable, none for one already held or refused", async () => {
    const disk = new SimDisk();
    const store = new MemoryReplicas(disk);
    await store.open();
    const bytes = bytesOf(1000);
    const meta = identityOf("a.bin", 1, bytes);
    await put(store, meta, bytes);
    await put(store, meta, bytes);
    await expect(put(store, { ...meta, version: 2, size: 1001 }, bytes)).rejects.toMatchObject({
      name: "ReplicaIntegrityError",
    });
    expect(disk.syncs).toBe(1);
  });

  it("never see an unfinished write, which is lost with the runtime that made it", async () => {
    const disk = new SimDisk();
    const crashed = new MemoryReplicas(disk);
    await crashed.open();
    const bytes = bytesOf(300 * 1024);
    const meta = identityOf("lost.bin", 1, bytes);
    await writeChunks(crashed, meta, bytes);
    expect(disk.list()).toEqual([]);
    expect(disk.syncs).toBe(0);
    const restarted = new MemoryReplicas(disk);
    await restarted.open();
    expect(restarted.held()).toEqual([]);
  });

  it("keep a replica that fails verify aside in `corrupted`, with the damaged bytes", async () => {
    const disk = new SimDisk();
    const store = new MemoryReplicas(disk);
    await store.open();
    const bytes = bytesOf(1000);
    const meta = identityOf("rotten.bin", 1, bytes);
    await put(store, meta, bytes);
    disk.corrupt(meta, 10);
    expect(await store.verify(meta)).toBe(false);
    expect(disk.list()).toEqual([]);
    expect(disk.corrupted).toHaveLength(1);
    expect(disk.corrupted[0]?.identity).toEqual(meta);
    expect(disk.corrupted[0]?.bytes[10]).toBe((bytes[10] ?? 0) ^ 0xff);
  });

  it("refuse to corrupt a replica they do not hold", () => {
    const disk = new SimDisk();
    const meta = identityOf("none.bin", 1, bytesOf(10));
    expect(() => disk.corrupt(meta)).toThrow(ReplicaNotFoundError);
  });
});
