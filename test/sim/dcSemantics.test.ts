// What the DC tables do to processes and members, over the simulated network
// with real node runtimes: DCEND ends a DC's processes (EBUSY unless forced),
// DELNODE moves or ends the removed node's processes with an outcome each, the
// nr_procs / nr_tasks / nr_nodes limits answer ENOSPC, and a member declared
// gone leaves every DC on every survivor until it rejoins.
import { afterEach, describe, expect, it } from "vitest";
import type { DvsClient } from "../../client/dvsClient.js";
import { type Rply, rcode } from "../../protocol/messages.js";
import { SimCluster } from "../../sim/cluster.js";

let stopClock: (() => void) | undefined;
afterEach(() => {
  stopClock?.();
  stopClock = undefined;
});

async function cluster(seed: number, dvs: Record<string, number> = {}) {
  const c = await SimCluster.converged(seed, [1, 2, 3]);
  const client = c.client("tool", { timeoutMs: 10_000 });
  stopClock = c.clock.autoRun();
  expect((await client.request("DVSINIT", dvs)).rcode).toBe(0);
  return { c, client };
}

const entries = (rply: Rply) => rply.data as Rply[];
const entryOf = (rply: Rply, node: number) => entries(rply).find((e) => e.src === node);
/** The per-process outcomes in node `node`'s entry of a DELNODE reply. */
const processesOf = (rply: Rply, node: number) =>
  (entryOf(rply, node)?.data as { processes?: unknown })?.processes;

/** Starts node `id` again (a new incarnation, empty tables), waits for the full view, and initialises it. */
async function restart(c: SimCluster, client: DvsClient, id: number): Promise<void> {
  c.start(id);
  await c.clock.runUntil(() => [1, 2, 3].every((n) => c.views().get(n)?.members.length === 3), 5_000);
  expect((await client.request("DVSINIT", {}, { dst: id })).rcode).toBe(id);
  await c.advance(100);
}

/** The rcode of GETPROCINFO for `(dcid, endpoint)` asked of each node. */
async function procInfoCodes(client: DvsClient, dcid: number, endpoint: number): Promise<number[]> {
  const codes: number[] = [];
  for (const dst of [1, 2, 3])
    codes.push((await client.request("GETPROCINFO", { dcid, endpoint }, { dst })).rcode);
  return codes;
}

