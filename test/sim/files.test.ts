// Scenarios of the replicated file store over the simulated network (SPEC 8):
// a commit lands on the replication factor of servers and reads back, versions
// grow, a holder's crash leaves the file readable and is repaired.
import { describe, expect, it } from "vitest";
import { catalogKey } from "../../actors/files/catalog.js";
import { bytesSource, FileClient, memorySink } from "../../client/fileClient.js";
import { decode, encode } from "../../protocol/codec.js";
import { FileStoreError } from "../../protocol/files.js";
import { PROTOCOL_VERSION } from "../../protocol/messages.js";
import { subjects } from "../../protocol/subjects.js";
import { SimCluster } from "../../sim/cluster.js";

function setup(seed: number, ids: number[], passive: number[] = []) {
  const cluster = new SimCluster({ seed, election: { passive }, files: {} });
  for (const id of ids) cluster.start(id);
  const transport = cluster.network.connect("client", { server: 0 });
  let n = 0;
  const client = new FileClient({
    transport,
    subjects: subjects("dvs"),
    clock: cluster.network.hostClock("client"),
    newCommitId: () => `c${seed}-${++n}`,
  });
  return { cluster, client };
}

const text = (s: string) => new TextEncoder().encode(s);

describe("file store over the simulated network", () => {
  it("commits a file on three servers, passive ones first, and reads it back", async () => {
    const { cluster, client } = setup(1, [1, 2, 3, 4, 5], [4, 5]);
    await cluster.advance(2_000);
    const committed = await cluster.settle(client.commit("notes/a.txt", bytesSource(text("hello"))));
    expect(committed).toMatchObject({ type: "SUCCESS", name: "notes/a.txt", version: 1, size: 5 });
    expect(committed.holders).toHaveLength(3);
    expect(committed.holders).toEqual(expect.arrayContaining([4, 5]));
    // Exactly the replication factor: no slot asks a fourth server while the others are still writing.
    const onDisk = [...cluster.disks].filter(([, d]) => d.list().some((f) => f.name === "notes/a.txt"));
    expect(onDisk.map(([id]) => id).sort()).toEqual([...committed.holders].sort());
    const sink = memorySink();
    const read = await cluster.settle(client.update("notes/a.txt", () => sink));
    expect(read.version).toBe(1);
    expect(new TextDecoder().decode(sink.bytes())).toBe("hello");
  });

  it("numbers versions 1, 2, 3 and serves the newest; old copies go", async () => {
    const { cluster, client } = setup(2, [1, 2, 3, 4]);
    await cluster.advance(2_000);
    for (const [i, body] of ["one", "two", "three"].entries()) {
      const c = await cluster.settle(client.commit("f", bytesSource(text(body))));
      expect(c.version).toBe(i + 1);
    }
    const sink = memorySink();
    await cluster.settle(client.update("f", () => sink));
    expect(new TextDecoder().decode(sink.bytes())).toBe("three");
    await cluster.advance(100);
    const versions = [...cluster.disks.values()].flatMap((d) => d.list().map((f) => f.version));
    expect(new Set(versions)).toEqual(new Set([3]));
    const ls = await cluster.settle(client.ls());
    expect(ls).toEqual([expect.objectContaining({ name: "f", version: 3, size: 5 })]);
  });

  it("streams a file larger than one chunk and checks it byte for byte", async () => {
    const { cluster, client } = setup(3, [1, 2, 3]);
    await cluster.advance(2_000);
    const big = new Uint8Array(700 * 1024).map((_, i) => (i * 7919) % 251);
    const c = await cluster.settle(client.commit("big.bin", bytesSource(big)));
    expect(c.size).toBe(big.byteLength);
    const sink = memorySink();
    await cluster.settle(client.update("big.bin", () => sink));
    expect(Buffer.compare(sink.bytes(), big)).toBe(0);
  });

  it("fails a commit clearly when fewer servers than the replication factor exist", async () => {
    const { cluster, client } = setup(4, [1, 2]);
    await cluster.advance(2_000);
    const error = await cluster.settle(client.commit("x", bytesSource(text("x")))).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FileStoreError);
    expect(error).toMatchObject({ code: "ENOSPC" });
    const missing = await cluster.settle(client.update("x", () => memorySink())).catch((e: unknown) => e);
    expect(missing).toMatchObject({ code: "ENOENT" });
    // The copies the failed commit left are garbage: the coordinator has them discarded.
    const copies = () => [1, 2].filter((id) => cluster.disk(id).list().length > 0);
    expect(copies().length).toBeGreaterThan(0);
    await cluster.advance(30_000);
    expect(copies()).toEqual([]);
  });

  it("reads a file after one holder crashes, and repairs it back to three holders", async () => {
    const { cluster, client } = setup(5, [1, 2, 3, 4, 5]);
    await cluster.advance(2_000);
    const c = await cluster.settle(client.commit("r", bytesSource(text("repair me"))));
    const coordinator = [...cluster.nodes].find(([, n]) => n.election?.state().term)?.[0];
    const victim = c.holders.find((h) => h !== coordinator) as number;
    cluster.crash(victim);
    const sink = memorySink();
    await cluster.settle(client.update("r", () => sink));
    expect(new TextDecoder().decode(sink.bytes())).toBe("repair me");
    await cluster.advance(15_000);
    // Running nodes only: the crashed one's disk survives, but it is no holder while it is down.
    const holders = [...cluster.nodes.keys()].filter((id) =>
      cluster
        .disk(id)
        .list()
        .some((f) => f.name === "r"),
    );
    expect(holders).not.toContain(victim);
    expect(holders.length).toBeGreaterThanOrEqual(3);
  });

  it("a coordinator that knows no server's list of files (its table emptied) asks the record's holders, and UPDATE is answered", async () => {
    const ids = [1, 2, 3, 4, 5];
    // The passive servers hold the copies: the coordinator (an active one) is no holder itself.
    const { cluster, client } = setup(7, ids, [1, 2, 4, 5]);
    await cluster.advance(2_000);
    const c = await cluster.settle(client.commit("back", bytesSource(text("still here"))));
    const [coordinator, runtime] = [...cluster.nodes].find(([, n]) => n.election?.state().term) ?? [];
    expect(c.holders).not.toContain(coordinator);
    // As after its link came back or it won a term before any ALIVE reached it: no server is known.
    for (const id of ids) if (id !== coordinator) runtime?.election?.serverGone(id);
    const sink = memorySink();
    const read = await cluster.settle(client.update("back", () => sink));
    expect(read).toMatchObject({ version: c.version, sha256: c.sha256 });
    expect(new TextDecoder().decode(sink.bytes())).toBe("still here");
  });

  it("moves on from a holder that dies while it pulls, once it leaves the view, not after the transfer timeout", async () => {
    const { cluster, client } = setup(6, [1, 2, 3, 4, 5], [4, 5]);
    await cluster.advance(2_000);
    const big = new Uint8Array(1_500_000).map((_, i) => (i * 31) % 253);
    const started = cluster.clock.now();
    let finished = 0;
    const commit = client.commit("slow.bin", bytesSource(big)).finally(() => {
      finished = cluster.clock.now();
    });
    commit.catch(() => {});
    // A passive server is among the first candidates: it has the REPLICA and is pulling when it dies.
    const coordinator = [...cluster.nodes].find(([, n]) => n.election?.state().term)?.[0];
    const victim = coordinator === 4 ? 5 : 4;
    await cluster.clock.runUntil(() => false, 8);
    cluster.crash(victim);
    const committed = await cluster.settle(commit);
    expect(committed.holders).not.toContain(victim);
    expect(committed.holders).toHaveLength(3);
    expect(finished - started).toBeLessThan(2_000);
  });
});

