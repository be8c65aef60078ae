// Processes over the simulated network: three process runtimes, each behind its
// own request server, with a fixed DC table and view. Spawn, send from any node,
// location transparency, privileges, migration, proxies, persistence.
import { afterEach, describe, expect, it } from "vitest";
import { MachineRegistry } from "../../actors/machineRegistry.js";
import { MemorySnapshotStore } from "../../actors/processes/processStore.js";
import type { ProcUsr } from "../../actors/processes/procInfo.js";
import type { ProxyInfo, ProxyStats } from "../../actors/processes/proxy.js";
import { rcode } from "../../protocol/messages.js";
import { ANY_ENDPOINT, PROC_FLAGS } from "../../protocol/processes.js";
import { sleep } from "../../transport/clock.js";
import { ProcessCluster } from "../support/processCluster.js";
import {
  type AgentContext,
  agentMachine,
  type RecorderContext,
  testRegistry,
} from "../support/processMachines.js";

const DCS = { 1: [1, 2, 3], 2: [1, 2] } as const;

let stopClock: (() => void) | undefined;
afterEach(() => {
  stopClock?.();
  stopClock = undefined;
});

async function cluster(options: Partial<ConstructorParameters<typeof ProcessCluster>[0]> = {}) {
  const c = new ProcessCluster({ seed: 7, nodes: [1, 2, 3], dcs: DCS, ...options });
  await c.start();
  stopClock = c.clock.autoRun();
  return c;
}

const settle = (c: ProcessCluster, ms = 20) => sleep(c.clock, ms);

async function info(c: ProcessCluster, via: number, dcid: number, endpoint: number): Promise<ProcUsr> {
  const r = await c.request(via, "GETPROCINFO", { dcid, endpoint });
  expect(r.rcode).toBe(0);
  return r.data as ProcUsr;
}

