// Quorum mode acting on the minority mark over the simulated network (SPEC 4,
// 5, 8; docs/protocol.md 9.5): a node cut off with a minority refuses the
// file store's COMMIT and the listed DVS requests with EROFS, still answers
// reads and host requests, and takes COMMITs again once merged; a minority
// that still reaches the store and holds the coordinator refuses too.
import { describe, expect, it } from "vitest";
import { bytesSource, FileClient, memorySink } from "../../client/fileClient.js";
import { FileStoreError } from "../../protocol/files.js";
import { rcode } from "../../protocol/messages.js";
import { subjects } from "../../protocol/subjects.js";
import { SimCluster } from "../../sim/cluster.js";

/** The error a call rejected with. */
async function refusal(cluster: SimCluster, promise: Promise<unknown>): Promise<unknown> {
  return cluster.settle(promise).then(
    () => undefined,
    (error: unknown) => error,
  );
}

function fileClient(cluster: SimCluster, host: string, server: number): FileClient {
  let n = 0;
  return new FileClient({
    transport: cluster.network.connect(host, { server }),
    subjects: subjects("dvs"),
    clock: cluster.network.hostClock(host),
    newCommitId: () => `${host}-${++n}`,
  });
}

const text = (s: string) => new TextEncoder().encode(s);
const minority = (c: SimCluster, id: number) => c.nodes.get(id)?.membership?.context.minority ?? false;

describe("quorum mode over the simulated network", () => {
  it("a node cut off with a minority refuses COMMIT and the DVS-wide requests with EROFS, answers reads, and commits again after the heal", async () => {
    const c = new SimCluster({
      seed: 31,
      servers: 3,
      quorum: true,
      election: {},
      files: { replicationFactor: 2 },
    });
    for (const id of [1, 2, 3]) c.start(id, id - 1);
    await c.advance(2_000);
    const admin = c.client("admin-3", { server: 2, timeoutMs: 10_000 });
    expect((await c.settle(admin.request("DVSINIT", { name: "lab" }))).rcode).toBe(0);
    const files = fileClient(c, "client-3", 2);
    expect(await c.settle(files.commit("a.txt", bytesSource(text("one"))))).toMatchObject({ version: 1 });

    c.network.cutRoute(0, 2);
    c.network.cutRoute(1, 2);
    await c.clock.runUntil(() => minority(c, 3), 10_000);
    expect([1, 2, 3].map((id) => minority(c, id))).toEqual([false, false, true]);

    // COMMIT through node 3's server: node 3 answers for the file store, read-only.
    const refused = await refusal(c, files.commit("a.txt", bytesSource(text("two"))));
    expect(refused).toBeInstanceOf(FileStoreError);
    expect((refused as FileStoreError).code).toBe("EROFS");
    // A listed request that needs the whole DVS is refused, to node 3 alone or to its view.
    const dcinit = await c.settle(admin.request("DCINIT", { dcid: 5, name: "web" }, { dst: 3 }));
    expect(dcinit.rcode).toBe(rcode("EROFS"));
    // To ALL: node 3 refuses before it logs or gathers anything.
    const toAll = await c.settle(admin.request("DCINIT", { dcid: 5, name: "web" }));
    expect(toAll).toMatchObject({ rcode: rcode("EROFS"), src: 3 });
    // Reads and host requests are answered (the sim's nodes have no host handlers: ENOSYS, not EROFS).
    const info = await c.settle(admin.request("GETDVSINFO", {}, { dst: 3 }));
    expect(info).toMatchObject({ rcode: 0, data: { name: "lab" } });
    const node = await c.settle(admin.request("GETNODEINFO", {}, { dst: 3 }));
    expect(node.rcode).toBe(0);
    expect(((node.data as { flags: number }).flags & 4) !== 0).toBe(true);
    expect((await c.settle(admin.request("PS", {}, { dst: 3 }))).rcode).toBe(rcode("ENOSYS"));

    // The majority side still commits.
    const majority = fileClient(c, "client-1", 0);
    expect(await c.settle(majority.commit("a.txt", bytesSource(text("three"))))).toMatchObject({
      version: 2,
    });

    c.network.restoreRoute(0, 2);
    c.network.restoreRoute(1, 2);
    await c.clock.runUntil(() => !minority(c, 3) && c.views().get(3)?.members.length === 3, 20_000);
    await c.advance(2_000);
    expect(await c.settle(files.commit("a.txt", bytesSource(text("four"))))).toMatchObject({ version: 3 });
    const sink = memorySink();
    await c.settle(files.update("a.txt", () => sink));
    expect(new TextDecoder().decode(sink.bytes())).toBe("four");
  });

  it("a minority that still reaches the store keeps its coordinator, which refuses COMMIT and still answers UPDATE", async () => {
    const c = new SimCluster({
      seed: 32,
      servers: 1,
      quorum: true,
      election: {},
      files: { replicationFactor: 2 },
    });
    for (const id of [1, 2, 3, 4, 5]) c.start(id);
    await c.advance(2_000);
    const files = fileClient(c, "client", 0);
    expect(await c.settle(files.commit("b.txt", bytesSource(text("kept"))))).toMatchObject({ version: 1 });
    // Three of five crash: the two left hold no majority of the last full view, but reach the store.
    for (const id of [3, 4, 5]) c.crash(id);
    await c.clock.runUntil(() => minority(c, 1) && minority(c, 2), 20_000);
    await c.clock.runUntil(() => [1, 2].some((id) => c.nodes.get(id)?.election?.state().term), 10_000);

    const refused = await refusal(c, files.commit("b.txt", bytesSource(text("lost"))));
    expect((refused as FileStoreError).code).toBe("EROFS");
    const sink = memorySink();
    const read = await c.settle(files.update("b.txt", () => sink));
    expect(read.version).toBe(1);
    expect(new TextDecoder().decode(sink.bytes())).toBe("kept");
  });

  it("without quorum mode nothing is refused: a cut-off node is never read-only", async () => {
    const c = new SimCluster({ seed: 33, servers: 1, election: {}, files: { replicationFactor: 2 } });
    for (const id of [1, 2, 3, 4, 5]) c.start(id);
    await c.advance(2_000);
    for (const id of [3, 4, 5]) c.crash(id);
    await c.advance(8_000);
    expect(minority(c, 1)).toBe(false);
    const files = fileClient(c, "client", 0);
    expect(await c.settle(files.commit("c.txt", bytesSource(text("ok"))))).toMatchObject({ version: 1 });
  });
});