describe("DC semantics over the simulated network", () => {
  it("DCEND is refused with EBUSY while a process runs, and with force ends it: ENOENT everywhere after", async () => {
    const { c, client } = await cluster(61);
    expect((await client.request("DCINIT", { dcid: 1, nodes: [1, 2, 3] })).rcode).toBe(0);
    expect(
      (await client.request("SPAWN", { dcid: 1, endpoint: 5, machine: "counter" }, { dst: 2 })).rcode,
    ).toBe(5);
    await c.advance(50);

    const busy = await client.request("DCEND", { dcid: 1 });
    expect(entries(busy).map((e) => e.rcode)).toEqual([rcode("EBUSY"), rcode("EBUSY"), rcode("EBUSY")]);
    expect((await client.request("GETDCINFO", { dcid: 1 }, { dst: 3 })).rcode).toBe(0);

    const ended = await client.request("DCEND", { dcid: 1, force: true });
    expect(ended.rcode).toBe(0);
    expect(entryOf(ended, 2)?.data).toEqual({ dcid: 1, ended: [5] });
    expect(entryOf(ended, 1)?.data).toEqual({ dcid: 1, ended: [] });
    await c.advance(50);
    expect(await procInfoCodes(client, 1, 5)).toEqual([rcode("ENOENT"), rcode("ENOENT"), rcode("ENOENT")]);
    for (const dst of [1, 2, 3]) {
      const sent = await client.request("SEND", { dcid: 1, endpoint: 5, body: { type: "inc" } }, { dst });
      expect(sent).toMatchObject({ rcode: rcode("ENOENT"), data: { message: "DC 1 has ended" } });
    }
    expect(c.nodes.get(2)?.processes?.processes()).toEqual([]);
    // An empty DC ends without force.
    await client.request("DCINIT", { dcid: 2, nodes: [1, 2] });
    expect((await client.request("DCEND", { dcid: 2 })).rcode).toBe(0);
  });

  it("DELNODE moves the removed node's processes to the DC's other nodes, one outcome each", async () => {
    const { c, client } = await cluster(62);
    await client.request("DCINIT", { dcid: 1, nodes: [1, 2, 3] });
    await client.request(
      "SPAWN",
      { dcid: 1, endpoint: 5, machine: "counter", input: { count: 40 } },
      { dst: 3 },
    );
    await client.request("SPAWN", { dcid: 1, endpoint: 6, machine: "counter" }, { dst: 3 });
    await client.request("SPAWN", { dcid: 1, endpoint: 7, machine: "counter" }, { dst: 1 });
    await c.advance(50);

    const removed = await client.request("DELNODE", { dcid: 1, nodeid: 3 });
    expect(removed.rcode).toBe(0);
    expect(processesOf(removed, 3)).toEqual([
      { endpoint: 5, outcome: "migrated", to: 1 },
      { endpoint: 6, outcome: "migrated", to: 2 },
    ]);
    // The other nodes host nothing of it to move: their entries say so.
    expect(entryOf(removed, 1)?.data).toMatchObject({ nodes: [1, 2], processes: [] });
    await c.advance(50);
    const moved = await client.request("GETPROCINFO", { dcid: 1, endpoint: 5 }, { dst: 3 });
    expect(moved).toMatchObject({ rcode: 0, data: { nodeid: 1, epoch: 2, context: { count: 40 } } });
    expect(
      (await client.request("SEND", { dcid: 1, endpoint: 6, body: { type: "inc" } }, { dst: 3 })).rcode,
    ).toBe(0);
    expect(c.nodes.get(3)?.processes?.processes()).toEqual([]);
  });

  it("DELNODE ends the processes that no other node of the DC can take, and says why", async () => {
    const { c, client } = await cluster(63);
    await client.request("DCINIT", { dcid: 4, nodes: [2] });
    await client.request("SPAWN", { dcid: 4, endpoint: 1, machine: "kvCell" }, { dst: 2 });
    await c.advance(50);
    const removed = await client.request("DELNODE", { dcid: 4, nodeid: 2 });
    expect(processesOf(removed, 2)).toEqual([
      { endpoint: 1, outcome: "ended", reason: "no other node of DC 4 is in the view" },
    ]);
    await c.advance(50);
    expect(await procInfoCodes(client, 4, 1)).toEqual([rcode("ENOENT"), rcode("ENOENT"), rcode("ENOENT")]);
  });

  it("SPAWN past nr_procs or nr_tasks, and a DC past nr_nodes, answer ENOSPC", async () => {
    const { c, client } = await cluster(64, { nr_nodes: 2 });
    expect((await client.request("DCINIT", { dcid: 1, nodes: [1, 2, 3] })).rcode).toBe(rcode("ENOSPC"));
    await client.request("DCINIT", { dcid: 1, nodes: [1, 2], nr_procs: 2, nr_tasks: 1 });
    expect((await client.request("ADDNODE", { dcid: 1, nodeid: 3 })).rcode).toBe(rcode("ENOSPC"));
    const spawn = (endpoint: number, dst: number) =>
      client.request("SPAWN", { dcid: 1, endpoint, machine: "counter" }, { dst });
    expect((await spawn(0, 1)).rcode).toBe(0);
    expect((await spawn(-1, 1)).rcode).toBe(0);
    await c.advance(50);
    // Counted across the DC, whichever node is asked.
    expect((await spawn(1, 2)).rcode).toBe(1);
    await c.advance(50);
    expect(await spawn(2, 1)).toMatchObject({ rcode: rcode("ENOSPC"), data: { error: "ENOSPC" } });
    expect((await spawn(-2, 2)).rcode).toBe(rcode("ENOSPC"));
    // An ended process frees its place.
    expect((await client.request("PROCEND", { dcid: 1, endpoint: 1 }, { dst: 1 })).rcode).toBe(0);
    await c.advance(50);
    expect((await spawn(2, 1)).rcode).toBe(2);
  });

  it("a crashed member leaves every DC on every survivor after downAfter, and comes back when it rejoins", async () => {
    const { c, client } = await cluster(65);
    await client.request("DCINIT", { dcid: 1, nodes: [1, 2, 3] });
    await client.request("DCINIT", { dcid: 2, nodes: [2, 3] });
    const crashAt = c.clock.now();
    c.crash(3);
    await c.advance(c.timings.downAfterMs + 1_000);
    for (const dst of [1, 2]) {
      const one = (await client.request("GETDCINFO", { dcid: 1 }, { dst })).data as {
        nodes: number[];
        departed: { nodeid: number; cause: string; at: number }[];
      };
      expect(one).toMatchObject({ nodes: [1, 2], nr_nodes: 2 });
      expect(one.departed).toEqual([{ nodeid: 3, cause: expect.any(String), at: expect.any(Number) }]);
      // Unreachable (PARTITION) at once, but out of the DCs only once declared gone (DISCONNECT).
      expect(one.departed[0]?.cause).toBe("unreachable longer than downAfter");
      expect(one.departed[0]?.at).toBeGreaterThanOrEqual(crashAt + c.timings.downAfterMs);
      expect((await client.request("GETDCINFO", { dcid: 2 }, { dst })).data).toMatchObject({ nodes: [2] });
    }
    // The restarted node knows no DC (its tables were in memory): it learns them, and is back in both.
    await restart(c, client, 3);
    for (const dst of [1, 2, 3]) {
      expect((await client.request("GETDCINFO", { dcid: 1 }, { dst })).data).toMatchObject({
        nodes: [1, 2, 3],
        departed: [],
      });
      expect((await client.request("GETDCINFO", { dcid: 2 }, { dst })).data).toMatchObject({ nodes: [2, 3] });
    }
  });

  it("a member removed by DELNODE while it was gone does not come back until an ADDNODE names it", async () => {
    const { c, client } = await cluster(66);
    await client.request("DCINIT", { dcid: 1, nodes: [1, 2, 3] });
    await c.stop(3);
    await c.advance(100);
    expect((await client.request("GETDCINFO", { dcid: 1 }, { dst: 2 })).data).toMatchObject({
      nodes: [1, 2],
      departed: [{ nodeid: 3, cause: "left" }],
    });
    expect((await client.request("DELNODE", { dcid: 1, nodeid: 3 })).rcode).toBe(0);
    await restart(c, client, 3);
    for (const dst of [1, 2, 3])
      expect((await client.request("GETDCINFO", { dcid: 1 }, { dst })).data).toMatchObject({ nodes: [1, 2] });
    expect((await client.request("ADDNODE", { dcid: 1, nodeid: 3 })).rcode).toBe(0);
    for (const dst of [1, 2, 3])
      expect((await client.request("GETDCINFO", { dcid: 1 }, { dst })).data).toMatchObject({
        nodes: [1, 2, 3],
      });
  });

  it("a node that learns its DC ended while it was away ends the processes it kept running", async () => {
    const { c, client } = await cluster(67);
    await client.request("DCINIT", { dcid: 1, nodes: [1, 2, 3] });
    await client.request("SPAWN", { dcid: 1, endpoint: 9, machine: "counter" }, { dst: 3 });
    await c.advance(50);
    c.cutLink(3);
    await c.advance(c.timings.downAfterMs + 1_000);
    // Node 3 hosts the only process, and is out of the view: nothing runs that DCEND could refuse for.
    expect((await client.request("DCEND", { dcid: 1 }, { dst: 1 })).rcode).toBe(0);
    expect((await client.request("DCEND", { dcid: 1 }, { dst: 2 })).rcode).toBe(0);
    expect(
      c.nodes
        .get(3)
        ?.processes?.processes()
        .map((p) => p.endpoint),
    ).toEqual([9]);
    c.restoreLink(3);
    await c.clock.runUntil(() => [1, 2, 3].every((id) => c.views().get(id)?.members.length === 3), 10_000);
    await c.advance(200);
    expect(c.nodes.get(3)?.processes?.processes()).toEqual([]);
    expect(await procInfoCodes(client, 1, 9)).toEqual([rcode("ENOENT"), rcode("ENOENT"), rcode("ENOENT")]);
  });
});