describe("processes over the simulated network", () => {
  it("a process spawned on one node is reached from every node at the same address", async () => {
    const c = await cluster();
    const spawned = await c.request(1, "SPAWN", { dcid: 1, endpoint: 5, machine: "counter", name: "hits" });
    expect(spawned).toMatchObject({
      rcode: 5,
      data: { endpoint: 5, dcid: 1, nodeid: 1, name: "hits", epoch: 1 },
    });
    await settle(c);
    for (const via of [1, 2, 3]) {
      expect(
        (await c.request(via, "SEND", { dcid: 1, endpoint: 5, body: { type: "inc", by: via } })).rcode,
      ).toBe(0);
    }
    await settle(c);
    const seen = await info(c, 3, 1, 5);
    expect(seen).toMatchObject({
      nodeid: 1,
      machine: "counter",
      delivered: 3,
      state: "running",
      status: "active",
    });
    expect(seen.context).toMatchObject({ count: 6, updates: 3 });
    expect(c.at(2).runtime.locate(1, 5)).toMatchObject({ node: 1, epoch: 1, ended: false });
  });

  it("refuses a spawn in an unknown DC, on a node outside the DC, of an unknown machine, or at a taken endpoint", async () => {
    const c = await cluster();
    expect((await c.request(1, "SPAWN", { dcid: 9, machine: "counter" })).rcode).toBe(rcode("ENOENT"));
    expect((await c.request(3, "SPAWN", { dcid: 2, machine: "counter" })).rcode).toBe(rcode("EINVAL"));
    expect((await c.request(1, "SPAWN", { dcid: 1, machine: "nope" })).rcode).toBe(rcode("EINVAL"));
    expect((await c.request(1, "SPAWN", { dcid: 1, machine: "counter", endpoint: ANY_ENDPOINT })).rcode).toBe(
      rcode("EINVAL"),
    );
    expect((await c.request(1, "SPAWN", { dcid: 1, endpoint: 3, machine: "kvCell" })).rcode).toBe(3);
    await settle(c);
    expect((await c.request(2, "SPAWN", { dcid: 1, endpoint: 3, machine: "counter" })).rcode).toBe(
      rcode("EEXIST"),
    );
    // Without an endpoint, the lowest free one this node knows of.
    expect((await c.request(2, "SPAWN", { dcid: 1, machine: "counter" })).rcode).toBe(0);
    await settle(c);
    expect((await c.request(3, "SPAWN", { dcid: 1, machine: "counter" })).rcode).toBe(1);
  });

  it("answers SEND with ENOENT for an unknown process and EHOSTDOWN when its host left the view", async () => {
    const c = await cluster();
    expect((await c.request(1, "SEND", { dcid: 1, endpoint: 42, body: 1 })).rcode).toBe(rcode("ENOENT"));
    await c.request(3, "SPAWN", { dcid: 1, endpoint: 42, machine: "recorder" });
    await settle(c);
    c.setView(1, [1, 2]);
    expect((await c.request(1, "SEND", { dcid: 1, endpoint: 42, body: 1 })).rcode).toBe(rcode("EHOSTDOWN"));
    expect((await c.request(1, "GETPROCINFO", { dcid: 1, endpoint: 42 })).rcode).toBe(rcode("EHOSTDOWN"));
    expect((await c.request(2, "SEND", { dcid: 1, endpoint: 42, body: 1 })).rcode).toBe(0);
  });

  it("lets processes message each other across nodes and answer with dvs.send", async () => {
    const c = await cluster();
    await c.request(1, "SPAWN", { dcid: 1, endpoint: 5, machine: "counter", input: { count: 40 } });
    await c.request(2, "SPAWN", { dcid: 1, endpoint: 6, machine: "kvCell" });
    await c.request(3, "SPAWN", { dcid: 1, endpoint: 7, machine: "agent" });
    await settle(c);
    const tell = (body: unknown) => c.request(3, "SEND", { dcid: 1, endpoint: 7, body });
    await tell({ type: "agent.send", endpoint: 5, body: { type: "inc", by: 2 } });
    await tell({ type: "agent.send", endpoint: 5, body: { type: "get" } });
    await tell({ type: "agent.send", endpoint: 6, body: { type: "set", key: "a", value: [1, 2] } });
    await tell({ type: "agent.send", endpoint: 6, body: { type: "get", key: "a" } });
    await tell({ type: "agent.send", endpoint: 6, body: { type: "del", key: "a" } });
    await tell({ type: "agent.send", endpoint: 6, body: { type: "get", key: "a" } });
    await settle(c, 50);
    const agent = (await info(c, 1, 1, 7)).context as AgentContext;
    expect(agent.errors).toEqual([]);
    expect(agent.received).toEqual([
      { type: "counter.value", count: 42 },
      { type: "kv.value", key: "a", found: true, value: [1, 2] },
      { type: "kv.value", key: "a", found: false, value: null },
    ]);
    const counter = await info(c, 2, 1, 5);
    expect(counter.getfrom).toMatch(/^p:1:7\./);
    expect((await info(c, 1, 1, 7)).sendto).toEqual({ dcid: 1, endpoint: 6 });
  });

  it("refuses with EPERM what a process's privileges do not allow, and counts it", async () => {
    const c = await cluster();
    await c.request(1, "SPAWN", { dcid: 1, endpoint: 5, machine: "counter" });
    await c.request(2, "SPAWN", { dcid: 1, endpoint: 7, machine: "agent" });
    await settle(c);
    expect((await c.request(3, "GETPRIV", { dcid: 1, endpoint: 7 })).data).toEqual({
      rqsts: ["*"],
      endpoints: [ANY_ENDPOINT],
    });
    const set = await c.request(3, "SETPRIV", {
      dcid: 1,
      endpoint: 7,
      priv: { rqsts: ["RQST_GETPROCINFO"], endpoints: [8] },
    });
    expect(set).toMatchObject({ rcode: 0, data: { rqsts: ["GETPROCINFO"], endpoints: [8] } });
    expect((await c.request(1, "GETPRIV", { dcid: 1, endpoint: 7 })).data).toEqual({
      rqsts: ["GETPROCINFO"],
      endpoints: [8],
    });
    expect(
      (
        await c.request(1, "SETPRIV", {
          dcid: 1,
          endpoint: 7,
          priv: { rqsts: ["FROBNICATE"], endpoints: [] },
        })
      ).rcode,
    ).toBe(rcode("EINVAL"));
    const tell = (body: unknown) => c.request(2, "SEND", { dcid: 1, endpoint: 7, body });
    await tell({ type: "agent.send", endpoint: 5, body: { type: "inc" } });
    await tell({ type: "agent.rqst", id: "dc", request: "GETDCINFO", params: { dcid: 1 } });
    await tell({
      type: "agent.rqst",
      id: "info",
      request: "GETPROCINFO",
      dst: 3,
      params: { dcid: 1, endpoint: 5 },
    });
    await settle(c, 50);
    const agent = await info(c, 2, 1, 7);
    const ctx = agent.context as AgentContext;
    expect(ctx.errors.map((e) => [e.op, e.error, e.id])).toEqual([
      ["dvs.send", "EPERM", undefined],
      ["dvs.rqst", "EPERM", "dc"],
    ]);
    expect(ctx.replies).toHaveLength(1);
    expect(ctx.replies[0]).toMatchObject({
      id: "info",
      rply: { rcode: 0, src: 3, data: { nodeid: 1, endpoint: 5 } },
    });
    expect(agent.refused).toBe(2);
    expect(agent.flags & PROC_FLAGS.RESTRICTED).toBe(PROC_FLAGS.RESTRICTED);
    expect(((await info(c, 3, 1, 5)).context as { count: number }).count).toBe(0);
  });

  it("migrates a process: same endpoint, state kept, found from every node, messages still arrive", async () => {
    const c = await cluster();
    await c.request(1, "SPAWN", { dcid: 1, endpoint: 5, machine: "counter" });
    await settle(c);
    for (let i = 0; i < 3; i++) await c.request(2, "SEND", { dcid: 1, endpoint: 5, body: { type: "inc" } });
    const moved = await c.request(2, "MIGRATE", { dcid: 1, endpoint: 5, to: 3 });
    expect(moved).toMatchObject({ rcode: 0, data: { nodeid: 3, endpoint: 5, epoch: 2, delivered: 3 } });
    await settle(c);
    for (const via of [1, 2, 3])
      await c.request(via, "SEND", { dcid: 1, endpoint: 5, body: { type: "inc" } });
    await settle(c);
    for (const via of [1, 2, 3]) {
      const seen = await info(c, via, 1, 5);
      expect(seen).toMatchObject({ nodeid: 3, endpoint: 5, epoch: 2, delivered: 6, duplicates: 0, gaps: 0 });
      expect(seen.context).toMatchObject({ count: 6 });
    }
    expect(c.at(1).runtime.processes()).toEqual([]);
    expect(c.at(1).runtime.stats.migrationsOut).toBe(1);
    expect(c.at(3).runtime.stats.migrationsIn).toBe(1);
  });

  it("refuses a migration to a node outside the DC or the view, and of an unknown process", async () => {
    const c = await cluster();
    await c.request(1, "SPAWN", { dcid: 2, endpoint: 5, machine: "counter" });
    await settle(c);
    expect((await c.request(2, "MIGRATE", { dcid: 2, endpoint: 5, to: 3 })).rcode).toBe(rcode("EINVAL"));
    c.setView(1, [1, 3]);
    expect((await c.request(1, "MIGRATE", { dcid: 2, endpoint: 5, to: 2 })).rcode).toBe(rcode("EHOSTDOWN"));
    expect((await c.request(1, "MIGRATE", { dcid: 2, endpoint: 9, to: 2 })).rcode).toBe(rcode("ENOENT"));
    expect((await info(c, 1, 2, 5)).state).toBe("running");
  });

  it("delivers the messages sent during a move after it, in order per sender, none lost or repeated", async () => {
    const c = await cluster({ latencyMs: { min: 1, max: 6 } });
    await c.request(1, "SPAWN", { dcid: 1, endpoint: 10, machine: "recorder" });
    await settle(c);
    const sends: Promise<unknown>[] = [];
    const sent: Record<string, number[]> = { 2: [], 3: [] };
    let first: Promise<unknown> | undefined;
    for (let i = 1; i <= 30; i++) {
      for (const via of [2, 3]) {
        sent[via]!.push(i);
        sends.push(c.request(via, "SEND", { dcid: 1, endpoint: 10, body: i }));
      }
      if (i === 10) {
        first = c.request(3, "MIGRATE", { dcid: 1, endpoint: 10, to: 2 });
        sends.push(first);
      }
      if (i === 20) {
        // One move at a time (a second one meanwhile is EBUSY); the sends before it are still in flight.
        await first;
        sends.push(c.request(1, "MIGRATE", { dcid: 1, endpoint: 10, to: 3 }));
      }
      await sleep(c.clock, 1);
    }
    const replies = (await Promise.all(sends)) as { rcode: number }[];
    expect(replies.map((r) => r.rcode)).toEqual(replies.map(() => 0));
    await settle(c, 100);
    const rec = await info(c, 1, 1, 10);
    expect(rec).toMatchObject({ nodeid: 3, endpoint: 10, epoch: 3, delivered: 60, gaps: 0 });
    const log = (rec.context as RecorderContext).log;
    for (const via of [2, 3]) {
      const mine = log.filter((e) => e.from.kind === "client" && e.from.node === via);
      expect(mine.map((e) => e.body)).toEqual(sent[via]);
    }
  });

  it("resumes a process where it was when its move fails, with what arrived meanwhile", async () => {
    const registry = (node: number) =>
      node === 3 ? new MachineRegistry().register("agent", agentMachine) : testRegistry();
    const c = await cluster({ registry });
    await c.request(1, "SPAWN", { dcid: 1, endpoint: 10, machine: "recorder" });
    await settle(c);
    const during = [1, 2, 3].map((i) => c.request(2, "SEND", { dcid: 1, endpoint: 10, body: i }));
    const failed = await c.request(2, "MIGRATE", { dcid: 1, endpoint: 10, to: 3 });
    expect(failed.rcode).toBe(rcode("EINVAL"));
    await Promise.all(during);
    await c.request(2, "SEND", { dcid: 1, endpoint: 10, body: 4 });
    // A target whose runtime is gone: nobody listens for the offer.
    await c.at(2).runtime.stop();
    expect((await c.request(1, "MIGRATE", { dcid: 1, endpoint: 10, to: 2 })).rcode).toBe(rcode("EHOSTDOWN"));
    await settle(c);
    const rec = await info(c, 3, 1, 10);
    expect(rec).toMatchObject({ nodeid: 1, state: "running", epoch: 1 });
    expect((rec.context as RecorderContext).log.map((e) => e.body)).toEqual([1, 2, 3, 4]);
    expect(c.at(1).runtime.stats.migrationsFailed).toBe(2);
  });

  it("resends what a lossy link loses: every message is delivered once and in order", async () => {
    const c = await cluster({ timings: { resendMs: 50, maxResendMs: 200 } });
    await c.request(1, "SPAWN", { dcid: 1, endpoint: 10, machine: "recorder" });
    await settle(c);
    // Node 2's frames, acknowledgements and replies are lost at random for a while.
    c.network.setFaults({ dropRate: 0.4 }, "node-2");
    const lossy = Array.from({ length: 20 }, (_, i) =>
      c.client.request("SEND", { dcid: 1, endpoint: 10, body: i + 1 }, { dst: 2, timeoutMs: 5_000 }).then(
        (r) => r.rcode,
        () => "lost reply",
      ),
    );
    const answers = await Promise.all(lossy);
    c.network.setFaults({ dropRate: 0 }, "node-2");
    expect(answers.filter((a) => a !== 0 && a !== "lost reply")).toEqual([]);
    expect((await c.request(2, "SEND", { dcid: 1, endpoint: 10, body: 21 })).rcode).toBe(0);
    await settle(c, 400);
    const rec = await info(c, 3, 1, 10);
    expect((rec.context as RecorderContext).log.map((e) => e.body)).toEqual(
      Array.from({ length: 21 }, (_, i) => i + 1),
    );
    expect(rec).toMatchObject({ gaps: 0, pending: 0 });
    const sent = ((await c.request(2, "GETPROXYSTS", { nodeid: 1 })).data as ProxyStats[])[0]!.sent;
    expect(sent).toMatchObject({ msgs: 21, gaveUp: 0, unacked: 0, acked: 21 });
    expect(sent.resent).toBeGreaterThan(0);
  });

  it("answers ETIMEDOUT to a SEND whose frames are never acknowledged, once the proxy gives up", async () => {
    const c = await cluster({ timings: { resendMs: 50, maxResendMs: 100, giveUpMs: 600 } });
    await c.request(1, "SPAWN", { dcid: 1, endpoint: 10, machine: "recorder" });
    await settle(c);
    // Node 1 hears node 2's frames but nothing it says (the acknowledgements) gets out.
    c.network.setFaults({ dropRate: 1 }, "node-1");
    const reply = await c.request(2, "SEND", { dcid: 1, endpoint: 10, body: 1 });
    expect(reply.rcode).toBe(rcode("ETIMEDOUT"));
    c.network.setFaults({ dropRate: 0 }, "node-1");
    const sent = ((await c.request(2, "GETPROXYSTS", { nodeid: 1 })).data as ProxyStats[])[0]!.sent;
    expect(sent).toMatchObject({ gaveUp: 1, unacked: 0 });
    // It was delivered, once, however often it was resent: a SEND that failed may still have arrived.
    const rec = await info(c, 3, 1, 10);
    expect((rec.context as RecorderContext).log.map((e) => e.body)).toEqual([1]);
    expect(rec.duplicates).toBe(0);
  });

  it("keeps statistics per proxy pair and reports both ends of a pair", async () => {
    const c = await cluster();
    await c.request(1, "SPAWN", { dcid: 1, endpoint: 5, machine: "counter" });
    await settle(c);
    for (let i = 0; i < 4; i++) await c.request(2, "SEND", { dcid: 1, endpoint: 5, body: { type: "inc" } });
    await settle(c);
    const stats = (await c.request(2, "GETPROXYSTS", {})).data as ProxyStats[];
    expect(stats.map((s) => s.peer)).toEqual([1, 3]);
    expect(stats[0]).toMatchObject({ nodeid: 2, peer: 1, state: "up", sent: { msgs: 4, errors: 0, seq: 4 } });
    expect(stats[0]!.sent.bytes).toBeGreaterThan(0);
    const atOne = (await c.request(1, "GETPROXYSTS", { nodeid: 2 })).data as ProxyStats[];
    expect(atOne).toHaveLength(1);
    expect(atOne[0]).toMatchObject({ peer: 2, received: { msgs: 4, errors: 0, seq: 4 } });
    const pair = (await c.request(1, "GETPROXYINFO", { nodeid: 2 })).data as ProxyInfo[];
    expect(pair.map((p) => [p.role, p.subject, p.seq])).toEqual([
      ["sender", "dvs.dvs._px.2", 0],
      ["receiver", "dvs.dvs._px.1", 4],
    ]);
    expect((await c.request(1, "GETPROXYINFO", { nodeid: 1 })).rcode).toBe(rcode("EINVAL"));
    expect((await c.request(1, "GETPROXYSTS", { nodeid: 9 })).rcode).toBe(rcode("ENOENT"));
    expect(c.at(2).runtime.traffic()).toMatchObject({
      proxies: [1, 3],
      msgsSent: 4,
      msgsReceived: 0,
      lastReceived: null,
    });
    c.setView(2, [1, 2]);
    expect(((await c.request(2, "GETPROXYSTS", { nodeid: 3 })).data as ProxyStats[])[0]).toMatchObject({
      state: "down",
      downs: 1,
    });
  });

  it("runs a pair's actor only once the pair carries a frame, and the actor starts from what the view did before", async () => {
    const c = await cluster();
    expect(c.at(2).runtime.proxyActors).toBe(0);
    c.setView(2, [1, 2]);
    c.setView(2, [1, 2, 3]);
    const idle = ((await c.request(2, "GETPROXYSTS", { nodeid: 3 })).data as ProxyStats[])[0]!;
    expect(idle).toMatchObject({ state: "up", downs: 1, sent: { msgs: 0 } });
    expect(c.at(2).runtime.proxyActors).toBe(0);
    await c.request(3, "SPAWN", { dcid: 1, endpoint: 5, machine: "counter" });
    await settle(c);
    expect((await c.request(2, "SEND", { dcid: 1, endpoint: 5, body: { type: "inc" } })).rcode).toBe(0);
    await settle(c);
    expect(c.at(2).runtime.proxyActors).toBe(1);
    const used = ((await c.request(2, "GETPROXYSTS", { nodeid: 3 })).data as ProxyStats[])[0]!;
    expect(used).toMatchObject({ state: "up", downs: 1, since: idle.since, sent: { msgs: 1, seq: 1 } });
    c.setView(2, [1, 2]);
    expect(((await c.request(2, "GETPROXYSTS", { nodeid: 3 })).data as ProxyStats[])[0]).toMatchObject({
      state: "down",
      downs: 2,
    });
  });

  it("ends a process from any node; its endpoint is then free and unknown", async () => {
    const c = await cluster();
    await c.request(1, "SPAWN", { dcid: 1, endpoint: 5, machine: "counter" });
    await settle(c);
    expect((await c.request(3, "PROCEND", { dcid: 1, endpoint: 5 })).rcode).toBe(0);
    await settle(c);
    expect((await c.request(2, "GETPROCINFO", { dcid: 1, endpoint: 5 })).rcode).toBe(rcode("ENOENT"));
    expect((await c.request(2, "SEND", { dcid: 1, endpoint: 5, body: 1 })).rcode).toBe(rcode("ENOENT"));
    expect(await c.request(2, "SPAWN", { dcid: 1, endpoint: 5, machine: "kvCell" })).toMatchObject({
      rcode: 5,
      data: { epoch: 3, nodeid: 2 },
    });
  });

  it("ends a process that reaches a final state, and tells a restarted one it was restored", async () => {
    const c = await cluster();
    await c.request(1, "SPAWN", { dcid: 1, endpoint: 7, machine: "agent" });
    await c.request(1, "SPAWN", { dcid: 1, endpoint: 8, machine: "agent" });
    await settle(c);
    expect((await c.request(2, "MIGRATE", { dcid: 1, endpoint: 8, to: 3 })).rcode).toBe(0);
    expect(((await info(c, 2, 1, 8)).context as AgentContext).restored).toEqual(["migrated"]);
    expect((await c.request(2, "SEND", { dcid: 1, endpoint: 7, body: { type: "agent.exit" } })).rcode).toBe(
      0,
    );
    await settle(c);
    expect((await c.request(3, "GETPROCINFO", { dcid: 1, endpoint: 7 })).rcode).toBe(rcode("ENOENT"));
    expect(c.at(1).runtime.locate(1, 7)).toMatchObject({ ended: true, epoch: 2 });
  });

  it("persists snapshots and runs the processes on after a restart", async () => {
    const stores = new Map([1, 2, 3].map((n) => [n, new MemorySnapshotStore()]));
    const c = await cluster({ snapshots: (n) => stores.get(n), timings: { persistDebounceMs: 50 } });
    await c.request(1, "SPAWN", { dcid: 1, endpoint: 5, machine: "counter" });
    await settle(c);
    for (let i = 0; i < 3; i++) await c.request(2, "SEND", { dcid: 1, endpoint: 5, body: { type: "inc" } });
    await settle(c, 100);
    expect(stores.get(1)!.size).toBe(1);
    await c.restart(1);
    await settle(c);
    const back = await info(c, 2, 1, 5);
    expect(back).toMatchObject({ nodeid: 1, delivered: 3, flags: PROC_FLAGS.RESTORED });
    expect(back.context).toMatchObject({ count: 3 });
    // The restarted node numbers its requesters afresh: nothing is taken for a duplicate.
    expect((await c.request(1, "SEND", { dcid: 1, endpoint: 5, body: { type: "inc" } })).rcode).toBe(0);
    await settle(c);
    expect((await info(c, 3, 1, 5)).context).toMatchObject({ count: 4 });
    // Moving it away removes its record here.
    expect((await c.request(1, "MIGRATE", { dcid: 1, endpoint: 5, to: 2 })).rcode).toBe(0);
    await settle(c, 100);
    expect(stores.get(1)!.size).toBe(0);
    expect(stores.get(2)!.size).toBe(1);
  });
});
