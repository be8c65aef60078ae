// collectStatus over the simulated network: real node runtimes answer on
// `dvs.<c>._status`; the gathering stops as soon as every node named in a view
// has answered, and at the deadline otherwise.
import { describe, expect, it } from "vitest";
import { agreeOnView, collectStatus, formatMembers } from "../../client/clusterStatus.js";
import { DvsClient } from "../../client/dvsClient.js";
import { encode } from "../../protocol/codec.js";
import { type NodeStatus, PROTOCOL_VERSION } from "../../protocol/messages.js";
import { SimCluster } from "../../sim/cluster.js";
import type { Transport } from "../../transport/transport.js";

async function cluster(ids: number[], seed: number) {
  const c = new SimCluster({ seed });
  for (const id of ids) c.start(id);
  await c.advance(1_000);
  return c;
}

/** collectStatus while simulated time advances by `advanceMs`, and how long it took. */
async function timedStatus(c: SimCluster, tool: Transport, timeoutMs: number, advanceMs: number) {
  const start = c.clock.now();
  let doneAt = 0;
  const result = collectStatus(tool, { cluster: "dvs", timeoutMs, clock: c.clock }).then((r) => {
    doneAt = c.clock.now();
    return r;
  });
  await c.advance(advanceMs);
  const r = await result;
  return { r, elapsed: doneAt - start };
}

function status(node: number, members: number[], id = 5): NodeStatus {
  return {
    v: PROTOCOL_VERSION,
    node,
    incarnation: 1,
    state: "member",
    view: { id, members },
    minority: false,
    peers: [],
    pid: 100 + node,
  };
}

describe("collectStatus", () => {
  it("waits for the deadline when a node is out of the DVS, so it lists every node", async () => {
    const c = await cluster([1, 2, 3], 12);
    const tool = c.network.connect("tool");
    // Node 3 leaves the DVS (DVSEND): its view names no one.
    c.nodes.get(3)?.store.init({});
    const client = c.network.connect("client");
    const dvs = new DvsClient(client, { cluster: "dvs", clientId: "t", timeoutMs: 1_000 });
    const ended = dvs.request("DVSEND", {}, { dst: 3 });
    await c.advance(1_000);
    expect((await ended).rcode).toBe(0);
    const { r, elapsed } = await timedStatus(c, tool, 500, 600);
    // Had it stopped when the views' members had answered, node 3 could be missing or alone.
    expect(elapsed).toBeGreaterThanOrEqual(500);
    expect(r.nodes.map((n) => [n.node, n.view.members.length > 0])).toEqual([
      [1, true],
      [2, true],
      [3, false],
    ]);
  });

  it("gathers every node's status and stops as soon as the whole view has answered", async () => {
    const c = await cluster([1, 2, 3], 11);
    const tool = c.network.connect("tool");
    const { r, elapsed } = await timedStatus(c, tool, 1_000, 1_100);
    expect(r.complete).toBe(true);
    expect(r.missing).toEqual([]);
    expect(r.nodes.map((n) => n.node)).toEqual([1, 2, 3]);
    expect(agreeOnView(r.nodes, [1, 2, 3])).toBe(true);
    expect(elapsed).toBeLessThan(1_000);
    expect(formatMembers(r.nodes).split("\n")[0]).toMatch(
      /^node\s+incarnation\s+state\s+view\s+members\s+pid$/,
    );
  });

  it("waits until the deadline for a node named in a view, and counts malformed answers", async () => {
    const c = new SimCluster({ seed: 12 });
    const rogue = c.network.connect("rogue");
    rogue.subscribe("dvs.dvs._status", (msg) => {
      if (!msg.reply) return;
      rogue.publish(msg.reply, encode({ hello: "world" }));
      rogue.publish(msg.reply, encode(status(7, [7, 9])));
    });
    const tool = c.network.connect("tool");
    const { r, elapsed } = await timedStatus(c, tool, 500, 600);
    expect(elapsed).toBeGreaterThanOrEqual(500);
    expect(r.nodes.map((n) => n.node)).toEqual([7]);
    expect(r.complete).toBe(false);
    expect(r.missing).toEqual([9]);
    expect(r.malformed).toBe(1);
  });

  it("finds nobody when no node listens", async () => {
    const c = new SimCluster({ seed: 13 });
    const tool = c.network.connect("tool");
    const result = collectStatus(tool, { cluster: "dvs", timeoutMs: 300, clock: c.clock });
    await c.advance(400);
    expect(await result).toEqual({ nodes: [], complete: false, missing: [], malformed: 0 });
  });
});

describe("agreeOnView", () => {
  it("needs exactly the wanted nodes, one view id and the same members", () => {
    expect(agreeOnView([status(1, [1, 2]), status(2, [1, 2])], [1, 2])).toBe(true);
    expect(agreeOnView([status(1, [1, 2]), status(2, [1, 2], 6)], [1, 2])).toBe(false);
    expect(agreeOnView([status(1, [1, 2])], [1, 2])).toBe(false);
    expect(agreeOnView([status(1, [1]), status(2, [1, 2])], [1, 2])).toBe(false);
    expect(agreeOnView([], [])).toBe(false);
  });
});
