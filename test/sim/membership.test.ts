// Membership scenarios over the simulated network: real node runtimes, a
// simulated clock, default timings (heartbeat 200 ms, suspect after 3 missed,
// downAfter 5 s).
import { describe, expect, it } from "vitest";
import { SimCluster } from "../../sim/cluster.js";

async function cluster(ids: number[], seed = 1, servers = 1, serverOf: (id: number) => number = () => 0) {
  const c = new SimCluster({ seed, servers });
  for (const id of ids) c.start(id, serverOf(id));
  await c.advance(1_000);
  return c;
}

const allSame = (c: SimCluster) => {
  const views = [...c.views().values()];
  return views.every((v) => v.id === views[0]?.id && v.members.join() === views[0]?.members.join());
};

describe("membership over the simulated network", () => {
  it("three nodes that start together agree on one view of all three", async () => {
    const c = await cluster([1, 2, 3]);
    const views = c.views();
    expect([...views.keys()].sort()).toEqual([1, 2, 3]);
    for (const v of views.values()) expect(v.members).toEqual([1, 2, 3]);
    expect(allSame(c)).toBe(true);
    // Each node's first event is its own JOIN.
    for (const id of [1, 2, 3]) expect(c.eventsOf(id)[0]).toMatchObject({ event: "JOIN", cause: "started" });
  });

  it("a crashed node is reported by every survivor as PARTITION well within 500 ms, then DISCONNECT after downAfter", async () => {
    const c = await cluster([1, 2, 3, 4, 5], 2);
    const crashAt = c.clock.now();
    c.crash(3);
    await c.advance(600);
    for (const id of [1, 2, 4, 5]) {
      const p = c.eventsOf(id).find((e) => e.event === "PARTITION");
      expect(p?.changed).toEqual([{ node: 3, incarnation: 1 }]);
      expect((p?.at ?? Number.POSITIVE_INFINITY) - crashAt).toBeLessThan(500);
    }
    await c.advance(5_500);
    for (const id of [1, 2, 4, 5]) {
      const d = c.eventsOf(id).find((e) => e.event === "DISCONNECT");
      expect(d?.changed).toEqual([{ node: 3, incarnation: 1 }]);
      expect(c.views().get(id)?.members).toEqual([1, 2, 4, 5]);
    }
    expect(allSame(c)).toBe(true);
  });

  it("a graceful stop is a DISCONNECT at once at every other node", async () => {
    const c = await cluster([1, 2, 3], 3);
    const at = c.clock.now();
    await c.stop(2);
    await c.advance(50);
    for (const id of [1, 3]) {
      const d = c.eventsOf(id).find((e) => e.event === "DISCONNECT");
      expect(d).toMatchObject({ cause: "left", changed: [{ node: 2, incarnation: 1 }] });
      expect((d?.at ?? 0) - at).toBeLessThan(50);
    }
    expect(c.eventsOf(1).some((e) => e.event === "PARTITION")).toBe(false);
  });

  it("a restarted node is the DISCONNECT of its old incarnation and the JOIN of the new one", async () => {
    const c = await cluster([1, 2, 3], 4);
    c.crash(3);
    c.start(3);
    await c.advance(1_000);
    const kinds = c
      .eventsOf(1)
      .map((e) => `${e.event}:${e.changed.map((m) => `${m.node}/${m.incarnation}`).join(",")}`);
    expect(kinds).toContain("DISCONNECT:3/1");
    expect(kinds).toContain("JOIN:3/2");
    expect(kinds.indexOf("DISCONNECT:3/1")).toBeLessThan(kinds.indexOf("JOIN:3/2"));
    // The restarted node numbers its first view as the others number the view it joins.
    const seenBy1 = c
      .eventsOf(1)
      .find((e) => e.event === "JOIN" && e.changed.some((m) => m.node === 3 && m.incarnation === 2));
    const own = c.events.find((e) => e.node === 3 && e.incarnation === 2 && e.cause === "started");
    expect(own?.view).toEqual(seenBy1?.view);
    expect(allSame(c)).toBe(true);
    expect(c.views().get(1)?.members).toEqual([1, 2, 3]);
  });

  it("a short link cut is a PARTITION on both sides and a MERGE after restore", async () => {
    const c = await cluster([1, 2, 3], 5);
    c.cutLink(3);
    await c.advance(2_000);
    expect(c.eventsOf(1).some((e) => e.event === "PARTITION" && e.changed.some((m) => m.node === 3))).toBe(
      true,
    );
    expect(c.eventsOf(3).some((e) => e.event === "PARTITION" && e.cause === "lost own NATS link")).toBe(true);
    c.restoreLink(3);
    await c.advance(2_000);
    expect(c.eventsOf(1).some((e) => e.event === "MERGE" && e.changed.some((m) => m.node === 3))).toBe(true);
    expect(c.eventsOf(3).some((e) => e.event === "MERGE")).toBe(true);
    expect(allSame(c)).toBe(true);
    expect(c.views().get(3)?.members).toEqual([1, 2, 3]);
  });

  it("after a cut longer than downAfter the isolated node rejoins as a new incarnation", async () => {
    const c = await cluster([1, 2, 3], 6);
    c.cutLink(3);
    await c.advance(7_000);
    expect(c.eventsOf(1).some((e) => e.event === "DISCONNECT" && e.changed.some((m) => m.node === 3))).toBe(
      true,
    );
    c.restoreLink(3);
    await c.advance(3_000);
    expect(c.incarnationOf(3)).toBe(2);
    expect(
      c
        .eventsOf(1)
        .some((e) => e.event === "JOIN" && e.changed.some((m) => m.node === 3 && m.incarnation === 2)),
    ).toBe(true);
    expect(c.incarnationOf(1)).toBe(1);
    expect(allSame(c)).toBe(true);
    expect(c.views().get(1)?.members).toEqual([1, 2, 3]);
  });

  it("a cut route splits the cluster into its two components, which merge again after restore", async () => {
    const c = await cluster([1, 2, 3, 4], 7, 2, (id) => (id <= 2 ? 0 : 1));
    c.network.cutRoute(0, 1);
    await c.advance(2_000);
    expect(c.views().get(1)?.members).toEqual([1, 2]);
    expect(c.views().get(3)?.members).toEqual([3, 4]);
    c.network.restoreRoute(0, 1);
    await c.advance(2_000);
    for (const v of c.views().values()) expect(v.members).toEqual([1, 2, 3, 4]);
    expect(allSame(c)).toBe(true);
  });

  it("in quorum mode the minority side of a partition stays a minority after it declares the others down", async () => {
    const c = new SimCluster({ seed: 8, servers: 2, quorum: true });
    for (const id of [1, 2, 3, 4, 5]) c.start(id, id <= 2 ? 1 : 0);
    await c.advance(1_000);
    const minority = (id: number) => c.nodes.get(id)?.membership?.context.minority;
    expect([1, 2, 3, 4, 5].map(minority)).toEqual([false, false, false, false, false]);
    c.network.cutRoute(0, 1);
    await c.advance(2_000);
    expect([1, 2, 3, 4, 5].map(minority)).toEqual([true, true, false, false, false]);
    await c.advance(6_000);
    expect(c.views().get(1)?.members).toEqual([1, 2]);
    expect([1, 2, 3, 4, 5].map(minority)).toEqual([true, true, false, false, false]);
    c.network.restoreRoute(0, 1);
    await c.advance(3_000);
    expect([1, 2, 3, 4, 5].map(minority)).toEqual([false, false, false, false, false]);
    for (const v of c.views().values()) expect(v.members).toEqual([1, 2, 3, 4, 5]);
  });

  it("when a cut node has declared the others down but they not yet it, a heal makes only the cut node rejoin", async () => {
    const c = await cluster([1, 2, 3], 3);
    c.cutLink(3);
    await c.advance(5_100);
    expect(c.eventsOf(3).some((e) => e.event === "DISCONNECT")).toBe(true);
    expect(c.eventsOf(1).some((e) => e.event === "DISCONNECT")).toBe(false);
    c.restoreLink(3);
    await c.advance(3_000);
    expect([1, 2, 3].map((id) => c.incarnationOf(id))).toEqual([1, 1, 2]);
    for (const v of c.views().values()) expect(v.members).toEqual([1, 2, 3]);
    expect(allSame(c)).toBe(true);
  });
});
