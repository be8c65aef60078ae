// Requests across a cluster of real node runtimes on the simulated network:
// ALL requests gathered from the view, forwarding, DVS and DC state kept the
// same on every node, DVSEND as a graceful leave.
import { afterEach, describe, expect, it } from "vitest";
import { decode, encode } from "../../protocol/codec.js";
import { type Rply, rcode, rplySchema } from "../../protocol/messages.js";
import { SimCluster } from "../../sim/cluster.js";

let stopClock: (() => void) | undefined;
afterEach(() => {
  stopClock?.();
  stopClock = undefined;
});

async function cluster(seed: number, ids: readonly number[]) {
  const c = await SimCluster.converged(seed, ids);
  const client = c.client("tool", { timeoutMs: 10_000 });
  stopClock = c.clock.autoRun();
  return { c, client };
}

const entries = (rply: Rply) => rply.data as Rply[];

describe("requests over the simulated network", () => {
  it("an ALL request is answered as soon as the last member replies, one entry per member", async () => {
    const { c, client } = await cluster(41, [1, 2, 3]);
    const t0 = c.clock.now();
    const rply = await client.request("DVSINIT", { name: "lab" }, { gatherTimeoutMs: 5_000 });
    const elapsed = c.clock.now() - t0;
    expect(rply).toMatchObject({ rcode: 0, count: 3 });
    expect(entries(rply).map((e) => [e.src, e.rcode, e.seq, e.dst])).toEqual([
      [1, 1, rply.seq, "tool"],
      [2, 2, rply.seq, "tool"],
      [3, 3, rply.seq, "tool"],
    ]);
    // Simulated network latency is milliseconds: far from the 5 s gather timeout.
    expect(elapsed).toBeLessThan(200);
    const info = await client.request("GETDVSINFO", {}, { dst: 2 });
    expect(info).toMatchObject({ rcode: 0, src: 2, data: { name: "lab", nr_dcs: 32 } });
    const again = await client.request("DVSINIT", {}, { dst: 3 });
    expect(again.rcode).toBe(rcode("EEXIST"));
  });

  it("a member that does not answer gets an ETIMEDOUT entry at the request timeout", async () => {
    const { c, client } = await cluster(42, [1, 2, 3]);
    await client.request("DVSINIT", {});
    // Node 3 stops answering but has not been noticed yet (its process hangs: its connection
    // stays open, so no DISCONNECT advisory, and nothing it sends gets out): the gather waits
    // for it, then says so.
    c.network.setFaults({ dropRate: 1 }, "node-3");
    const t0 = c.clock.now();
    const rply = await client.request("GETDVSINFO", {}, { dst: 1, gatherTimeoutMs: 150 });
    expect(rply.src).toBe(1);
    // dst 1 is not ALL: ask ALL through node 1 explicitly.
    const all = await client.request("GETDVSINFO", {}, { gatherTimeoutMs: 150 });
    const elapsed = c.clock.now() - t0;
    const byNode = new Map(entries(all).map((e) => [e.src, e.rcode]));
    expect([...byNode.keys()].sort()).toEqual([1, 2, 3]);
    expect(byNode.get(3)).toBeOneOf([rcode("ETIMEDOUT"), rcode("EHOSTDOWN")]);
    expect(all.rcode).toBe(byNode.get(3));
    expect(byNode.get(1)).toBe(0);
    expect(byNode.get(2)).toBe(0);
    expect(elapsed).toBeLessThan(1_000);
  });

  it("an ALL reply names a crashed node EHOSTDOWN at once, and forgets a node that left on purpose", async () => {
    const { c, client } = await cluster(44, [1, 2, 3, 4]);
    await client.request("DVSINIT", {});
    stopClock?.();
    const viewIs = (members: string) => () =>
      [1, 2].every((n) => c.views().get(n)?.members.join() === members);
    c.crash(3);
    expect(await c.clock.runUntil(viewIs("1,2,4"), 5_000)).toBe(true);
    const stopping = c.stop(4);
    expect(await c.clock.runUntil(viewIs("1,2"), 5_000)).toBe(true);
    stopClock = c.clock.autoRun();
    await stopping;
    for (const dst of [1, 2]) {
      const t0 = c.clock.now();
      // ALL through node `dst`'s own subject, so each of the two gathers once.
      const rqst = {
        v: 1,
        type: "GETDVSINFO",
        src: "tool",
        dst: "ALL",
        seq: dst,
        timeout: 8_000,
        params: {},
      };
      const msg = await client.transport.request(client.subjects.nodeRqst(dst), encode(rqst), {
        timeoutMs: 10_000,
      });
      const decoded = decode(msg.data, "cbor");
      const all = rplySchema.parse(decoded.ok ? decoded.value : undefined);
      expect(entries(all).map((e) => [e.src, e.rcode])).toEqual([
        [1, 0],
        [2, 0],
        [3, rcode("EHOSTDOWN")],
      ]);
      expect(all).toMatchObject({ src: dst, rcode: rcode("EHOSTDOWN"), count: 3 });
      expect(c.clock.now() - t0).toBeLessThan(500);
    }
  });

  it("a member that leaves the view during the gather gets EHOSTDOWN without waiting for the timeout", async () => {
    const { c, client } = await cluster(43, [1, 2, 3]);
    await client.request("DVSINIT", {});
    c.cutLink(3);
    const t0 = c.clock.now();
    const all = await client
      .request("GETDVSINFO", {}, { dst: 1, gatherTimeoutMs: 8_000 })
      .then(() => client.request("GETDVSINFO", {}, { gatherTimeoutMs: 8_000 }));
    const elapsed = c.clock.now() - t0;
    const three = entries(all).find((e) => e.src === 3);
    // Either node 3 was already out of the view (2 entries) or it left during the gather (EHOSTDOWN).
    if (three) expect(three.rcode).toBe(rcode("EHOSTDOWN"));
    else expect(entries(all).map((e) => e.src)).toEqual([1, 2]);
    expect(elapsed).toBeLessThan(3_000);
  });

  it("a request for another node is forwarded by whichever node takes it", async () => {
    const { c, client } = await cluster(44, [1, 2, 3]);
    await client.request("DVSINIT", {});
    const before = c.nodes.get(1)?.replication?.stats.forwards ?? 0;
    for (let i = 0; i < 6; i++) {
      const rply = await client.request("GETNODEINFO", {}, { dst: 3, viaAnyNode: true });
      expect(rply).toMatchObject({ rcode: 0, src: 3, data: { nodeid: 3, view: [1, 2, 3] } });
    }
    const forwards = [1, 2].map((id) => c.nodes.get(id)?.replication?.stats.forwards ?? 0);
    expect(forwards[0]! - before + forwards[1]!).toBeGreaterThan(0);
    const viaOther = await client.request("GETNODEINFO", { nodeid: 2 }, { dst: 1 });
    expect(viaOther).toMatchObject({ rcode: 0, data: { nodeid: 2 } });
    const missing = await client.request("GETNODEINFO", {}, { dst: 9, viaAnyNode: true });
    expect(missing.rcode).toBe(rcode("EHOSTDOWN"));
  });

  it("DC changes sent to ALL leave the same DC on every node, and a node that joins later learns it", async () => {
    const { c, client } = await cluster(45, [1, 2, 3]);
    await client.request("DVSINIT", {});
    const init = await client.request("DCINIT", { dcid: 7, name: "web", nodes: [1, 2] });
    expect(entries(init).map((e) => e.rcode)).toEqual([7, 7, 7]);
    const add = await client.request("ADDNODE", { dcid: 7, nodeid: 4 });
    expect(add.rcode).toBe(0);
    const dup = await client.request("ADDNODE", { dcid: 7, nodeid: 4 }, { dst: 2 });
    expect(dup.rcode).toBe(rcode("EEXIST"));
    const infos = entries(await client.request("GETDCINFO", { dcid: 7 }));
    expect(new Set(infos.map((e) => JSON.stringify(e.data))).size).toBe(1);
    expect(infos[0]?.data).toMatchObject({ dcid: 7, name: "web", nodes: [1, 2, 4], nr_nodes: 3 });

    c.start(4);
    await c.clock.runUntil(() => c.nodes.get(4)?.store.dc(7) !== undefined, 5_000);
    expect(c.nodes.get(4)?.store.dc(7)?.nodes).toEqual([1, 2, 4]);
    const ended = await client.request("DCEND", { dcid: 7 }, { dst: 1 });
    expect(ended.rcode).toBe(0);
    expect((await client.request("GETDCINFO", { dcid: 7 }, { dst: 1 })).rcode).toBe(rcode("ENOENT"));
  });

  it("before DVSINIT a node answers ENOTINIT, but host requests and DVSINIT pass", async () => {
    const { client } = await cluster(46, [1, 2]);
    const rply = await client.request("GETDCINFO", { dcid: 1 });
    expect(entries(rply).map((e) => e.rcode)).toEqual([rcode("ENOTINIT"), rcode("ENOTINIT")]);
    const host = await client.request("PS", {}, { dst: 1 });
    expect(host.rcode).not.toBe(rcode("ENOTINIT"));
  });

  it("DVSEND leaves the view gracefully and DVSINIT brings the node back", async () => {
    const { c, client } = await cluster(47, [1, 2, 3]);
    await client.request("DVSINIT", {});
    const end = await client.request("DVSEND", {}, { dst: 2 });
    expect(end.rcode).toBe(0);
    await c.clock.runUntil(() => c.views().get(1)?.members.join() === "1,3", 2_000);
    const left = c.eventsOf(1).find((e) => e.event === "DISCONNECT");
    expect(left).toMatchObject({ changed: [{ node: 2 }] });
    expect(left?.cause).toMatch(/left/);
    expect(c.nodes.get(2)?.actor.getSnapshot().matches({ running: "detached" })).toBe(true);
    // Out of the view, node 2 still serves its own subject: not initialised, until DVSINIT.
    expect((await client.request("DCINIT", { dcid: 1 }, { dst: 2 })).rcode).toBe(rcode("ENOTINIT"));
    // It left the queue group: requests to any node and multicasts no longer reach it.
    for (let i = 0; i < 6; i++) {
      const all = await client.request("PS", {});
      expect(entries(all).map((e) => e.src)).toEqual([1, 3]);
    }
    // An ALL request on its own subject is answered by node 2 alone.
    const raw = await client.transport.request(
      c.nodes.get(2)?.subjects.nodeRqst(2) ?? "",
      encode({ v: 1, type: "GETDVSINFO", src: "tool", dst: "ALL", seq: 77, params: {} }),
      { timeoutMs: 1_000 },
    );
    const alone = decode(raw.data, "cbor");
    expect(alone.ok && alone.value).toMatchObject({
      rcode: rcode("ENOTINIT"),
      seq: 77,
      data: [{ src: 2, rcode: rcode("ENOTINIT") }],
    });
    expect((await client.request("DVSINIT", {}, { dst: 2 })).rcode).toBe(2);
    await c.clock.runUntil(() => c.views().get(1)?.members.join() === "1,2,3", 5_000);
    expect(c.nodes.get(2)?.actor.getSnapshot().matches({ running: "member" })).toBe(true);
  });

  it("DVSEND to ALL hears from every member before they all leave", async () => {
    const { c, client } = await cluster(48, [1, 2, 3]);
    await client.request("DVSINIT", {});
    const end = await client.request("DVSEND", {}, { gatherTimeoutMs: 3_000 });
    expect(entries(end).map((e) => [e.src, e.rcode])).toEqual([
      [1, 0],
      [2, 0],
      [3, 0],
    ]);
    await c.clock.runUntil(
      () => [1, 2, 3].every((id) => c.nodes.get(id)?.actor.getSnapshot().matches({ running: "detached" })),
      2_000,
    );
  });

  it("a process spawned on one node is reached from any node, and keeps its state and endpoint when it migrates", async () => {
    const { c, client } = await cluster(49, [1, 2, 3]);
    await client.request("DVSINIT", {});
    await client.request("DCINIT", { dcid: 1, nodes: [1, 2, 3] });
    const spawn = await client.request(
      "SPAWN",
      { dcid: 1, endpoint: 5, machine: "counter", name: "hits" },
      { dst: 1 },
    );
    expect(spawn.rcode).toBe(5);
    const viaAll = await client.request("SPAWN", { dcid: 1, machine: "counter" });
    expect(viaAll.rcode).toBe(rcode("EINVAL"));
    for (const dst of [1, 2, 3, 2]) {
      const sent = await client.request("SEND", { dcid: 1, endpoint: 5, body: { type: "inc" } }, { dst });
      expect(sent.rcode).toBe(0);
    }
    const moved = await client.request("MIGRATE", { dcid: 1, endpoint: 5, to: 3 }, { dst: 2 });
    expect(moved).toMatchObject({ rcode: 0, data: { nodeid: 3, endpoint: 5 } });
    await client.request("SEND", { dcid: 1, endpoint: 5, body: { type: "inc", by: 10 } }, { dst: 1 });
    await c.clock.runUntil(() => (c.nodes.get(3)?.processes?.processes()[0]?.delivered ?? 0) >= 5, 2_000);
    const info = await client.request("GETPROCINFO", { dcid: 1, endpoint: 5 }, { dst: 1 });
    expect(info).toMatchObject({
      rcode: 0,
      data: { nodeid: 3, endpoint: 5, name: "hits", machine: "counter", delivered: 5 },
    });
    expect(c.nodes.get(3)?.processes?.processes()[0]).toMatchObject({ endpoint: 5 });
    const node = await client.request("GETNODEINFO", {}, { dst: 1 });
    expect((node.data as { msgs_sent: number }).msgs_sent).toBeGreaterThan(0);
  });
});