describe("file store copies judged by a catalog that cannot be trusted blindly", () => {
  /** The nodes whose disk holds `name` (running ones only). */
  const holdersOf = (cluster: SimCluster, name: string) =>
    [...cluster.nodes.keys()].filter((id) =>
      cluster
        .disk(id)
        .list()
        .some((f) => f.name === name),
    );

  /** Overwrites the key with `value` from a host of its own, as anyone with write access to the bucket could. */
  async function overwrite(cluster: SimCluster, key: string, value: Uint8Array): Promise<void> {
    const kv = cluster.kv as NonNullable<SimCluster["kv"]>;
    cluster.network.connect("intruder");
    const revision = kv.peek(key)?.revision ?? 0;
    await cluster.settle(kv.client("intruder").update(key, value, revision));
  }

  it("holders keep every copy of a file whose catalog record was overwritten with junk", async () => {
    const { cluster, client } = setup(7, [1, 2, 3, 4]);
    await cluster.advance(2_000);
    const c = await cluster.settle(client.commit("kept.txt", bytesSource(text("keep me"))));
    expect(holdersOf(cluster, "kept.txt").sort()).toEqual([...c.holders].sort());
    const discards: string[] = [];
    cluster.network.connect("spy").subscribe(`${subjects("dvs").filePeer(0).replace(/0$/, "")}*`, (msg) => {
      const decoded = decode(msg.data, "cbor");
      const m = decoded.ok ? (decoded.value as { type?: string; name?: string }) : {};
      if (m.type === "DISCARD") discards.push(`${msg.subject} ${m.name}`);
    });
    await overwrite(cluster, catalogKey("kept.txt"), new Uint8Array([0xa1, 0x61, 0x76, 0xff]));
    // Many repair sweeps (every 5 s): each finds the record unreadable, none takes it for absent.
    await cluster.advance(30_000);
    expect(discards).toEqual([]);
    expect(holdersOf(cluster, "kept.txt").sort()).toEqual([...c.holders].sort());
  });

  it("a holder refuses a DISCARD of the copy its readable record names, or of a copy whose record cannot be read", async () => {
    const { cluster, client } = setup(8, [1, 2, 3]);
    await cluster.advance(2_000);
    const named = await cluster.settle(client.commit("named.txt", bytesSource(text("named"))));
    const junked = await cluster.settle(client.commit("junked.txt", bytesSource(text("junked"))));
    await overwrite(cluster, catalogKey("junked.txt"), new TextEncoder().encode('{"v":1}'));
    const forger = cluster.network.connect("forger");
    for (const copy of [named, junked]) {
      for (const holder of copy.holders) {
        forger.publish(
          subjects("dvs").filePeer(holder),
          encode({
            v: PROTOCOL_VERSION,
            type: "DISCARD",
            from: holder,
            epoch: 2 ** 31,
            name: copy.name,
            version: copy.version,
            sha256: copy.sha256,
          }),
        );
      }
    }
    await cluster.advance(1_000);
    expect(holdersOf(cluster, "named.txt").sort()).toEqual([...named.holders].sort());
    expect(holdersOf(cluster, "junked.txt").sort()).toEqual([...junked.holders].sort());
  });
});
