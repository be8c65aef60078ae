// Maps keyed by what a client chooses stay bounded: a node keeps the message
// numbering of at most MAX_CLIENT_SENDERS requesters, and at most
// MAX_PEERS_OUTSIDE_VIEW proxy pairs for node ids outside its view.
import { describe, expect, it } from "vitest";
import { silentLogger } from "../../actors/logger.js";
import { MAX_CLIENT_SENDERS } from "../../actors/processes/clientSenders.js";
import type { ProcUsr } from "../../actors/processes/procInfo.js";
import { MAX_PEERS_OUTSIDE_VIEW, Proxies } from "../../actors/processes/proxy.js";
import { encode, makeRqst } from "../../protocol/codec.js";
import type { Rqst } from "../../protocol/messages.js";
import { subjects } from "../../protocol/subjects.js";
import { SimNetwork } from "../../transport/sim/index.js";
import { ProcessCluster } from "../support/processCluster.js";

describe("maps keyed by client input", () => {
  it("a node keeps the numbering of at most MAX_CLIENT_SENDERS requesters, and a forgotten one's messages still arrive", async () => {
    const c = new ProcessCluster({ seed: 3, nodes: [1], dcs: { 1: [1] } });
    await c.start();
    const { runtime } = c.at(1);
    const handlers = runtime.handlers();
    const rqst = (type: string, src: string, params: unknown) =>
      makeRqst({ type, src, dst: 1, seq: 1, params } as Omit<Rqst, "v">);
    const send = async (src: string, by: number) =>
      (await handlers.SEND?.(rqst("SEND", src, { dcid: 1, endpoint: 5, body: { type: "inc", by } }))) ?? {};

    expect(
      await handlers.SPAWN?.(rqst("SPAWN", "tool", { dcid: 1, endpoint: 5, machine: "counter" })),
    ).toMatchObject({
      rcode: 5,
    });
    expect(await send("first", 1)).toMatchObject({ rcode: 0, data: { seq: 1 } });
    for (let i = 0; i < MAX_CLIENT_SENDERS + 50; i++)
      expect(await send(`made-up-${i}`, 0)).toMatchObject({ rcode: 0 });
    expect(runtime.clientSenders).toBe(MAX_CLIENT_SENDERS);

    // "first" was forgotten: it numbers from 1 again, under a new sender key, and is not taken for a duplicate.
    expect(await send("first", 1_000)).toMatchObject({ rcode: 0, data: { seq: 1 } });
    const info = (await handlers.GETPROCINFO?.(rqst("GETPROCINFO", "tool", { dcid: 1, endpoint: 5 }))) ?? {};
    const proc = (info as { data: ProcUsr }).data;
    expect(proc.duplicates).toBe(0);
    expect(proc.context).toMatchObject({ count: 1_001 });
    expect(proc.getfrom).toMatch(/^c:1\.\d+\.\d+:first$/);
    await runtime.stop();
  });

  it("frames naming made-up sender nodes start at most MAX_PEERS_OUTSIDE_VIEW pairs, and members keep theirs", async () => {
    const network = new SimNetwork({ seed: 5 });
    const sub = subjects("dvs");
    const proxies = new Proxies({
      node: 1,
      subjects: sub,
      transport: network.connect("node-1"),
      clock: network.clock,
      logger: silentLogger,
      epoch: 1,
      deliver: async () => undefined,
    });
    proxies.start([1, 2, 3]);
    const attacker = network.connect("attacker");
    // Unreadable frames that name a sender are counted against that sender's pair.
    for (let from = 1_000; from < 1_000 + MAX_PEERS_OUTSIDE_VIEW * 3; from++) {
      attacker.publish(sub.proxy(1), encode({ v: 1, from, to: 1, garbage: true }));
    }
    await network.clock.advance(1_000);
    expect(proxies.pairs).toBe(2 + MAX_PEERS_OUTSIDE_VIEW);
    expect(proxies.allStats().filter((s) => s.peer >= 1_000)).toHaveLength(MAX_PEERS_OUTSIDE_VIEW);
    expect(proxies.stats(2)).toMatchObject({ state: "up" });
    expect(proxies.stats(3)).toMatchObject({ state: "up" });
    // The oldest made-up ones went first.
    expect(proxies.stats(1_000)).toBeUndefined();
    expect(proxies.stats(1_000 + MAX_PEERS_OUTSIDE_VIEW * 3 - 1)).toMatchObject({
      received: { rejected: 1 },
    });
    proxies.stop();
  });
});
