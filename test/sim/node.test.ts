// The node runtime over the simulated network: the same code that runs over
// NATS, driven by a simulated clock, reproducibly.
import { describe, expect, it } from "vitest";
import { silentLogger } from "../../actors/logger.js";
import { NodeRuntime } from "../../actors/node.js";
import { DvsClient } from "../../client/dvsClient.js";
import { decode, encode } from "../../protocol/codec.js";
import { rcode } from "../../protocol/messages.js";
import { NoRespondersError } from "../../transport/errors.js";
import { SimNetwork } from "../../transport/sim/index.js";

function simNode(network: SimNetwork, node: number, incarnation = 1) {
  const name = `node-${node}`;
  return new NodeRuntime(
    {
      node,
      cluster: "dvs",
      incarnation,
      handlers: { GETDVSINFO: () => ({ rcode: 0, data: { name: `n${node}` } }) },
    },
    { clock: network.hostClock(name), logger: silentLogger, connect: async () => network.connect(name) },
  ).start();
}

describe("node runtime over the simulated network", () => {
  it("serves requests, is isolated while its link is cut, and serves again after restore", async () => {
    const network = new SimNetwork({ seed: 11 });
    const node = simNode(network, 1);
    const client = new DvsClient(network.connect("tool"), {
      cluster: "dvs",
      clientId: "tool",
      timeoutMs: 500,
    });
    await network.clock.runUntil(() => node.actor.getSnapshot().matches({ running: "member" }), 2_000);
    const stop = network.clock.autoRun();
    try {
      const before = await client.request("GETDVSINFO", {}, { dst: 1 });
      expect(before.rcode).toBe(rcode("ENOTINIT"));
      expect((await client.request("DVSINIT", {}, { dst: 1 })).rcode).toBe(1);
      const ok = await client.request("GETDVSINFO", {}, { dst: 1 });
      expect(ok).toMatchObject({ rcode: 0, src: 1, data: { name: "n1" } });
      const bad = await client.request("DCINIT", { dcid: -1 }, { dst: 1 });
      expect(bad.rcode).toBe(rcode("EBADMSG"));
      const wrongDst = await client.transport.request(
        "dvs.dvs.node.1.rqst",
        encode({ v: 1, type: "GETDVSINFO", src: "tool", dst: 2, seq: 5, params: {} }),
        { timeoutMs: 500 },
      );
      const wrong = decode(wrongDst.data, "cbor");
      // Node 2 is not in node 1's view: forwarding it answers EHOSTDOWN at once.
      expect(wrong.ok && wrong.value).toMatchObject({ rcode: rcode("EHOSTDOWN"), seq: 5, src: 1 });

      network.cutLink("node-1");
      await network.clock.runUntil(() => node.actor.getSnapshot().matches({ running: "isolated" }), 1_000);
      await expect(client.request("GETDVSINFO", {}, { dst: 1 })).rejects.toBeInstanceOf(NoRespondersError);

      network.restoreLink("node-1");
      await network.clock.runUntil(() => node.actor.getSnapshot().matches({ running: "member" }), 2_000);
      expect(node.actor.getSnapshot().context.linkLosses).toBe(1);
      expect((await client.request("GETDVSINFO", {}, { dst: 1 })).rcode).toBe(0);

      await node.stop("test");
      await expect(client.request("GETDVSINFO", {}, { dst: 1 })).rejects.toBeInstanceOf(NoRespondersError);
    } finally {
      stop();
    }
  });

  it("shares the cluster queue subject: each request is answered by exactly one node", async () => {
    const network = new SimNetwork({ seed: 5 });
    const nodes = [simNode(network, 1), simNode(network, 2), simNode(network, 3)];
    const client = new DvsClient(network.connect("tool"), {
      cluster: "dvs",
      clientId: "tool",
      timeoutMs: 500,
    });
    await network.clock.runUntil(() => nodes.every((n) => n.actor.getSnapshot().matches("running")), 1_000);
    const stop = network.clock.autoRun();
    try {
      const answered: number[] = [];
      for (let i = 0; i < 30; i++) answered.push(Number((await client.request("GETDVSINFO")).src));
      expect(answered).toHaveLength(30);
      expect(new Set(answered).size).toBeGreaterThan(1);
    } finally {
      stop();
    }
  });

  it("runs the same way twice from the same seed", async () => {
    async function run(seed: number) {
      const network = new SimNetwork({ seed, latencyMs: { min: 1, max: 20 } });
      const nodes = [simNode(network, 1), simNode(network, 2)];
      const client = new DvsClient(network.connect("tool"), {
        cluster: "dvs",
        clientId: "tool",
        timeoutMs: 300,
      });
      await network.clock.runUntil(() => nodes.every((n) => n.actor.getSnapshot().matches("running")), 1_000);
      const stop = network.clock.autoRun();
      const results: unknown[] = [];
      for (let i = 0; i < 10; i++) {
        if (i === 4) network.cutLink("node-2");
        if (i === 7) network.restoreLink("node-2");
        results.push(
          await client.request("GETDVSINFO").then(
            (r) => r.src,
            (e: Error) => e.name,
          ),
        );
      }
      stop();
      return { results, trace: network.trace.map((t) => ({ ...t })), now: network.clock.now() };
    }
    const a = await run(99);
    const b = await run(99);
    expect(b).toEqual(a);
    expect(a.trace.length).toBeGreaterThan(20);
  });
});
