// A node's own view, readable by anyone at any time (issue 22): GETNODEINFO
// passes the ENOTINIT gate, so a fresh node answers its id, incarnation,
// state, view and the coordinator it knows of, in JSON or CBOR, to a viewer
// too. And the requests that act on one process, sent to ALL: one refusal,
// EPERM for a viewer, EINVAL (naming where to send it) for an admin.
import { afterEach, describe, expect, it } from "vitest";
import { DvsClient } from "../../client/dvsClient.js";
import { decode, encode, JSON_HEADERS } from "../../protocol/codec.js";
import { rcode, rplySchema, UNICAST_ONLY_TYPES } from "../../protocol/messages.js";
import { subjects } from "../../protocol/subjects.js";
import { SimCluster } from "../../sim/cluster.js";

let stopClock: (() => void) | undefined;
afterEach(() => {
  stopClock?.();
  stopClock = undefined;
});

const s = subjects("dvs");

interface NodeInfo {
  nodeid: number;
  flags: number;
  incarnation: number;
  state: string;
  view: number[];
  coordinator: { nodeid: number; epoch: number } | null;
}

describe("a node's view before DVSINIT", () => {
  it("GETNODEINFO answers node id, incarnation, state, view and coordinator before DVSINIT, to a viewer, in JSON and CBOR", async () => {
    const c = new SimCluster({ seed: 61, election: {} });
    for (const id of [1, 2, 3]) c.start(id);
    await c.advance(2_000);
    stopClock = c.clock.autoRun();
    const viewer = new DvsClient(c.network.connect("viewer"), {
      cluster: "dvs",
      clientId: "v",
      role: "viewer",
    });
    // Not initialised: the DVS requests are still ENOTINIT.
    expect((await viewer.request("GETDVSINFO", {}, { dst: 2 })).rcode).toBe(rcode("ENOTINIT"));
    const info = await viewer.request("GETNODEINFO", {}, { dst: 2 });
    expect(info.rcode).toBe(0);
    const data = info.data as NodeInfo;
    const who = c.nodes.get(2)?.election?.state().who;
    expect(who?.type).toBe("OK");
    expect(data).toMatchObject({
      nodeid: 2,
      incarnation: c.nodes.get(2)?.status().incarnation,
      view: [1, 2, 3],
      coordinator: who?.type === "OK" ? { nodeid: who.coordinator, epoch: who.epoch } : null,
    });
    expect(data.state).toMatch(/member/);
    // flags: in its view, not initialised.
    expect(data.flags & 1).toBe(0);
    expect(data.flags & 2).toBe(2);
    // Another node's view, forwarded; and ALL, one entry per member.
    const forwarded = await viewer.request("GETNODEINFO", { nodeid: 3 }, { dst: 1 });
    expect(forwarded).toMatchObject({ rcode: 0, src: 1, data: { nodeid: 3 } });
    const all = await viewer.request("GETNODEINFO", {});
    expect((all.data as { rcode: number; src: number }[]).map((e) => [e.src, e.rcode])).toEqual([
      [1, 0],
      [2, 0],
      [3, 0],
    ]);
    // A plain JSON client on the read-only subject.
    const raw = c.network.connect("json-tool");
    const body = { v: 1, type: "GETNODEINFO", src: "json-tool", dst: 3, seq: 1 };
    const answer = await raw.request(s.roNodeRqst(3), encode(body, "json"), {
      timeoutMs: 2_000,
      headers: JSON_HEADERS,
    });
    const decoded = decode(answer.data, "json");
    const rply = rplySchema.parse(decoded.ok ? decoded.value : undefined);
    expect(rply).toMatchObject({ rcode: 0, src: 3, data: { nodeid: 3, view: [1, 2, 3] } });
  });

  it("without an election the coordinator is null", async () => {
    const c = await SimCluster.converged(62, [1, 2]);
    stopClock = c.clock.autoRun();
    const info = await c.client("tool").request("GETNODEINFO", {}, { dst: 1 });
    expect(info).toMatchObject({ rcode: 0, data: { nodeid: 1, coordinator: null, view: [1, 2] } });
  });
});

describe("requests that act on one process, sent to ALL", () => {
  it("a viewer's is EPERM, an admin's one EINVAL for the whole request, never an entry per member", async () => {
    const c = await SimCluster.converged(63, [1, 2, 3]);
    stopClock = c.clock.autoRun();
    const admin = c.client("admin", { timeoutMs: 10_000 });
    const viewer = new DvsClient(c.network.connect("viewer"), {
      cluster: "dvs",
      clientId: "v",
      role: "viewer",
    });
    await admin.request("DVSINIT", {});
    await admin.request("DCINIT", { dcid: 1, nodes: [1, 2, 3] });
    const params = {
      KILL: { pid: 4_000_000 },
      SPAWN: { dcid: 1, machine: "counter" },
      SEND: { dcid: 1, endpoint: 5, body: 1 },
      MIGRATE: { dcid: 1, endpoint: 5, to: 2 },
      PROCEND: { dcid: 1, endpoint: 5 },
      SETPRIV: { dcid: 1, endpoint: 5, priv: { rqsts: [], endpoints: [] } },
    } as const;
    expect(new Set(Object.keys(params))).toEqual(new Set(UNICAST_ONLY_TYPES));
    for (const [type, p] of Object.entries(params)) {
      for (const [client, error] of [
        [viewer, "EPERM"],
        [admin, "EINVAL"],
      ] as const) {
        const rply = await client.request(type as keyof typeof params, p, { dst: "ALL" });
        expect(rply.rcode, `${type} from ${error === "EPERM" ? "a viewer" : "an admin"}`).toBe(rcode(error));
        expect(rply.count).toBe(1);
        expect(rply.data).toMatchObject({ error });
      }
    }
    // Nothing ran: no process was spawned anywhere.
    for (const node of c.nodes.values()) expect(node.processes?.processes() ?? []).toEqual([]);
  });
});
