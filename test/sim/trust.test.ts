// Trust boundaries on the simulated network (SPEC 6.5): a node answers only
// inboxes, a relayed mutating request needs the admin's proof, a heartbeat
// counts only on the subject of the node it names, and what a requester may
// cost a node is bounded.
import { afterEach, describe, expect, it } from "vitest";
import { DvsClient } from "../../client/dvsClient.js";
import { decode, encode } from "../../protocol/codec.js";
import { PROTOCOL_VERSION, type Rply, rcode } from "../../protocol/messages.js";
import { SimCluster } from "../../sim/cluster.js";
import type { Message } from "../../transport/transport.js";

let stopClock: (() => void) | undefined;
afterEach(() => {
  stopClock?.();
  stopClock = undefined;
});

async function cluster(seed: number, ids: readonly number[]) {
  const c = await SimCluster.converged(seed, ids);
  stopClock = c.clock.autoRun();
  return c;
}

const rqst = (type: string, params: unknown, extra: Record<string, unknown> = {}) =>
  encode({ v: PROTOCOL_VERSION, type, src: "attacker", dst: 1, seq: 1, params, ...extra });

describe("trust boundaries on the simulated network", () => {
  it("a request whose reply subject is not an inbox is dropped: nothing is published there", async () => {
    const c = await cluster(71, [1, 2]);
    const attacker = c.network.connect("attacker");
    const watcher = c.network.connect("watcher");
    const seen: Message[] = [];
    for (const target of ["$JS.API.>", "$KV.>", "dvs.dvs.actions.>"])
      watcher.subscribe(target, (m) => void seen.push(m));
    const targets = [
      "$JS.API.STREAM.PURGE.DVS_ACTIONS_dvs",
      "$KV.DVS_REGISTRY_dvs.coordinator",
      "dvs.dvs.actions.1.X.outcome",
    ];
    for (const reply of targets) {
      attacker.publish("dvs.dvs.ro.node.1.rqst", rqst("GETDVSINFO", {}), { reply });
      attacker.publish("dvs.dvs.ro.rqst", rqst("GETNODEINFO", {}), { reply });
      attacker.publish("dvs.dvs._status", new Uint8Array(), { reply });
      attacker.publish("dvs.dvs._probe.1", encode({ node: 9 }), { reply });
      attacker.publish("dvs.dvs.dns.who", new Uint8Array(), { reply });
    }
    await c.advance(500);
    expect(seen.map((m) => m.subject)).toEqual([]);
    // The same request with an inbox is answered (before DVSINIT: ENOTINIT, from node 1).
    const client = new DvsClient(c.network.connect("viewer"), {
      cluster: "dvs",
      clientId: "v",
      role: "viewer",
    });
    const answered = await client.request("GETDVSINFO", {}, { dst: 1 });
    expect(answered).toMatchObject({ src: 1, rcode: rcode("ENOTINIT") });
  });

  it("a mutating request passed on by a node without the admin's proof is EPERM and changes nothing", async () => {
    const c = await cluster(72, [1, 2]);
    const stolen = c.network.connect("node-1-stolen");
    for (const [subject, type, params] of [
      ["dvs.dvs._fwd.2", "DVSINIT", { name: "forged" }],
      ["dvs.dvs._mcast", "DVSINIT", { name: "forged" }],
    ] as const) {
      const answer = await stolen.request(subject, rqst(type, params, { role: "admin", dst: 2 }), {
        timeoutMs: 2_000,
      });
      const decoded = decode(answer.data, "cbor");
      expect(decoded.ok && (decoded.value as Rply).rcode).toBe(rcode("EPERM"));
    }
    const client = new DvsClient(c.network.connect("v"), { cluster: "dvs", clientId: "v", role: "viewer" });
    const info = await client.request("GETDVSINFO", {}, { dst: 2 });
    expect(info.rcode).toBe(rcode("ENOTINIT"));
  });

  it("a heartbeat on another node's subject is ignored: one forged heartbeat evicts nobody", async () => {
    const c = await cluster(73, [1, 2, 3]);
    const stolen = c.network.connect("node-1-stolen");
    const incarnation = 2 ** 40;
    const forged = {
      v: PROTOCOL_VERSION,
      node: 2,
      incarnation,
      seq: 1,
      view: { id: 1, size: 1, first: 2, digest: 0 },
      down: [],
    };
    for (let i = 0; i < 5; i++) stolen.publish("dvs.dvs._hb.1", encode(forged));
    await c.advance(2_000);
    for (const [, view] of c.views()) expect(view.members).toEqual([1, 2, 3]);
    expect(c.events.filter((e) => e.event === "DISCONNECT")).toEqual([]);
  });

  it("a viewer flood of ALL requests gets EBUSY past the fan-out limit instead of queueing without bound", async () => {
    const c = await cluster(74, [1, 2]);
    const client = new DvsClient(c.network.connect("viewer"), {
      cluster: "dvs",
      clientId: "v",
      role: "viewer",
      timeoutMs: 60_000,
    });
    // Node 2 is silent: each ALL gather waits for it.
    c.network.crash("node-2");
    c.nodes.get(2)?.actor.stop();
    const replies = await Promise.all(
      Array.from({ length: 20 }, () =>
        client.request("GETNODEINFO", {}, { dst: "ALL", gatherTimeoutMs: 600_000 }),
      ),
    );
    const busy = replies.filter((r) => r.rcode === rcode("EBUSY"));
    expect(busy.length).toBeGreaterThan(0);
    expect(replies.length - busy.length).toBeLessThanOrEqual(8);
  });
});
