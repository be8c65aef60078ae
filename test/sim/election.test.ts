// Scenarios of the election over the simulated network (SPEC 7): one
// coordinator, a new one after a crash, none on a side without the store, and
// an idle election that wakes only when something is due.
import { describe, expect, it } from "vitest";
import { COORDINATOR_KEY } from "../../actors/election.js";
import { RegistryClient } from "../../client/registryClient.js";
import { encode } from "../../protocol/codec.js";
import { coordinatorRecordSchema } from "../../protocol/messages.js";
import { SimCluster } from "../../sim/cluster.js";

function coordinators(cluster: SimCluster): number[] {
  return [...cluster.nodes]
    .filter(([, n]) => n.election?.state().term !== null && n.election !== undefined)
    .map(([id]) => id);
}

function whoAll(cluster: SimCluster): string[] {
  return [...cluster.nodes.values()].map((n) => {
    const who = n.election?.state().who;
    return who?.type === "OK" ? `${who.coordinator}@${who.epoch}` : "NOTHING";
  });
}

/** From WHO naming a new coordinator to its holding the term: its confirming write (confirmMs, then a store round trip). */
const TERM_OPENS_MS = 200;

describe("election over the simulated network", () => {
  it("five nodes agree on one coordinator, and on a new one after it crashes", async () => {
    const cluster = new SimCluster({ seed: 7, election: {} });
    for (const id of [1, 2, 3, 4, 5]) cluster.start(id);
    await cluster.advance(2_000);
    const first = coordinators(cluster);
    expect(first).toHaveLength(1);
    const who = whoAll(cluster);
    expect(new Set(who).size).toBe(1);
    expect(who[0]).toMatch(new RegExp(`^${first[0]}@`));
    cluster.crash(first[0] as number);
    const crashedAt = cluster.clock.now();
    const ok = await cluster.clock.runUntil(() => {
      const w = whoAll(cluster);
      return new Set(w).size === 1 && w[0] !== "NOTHING" && !w[0]?.startsWith(`${first[0]}@`);
    }, 5_000);
    expect(ok).toBe(true);
    expect(cluster.clock.now() - crashedAt).toBeLessThan(1_000);
    await cluster.advance(TERM_OPENS_MS);
    expect(coordinators(cluster)).toHaveLength(1);
  });

  it("a WHO lost on the way is asked again and answered within the client's timeout", async () => {
    const cluster = new SimCluster({ seed: 9, election: {} });
    for (const id of [1, 2, 3]) cluster.start(id);
    await cluster.advance(2_000);
    const registry = new RegistryClient({
      cluster: "dvs",
      transport: cluster.network.connect("tool"),
      clock: cluster.clock,
      timeoutMs: 2_000,
      attemptMs: 400,
    });
    // The first WHO never arrives (as one the queue hands a registry that dies that instant).
    cluster.network.setFaults({ dropRate: 1 }, "tool");
    const asked = cluster.clock.now();
    const answer = registry.who();
    await cluster.advance(100);
    cluster.network.setFaults({ dropRate: 0 }, "tool");
    let settled: Awaited<typeof answer> | undefined;
    void answer.then((a) => {
      settled = a;
    });
    expect(await cluster.clock.runUntil(() => settled !== undefined, 2_000)).toBe(true);
    expect(settled).toMatchObject({ type: "OK", coordinator: coordinators(cluster)[0] });
    expect(cluster.clock.now() - asked).toBeGreaterThanOrEqual(400);
    expect(cluster.clock.now() - asked).toBeLessThan(1_000);
  });

  it.each([
    ["garbage bytes", new Uint8Array([0xde, 0xad, 0xbe, 0xef, 0x00])],
    ["a record that fails the schema", encode({ v: 1, coordinator: "me", epoch: -1 }, "json")],
    [
      "a record whose epoch no write could give it",
      encode({ v: 1, coordinator: 2, epoch: 2 ** 40, writer: 2, at: 0 }, "json"),
    ],
  ])(
    "a coordinator record overwritten with %s is replaced by compare-and-set at the next election",
    async (_, junk) => {
      const cluster = new SimCluster({ seed: 11, election: {} });
      const kv = cluster.kv as NonNullable<SimCluster["kv"]>;
      for (const id of [1, 2, 3]) cluster.start(id);
      await cluster.advance(2_000);
      expect(coordinators(cluster)).toHaveLength(1);
      // Someone with write access to the bucket puts junk over the live record.
      cluster.network.connect("intruder");
      const store = kv.client("intruder");
      const before = kv.peek(COORDINATOR_KEY);
      let junkRevision = 0;
      void store.update(COORDINATOR_KEY, junk, before?.revision ?? 0).then((r) => {
        junkRevision = r;
      });
      expect(await cluster.clock.runUntil(() => junkRevision > 0, 1_000)).toBe(true);
      const recovered = await cluster.clock.runUntil(() => {
        const w = whoAll(cluster);
        return new Set(w).size === 1 && w[0] !== "NOTHING";
      }, 10_000);
      expect(recovered, `WHO answers: ${whoAll(cluster).join(", ")}`).toBe(true);
      // The junk was replaced by a well-formed record whose term opened after it.
      const now = kv.peek(COORDINATOR_KEY);
      expect(now?.revision).toBeGreaterThan(junkRevision);
      const record = coordinatorRecordSchema.parse(JSON.parse(new TextDecoder().decode(now?.value)));
      expect(record.epoch ?? now?.revision).toBeGreaterThan(junkRevision);
      await cluster.advance(TERM_OPENS_MS);
      expect(coordinators(cluster)).toHaveLength(1);
    },
  );

  it("a settled election ticks only when something is due: the coordinator to renew, and a worker never", async () => {
    const cluster = new SimCluster({ seed: 7, election: {} });
    for (const id of [1, 2, 3]) cluster.start(id);
    await cluster.advance(2_000);
    const [coordinator] = coordinators(cluster);
    const ticks = new Map<number, number>();
    for (const [id, node] of cluster.nodes) {
      const election = node.election as NonNullable<typeof node.election>;
      ticks.set(id, 0);
      for (const actor of [election.registry, election.server])
        actor.system.inspect((e) => {
          if (e.type === "@xstate.event" && e.event.type === "clock.tick" && e.actorRef === actor)
            ticks.set(id, (ticks.get(id) ?? 0) + 1);
        });
    }
    const { renewMs, statusMs } = cluster.electionTimings;
    const ms = 5_000;
    await cluster.advance(ms);
    // Each tick reaches both machines. A fixed-rate tick made 250 on every node; now the coordinator
    // wakes for each renewal and each STATUS, and a worker hearing the renewals for nothing.
    const { [coordinator as number]: busy, ...idle } = Object.fromEntries(ticks);
    expect((busy ?? 0) / 2).toBeGreaterThanOrEqual(ms / renewMs);
    expect((busy ?? 0) / 2).toBeLessThanOrEqual(ms / renewMs + ms / statusMs + 1);
    expect(Object.values(idle)).toEqual([0, 0]);
    expect(coordinators(cluster)).toEqual([coordinator]);
  });
});
