// The simulated servers' DISCONNECT advisory: the subject and body nats-server
// publishes when a client connection ends, when each way of ending is noticed,
// and where it travels (its own server, routes that are up).
import { describe, expect, it } from "vitest";
import { CLUSTER_ACCOUNT } from "../../daemon/natsAccounts.js";
import {
  DISCONNECT_ADVISORIES,
  DISCONNECT_ADVISORY_TYPE,
  nodeOfClientName,
  parseDisconnectAdvisory,
} from "../../protocol/advisories.js";
import { NODE_ACCOUNT, SimCluster } from "../../sim/cluster.js";
import { SimNetwork } from "../../transport/sim/index.js";
import type { Transport } from "../../transport/transport.js";

interface Advisory {
  type: string;
  id: string;
  timestamp: string;
  server: { name: string; id: string };
  client: { id: number; acc: string; name: string };
  sent: { msgs: number; bytes: number };
  received: { msgs: number; bytes: number };
  reason: string;
}

/** Advisories heard by `t`, with the simulated time each arrived at. */
function listen(t: Transport, net: SimNetwork) {
  const heard: { at: number; subject: string; body: Advisory }[] = [];
  t.subscribe(DISCONNECT_ADVISORIES, (m) => {
    // The runtime's own reader (actors/node/disconnects.ts) must accept it.
    expect(parseDisconnectAdvisory(m.data)).toBeDefined();
    heard.push({
      at: net.clock.now(),
      subject: m.subject,
      body: JSON.parse(new TextDecoder().decode(m.data)),
    });
  });
  return heard;
}

const bytes = (s: string) => new TextEncoder().encode(s);

describe("the DISCONNECT advisory of the simulated servers", () => {
  it("announces a client that closes, in nats-server's format, with the connection's name", async () => {
    const net = new SimNetwork({ seed: 1, latencyMs: { min: 2, max: 2 } });
    const watcher = net.connect("watcher");
    const heard = listen(watcher, net);
    const node = net.connect("node-1", { clientName: "dvsd-dvs-1" });
    node.subscribe("dvs.x", () => {});
    expect(node.name).toBe("dvsd-dvs-1");
    await net.clock.advance(8);
    node.publish("dvs.x", bytes("hello"));
    await net.clock.advance(2);
    await node.close();
    await net.clock.advance(5);
    expect(heard).toEqual([
      {
        at: 12,
        subject: "$SYS.ACCOUNT.$G.DISCONNECT",
        body: expect.objectContaining({
          type: DISCONNECT_ADVISORY_TYPE,
          id: expect.any(String),
          timestamp: "1970-01-01T00:00:00.010Z",
          server: expect.objectContaining({ name: "sim-server-0", id: expect.any(String) }),
          // The watcher's session is client 1 of server 0, the node's client 2.
          client: expect.objectContaining({ id: 2, acc: "$G", name: "dvsd-dvs-1" }),
          sent: { msgs: 1, bytes: 5 },
          received: { msgs: 1, bytes: 5 },
          reason: "Client Closed",
        }),
      },
    ]);
  });

  it("announces a crashed host at once, since its kernel closes the socket", async () => {
    const net = new SimNetwork({ seed: 1, latencyMs: { min: 3, max: 3 }, account: "DVS" });
    const heard = listen(net.connect("watcher"), net);
    net.connect("node-2");
    await net.clock.advance(100);
    net.crash("node-2");
    await net.clock.advance(10);
    expect(heard.map((h) => [h.at, h.subject, h.body.reason, h.body.client.name, h.body.client.acc])).toEqual(
      [[103, "$SYS.ACCOUNT.DVS.DISCONNECT", "Client Closed", "node-2", "DVS"]],
    );
  });

  it("reaches subscribers on other servers across routes that are up, and not across a cut one", async () => {
    const net = new SimNetwork({ seed: 1, servers: 3 });
    const atOne = listen(net.connect("w1", { server: 1 }), net);
    const atTwo = listen(net.connect("w2", { server: 2 }), net);
    net.cutRoute(0, 2);
    await net.connect("leaver", { server: 0 }).close();
    await net.clock.advance(10);
    expect(atOne.map((h) => h.body.client.name)).toEqual(["leaver"]);
    expect(atTwo).toEqual([]);
  });

  it("says a cut link's session went stale once the server's pings go unanswered, even after the client is back", async () => {
    const net = new SimNetwork({
      seed: 1,
      latencyMs: { min: 1, max: 1 },
      reconnectWaitMs: 100,
      staleAfterMs: 1_000,
    });
    const heard = listen(net.connect("watcher"), net);
    const node = net.connect("node");
    net.cutLink("node");
    await net.clock.advance(50);
    net.restoreLink("node");
    await net.clock.advance(500);
    expect(node.status).toBe("connected");
    expect(heard).toEqual([]);
    await net.clock.advance(500);
    await node.close();
    await net.clock.advance(10);
    // The stale session was client 2; the one it reconnected with is client 3.
    expect(heard.map((h) => [h.at, h.body.client.id, h.body.reason])).toEqual([
      [1_001, 2, "Stale Connection"],
      [1_051, 3, "Client Closed"],
    ]);
    expect(new Set(heard.map((h) => h.body.id)).size).toBe(2);
  });

  it("says nothing more when a host whose link is cut crashes or closes: its server already lost it", async () => {
    const net = new SimNetwork({ seed: 1, staleAfterMs: 200 });
    const heard = listen(net.connect("watcher"), net);
    net.connect("a");
    await net.connect("b").close();
    net.cutLink("a");
    net.crash("a");
    await net.clock.advance(1_000);
    expect(heard.map((h) => [h.body.client.name, h.body.reason])).toEqual([
      ["b", "Client Closed"],
      ["a", "Stale Connection"],
    ]);
  });

  it("costs nothing where nobody listens: no message, no random draw, no trace", async () => {
    const run = async (close: boolean) => {
      const net = new SimNetwork({ seed: 5 });
      net.connect("w").subscribe("$SYS.ACCOUNT.OTHER.DISCONNECT", () => {});
      const gone = net.connect("gone");
      if (close) await gone.close();
      await net.clock.advance(10);
      return { publishes: net.trace.filter((e) => e.kind === "publish"), next: net.random.next() };
    };
    expect(await run(true)).toEqual(await run(false));
  });

  it("names a simulated cluster's nodes and their account as the daemon's deployment does", async () => {
    const c = new SimCluster({ seed: 2 });
    const heard = listen(c.network.connect("watcher"), c.network);
    c.start(1);
    c.start(2);
    await c.advance(500);
    c.crash(2);
    await c.advance(10);
    expect(
      heard.map((h) => [h.subject, h.body.client.acc, nodeOfClientName("dvs", h.body.client.name)]),
    ).toEqual([[`$SYS.ACCOUNT.${CLUSTER_ACCOUNT}.DISCONNECT`, CLUSTER_ACCOUNT, 2]]);
    expect(NODE_ACCOUNT).toBe(CLUSTER_ACCOUNT);
  });

  it("lets the survivors of a crashed node drop it from their views within a few round trips, long before its heartbeats are late", async () => {
    const c = await SimCluster.converged(1, [1, 2, 3, 4]);
    c.crash(3);
    const gone = () => [1, 2, 4].every((id) => c.views().get(id)?.members.includes(3) === false);
    expect(await c.clock.runUntil(gone, 50)).toBe(true);
  });
});
