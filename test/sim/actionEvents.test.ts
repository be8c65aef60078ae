// What the cluster does by itself is in the action log too (SPEC 6.4): a file
// COMMIT (written by the coordinator that ran it), a coordinator change (by the
// new coordinator, once per term) and each membership event (by the lowest
// member of the new view, once), over the simulated network.
import { describe, expect, it } from "vitest";
import { bytesSource, FileClient } from "../../client/fileClient.js";
import { subjects } from "../../protocol/subjects.js";
import { SimCluster } from "../../sim/cluster.js";
import { type EventRecord, MemoryActionLog } from "../../transport/actionLog.js";

describe("the cluster's own events in the action log", () => {
  it("records a COMMIT, the coordinator's term and each membership event once, and a coordinator change", async () => {
    const log = new MemoryActionLog();
    const cluster = new SimCluster({ seed: 7, election: {}, files: {}, actionLog: log });
    for (const id of [1, 2, 3]) cluster.start(id);
    await cluster.advance(2_000);
    const client = new FileClient({
      transport: cluster.network.connect("client", { server: 0 }),
      subjects: subjects("dvs"),
      clock: cluster.network.hostClock("client"),
      newCommitId: () => "c7-1",
    });
    const committed = await cluster.settle(
      client.commit("notes/a.txt", bytesSource(new TextEncoder().encode("hi"))),
    );
    await cluster.advance(500);

    const events = await log.events({ limit: 1_000 });
    const terms = events.filter((e) => e.type === "COORDINATOR");
    const first = terms[0];
    expect(first).toMatchObject({ kind: "event", ok: 1, epoch: expect.any(Number) });
    expect(first?.coordinator).toBe(first?.node);
    // The COMMIT, written by the coordinator that ran it.
    const commits = events.filter((e) => e.type === "COMMIT");
    expect(commits).toEqual([
      expect.objectContaining({
        node: first?.coordinator,
        ok: 1,
        file: { name: "notes/a.txt", version: 1, holders: committed.holders, outcome: "SUCCESS" },
      }),
    ]);
    // Membership: each view change once, by the lowest member of the new view.
    const membership = events.filter((e) => e.type !== "COMMIT" && e.type !== "COORDINATOR");
    expect(membership.length).toBeGreaterThan(0);
    for (const e of membership) expect(e.node).toBe(Math.min(...(e.view?.members ?? [])));
    const viewIds = membership.map((e) => `${e.type}:${e.view?.id}:${e.view?.members.join(",")}`);
    expect(new Set(viewIds).size).toBe(viewIds.length);
    expect(membership.at(-1)).toMatchObject({ view: { members: [1, 2, 3] } });

    // The coordinator crashes: the survivors' lowest member records its leaving, the new coordinator its term.
    const old = first?.coordinator as number;
    cluster.crash(old);
    await cluster.advance(5_000);
    const after = (await log.events({ limit: 1_000 })).slice(events.length);
    const survivors = [1, 2, 3].filter((n) => n !== old);
    // A crash reads as DISCONNECT or, when the node's subscriptions vanish at once, as PARTITION.
    const left = after.find((e: EventRecord) => e.type === "DISCONNECT" || e.type === "PARTITION");
    expect(left).toMatchObject({
      node: Math.min(...survivors),
      changed: [old],
      view: { members: survivors },
    });
    const next = after.find((e: EventRecord) => e.type === "COORDINATOR");
    expect(next).toMatchObject({ node: next?.coordinator });
    expect(survivors).toContain(next?.coordinator);
    expect(next?.epoch).toBeGreaterThan(first?.epoch ?? 0);
  }, 60_000);
});
