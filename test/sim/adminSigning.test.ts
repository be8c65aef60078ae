// The admin's signature as it travels: a SimCluster client signs its mutating
// requests, nodes pass them on (multicast, forward) re-encoded, and what each
// member receives still verifies for it, and for no other node when addressed to one.
import { afterEach, describe, expect, it } from "vitest";
import { DvsClient } from "../../client/dvsClient.js";
import { ReplayGuard, TrustedAdminKeys, verifyRqstAuth } from "../../protocol/adminSignature.js";
import { parseRqst } from "../../protocol/codec.js";
import { ALL, type Rqst } from "../../protocol/messages.js";
import { subjects } from "../../protocol/subjects.js";
import { SIM_ADMIN, SimCluster } from "../../sim/cluster.js";

let stopClock: (() => void) | undefined;
afterEach(() => {
  stopClock?.();
  stopClock = undefined;
});

async function cluster(seed: number, ids: readonly number[]) {
  const c = await SimCluster.converged(seed, ids);
  // Everything the nodes pass on to each other, as it is on the wire.
  const s = subjects("dvs");
  const spy = c.network.connect("spy");
  const relayed: { subject: string; rqst: Rqst }[] = [];
  for (const subject of [s.multicast, s.forward(1), s.forward(2), s.forward(3), s.anyRqst, s.nodeRqst(2)]) {
    spy.subscribe(subject, (msg) => {
      const parsed = parseRqst(msg);
      if (parsed.ok) relayed.push({ subject, rqst: parsed.rqst });
    });
  }
  stopClock = c.clock.autoRun();
  return { c, relayed, s };
}

function verifyAt(rqst: Rqst, node: number, now: number) {
  return verifyRqstAuth(rqst, {
    cluster: "dvs",
    node,
    trustedKeys: new TrustedAdminKeys([SIM_ADMIN.key]),
    now,
    replay: new ReplayGuard(),
  });
}

describe("signed requests on the simulated network", () => {
  it("a mutating ALL request reaches every member signed, and the signature holds at each", async () => {
    const { c, relayed, s } = await cluster(71, [1, 2, 3]);
    const client = c.client("tool", { timeoutMs: 10_000 });
    const rply = await client.request("DVSINIT", { name: "lab" }, { gatherTimeoutMs: 5_000 });
    expect(rply.rcode).toBe(0);
    const multicast = relayed.filter((r) => r.subject === s.multicast).map((r) => r.rqst);
    expect(multicast).toHaveLength(1);
    const [rqst] = multicast as [Rqst];
    // The relaying node re-encoded it with its own seq; the signature is the admin's, for ALL.
    expect(rqst.auth).toMatchObject({ key: SIM_ADMIN.key, dst: ALL, at: expect.any(Number) });
    // The client named the action itself: a node adding one on the way would break the signature.
    expect(rqst.action).toMatch(/^[0-9A-Z]{26}$/);
    for (const node of [1, 2, 3]) expect(verifyAt(rqst, node, c.clock.now()).ok).toBe(true);
  });

  it("a request forwarded to one node verifies there and nowhere else", async () => {
    const { c, relayed, s } = await cluster(72, [1, 2, 3]);
    const client = c.client("tool", { timeoutMs: 10_000 });
    await client.request("DVSINIT", {}, { gatherTimeoutMs: 5_000 });
    await client.request("DCINIT", { dcid: 4, nodes: [1, 2, 3] }, { dst: 2, viaAnyNode: true });
    const forwarded = relayed.find((r) => r.subject === s.forward(2) && r.rqst.type === "DCINIT");
    const direct = relayed.find((r) => r.subject === s.anyRqst && r.rqst.type === "DCINIT");
    // Whichever node took it from the queue subject either served it (it is node 2) or forwarded it.
    const rqst = (forwarded ?? direct)?.rqst;
    expect(rqst?.auth?.dst).toBe(2);
    if (!rqst) return;
    expect(verifyAt(rqst, 2, c.clock.now()).ok).toBe(true);
    expect(verifyAt(rqst, 3, c.clock.now())).toMatchObject({ ok: false, reason: "wrong-node" });
  });

  it("reads are not signed, and neither is anything a client without a signer sends", async () => {
    const { c, relayed, s } = await cluster(73, [1, 2]);
    const signing = c.client("tool", { timeoutMs: 10_000 });
    await signing.request("GETDVSINFO", {}, { gatherTimeoutMs: 5_000 });
    const plain = new DvsClient(c.network.connect("plain"), { cluster: "dvs", clientId: "plain" });
    await plain.request("DVSINIT", {}, { gatherTimeoutMs: 5_000 });
    const sent = relayed.filter((r) => r.subject === s.anyRqst).map((r) => [r.rqst.type, r.rqst.auth]);
    expect(sent).toEqual([
      ["GETDVSINFO", undefined],
      ["DVSINIT", undefined],
    ]);
  });

  it("the nodes of a SimCluster trust the simulated admin's key", () => {
    const c = new SimCluster({ seed: 74 });
    const node = c.start(1);
    expect(node.options.adminKeys).toEqual([SIM_ADMIN.key]);
    expect(c.signing.signer.key).toBe(SIM_ADMIN.key);
    c.crash(1);
  });
});
