// The CasStore contract against the simulated store of the sim network (three
// servers, free-running on the simulated clock), and what only the sim can
// stage: a server cut off from JetStream's majority by its routes.
import { describe, expect, it } from "vitest";
import { sleep } from "../../transport/clock.js";
import { CasConflictError, StoreUnavailableError } from "../../transport/errors.js";
import { SimKv, SimNetwork } from "../../transport/sim/index.js";
import { casStoreContract } from "../contracts/casStore/contract.js";

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);
const TIMEOUT_MS = 1_000;

let seed = 1;

casStoreContract("sim", async () => {
  const network = new SimNetwork({ seed: seed++, servers: 3 });
  const stopClock = network.clock.autoRun();
  const kv = new SimKv(network, "CONTRACT", { timeoutMs: TIMEOUT_MS });
  let hosts = 0;
  return {
    timeoutMs: TIMEOUT_MS,
    async open(host) {
      // Hosts spread over the servers, so two hosts reach the store through different ones.
      network.connect(host, { server: hosts++ % network.servers });
      return kv.client(host);
    },
    sleep: (ms) => sleep(network.clock, ms),
    async cut(host) {
      network.cutLink(host);
    },
    async restore(host) {
      network.restoreLink(host);
    },
    async close() {
      stopClock();
    },
  };
});

/** A network of `servers` with a free-running clock, and its store; `using` stops the clock. */
function simStore(servers: number, casRaftMs = 0) {
  const network = new SimNetwork({ seed: 7, servers });
  const stopClock = network.clock.autoRun();
  const kv = new SimKv(network, "SIM", { timeoutMs: TIMEOUT_MS, casRaftMs });
  const host = (name: string, server = 0) => {
    network.connect(name, { server });
    return kv.client(name);
  };
  return { network, kv, host, [Symbol.dispose]: stopClock };
}

describe("the simulated store", () => {
  it("is unreachable from a server cut off from the other two by its routes, while the majority side writes", async () => {
    using sim = simStore(3);
    const left = sim.host("left", 0);
    const right = sim.host("right", 1);
    const lone = sim.host("lone", 2);
    const revision = await lone.create("k", bytes("v0"));
    sim.network.cutRoute(0, 2);
    sim.network.cutRoute(1, 2);

    await expect(lone.get("k")).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(lone.update("k", bytes("lone"), revision)).rejects.toBeInstanceOf(StoreUnavailableError);
    const next = await left.update("k", bytes("left"), revision);
    expect(text((await right.get("k"))!.value)).toBe("left");
    expect(sim.kv.writes.map((w) => w.host)).toEqual(["lone", "left"]);

    sim.network.restoreRoute(1, 2);
    const back = await lone.get("k");
    expect(back?.revision).toBe(next);
    await expect(lone.update("k", bytes("lone"), revision)).rejects.toBeInstanceOf(CasConflictError);
  });

  it("with one server, refuses a write from a host whose link is cut and keeps the bucket unchanged", async () => {
    using sim = simStore(1);
    const a = sim.host("a");
    const b = sim.host("b");
    sim.network.cutLink("a");
    await expect(a.create("k", bytes("from-a"))).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(sim.kv.peek("k")).toBeUndefined();
    const revision = await b.create("k", bytes("from-b"));
    expect(sim.kv.peek("k")?.revision).toBe(revision);
    expect(sim.kv.writes.map((w) => w.host)).toEqual(["b"]);
  });

  it("can apply a write whose answer is lost: the caller sees StoreUnavailableError, the store holds the value", async () => {
    using sim = simStore(1);
    const a = sim.host("a");
    // a's store traffic takes 51..53 ms a hop: the create lands before the cut, its answer would after.
    sim.network.setFaults({ extraDelayMs: 50 }, "a");
    const create = a.create("k", bytes("v0"));
    await sleep(sim.network.clock, 60);
    expect(text(sim.kv.peek("k")!.value)).toBe("v0");
    sim.network.cutLink("a");
    await expect(create).rejects.toBeInstanceOf(StoreUnavailableError);
  });

  it("as nats-server 2.9 with casRaftMs: two updates expecting one revision that arrive within a Raft round both succeed", async () => {
    using sim = simStore(3, 5);
    const a = sim.host("a", 0);
    const b = sim.host("b", 1);
    const revision = await a.create("k", bytes("v0"));
    const both = await Promise.all([
      a.update("k", bytes("a"), revision),
      b.update("k", bytes("b"), revision),
    ]);
    expect(new Set(both).size).toBe(2);
    expect(
      sim.kv.writes
        .map((w) => text(w.entry.value))
        .slice(1)
        .sort(),
    ).toEqual(["a", "b"]);
    // Once the first has landed, the check sees it: a third update expecting the old revision is refused.
    await expect(a.update("k", bytes("c"), revision)).rejects.toBeInstanceOf(CasConflictError);
  });

  it("without casRaftMs, two updates expecting one revision: exactly one succeeds", async () => {
    using sim = simStore(3);
    const a = sim.host("a", 0);
    const b = sim.host("b", 1);
    const revision = await a.create("k", bytes("v0"));
    const both = await Promise.allSettled([
      a.update("k", bytes("a"), revision),
      b.update("k", bytes("b"), revision),
    ]);
    expect(both.filter((r) => r.status === "fulfilled")).toHaveLength(1);
  });
});
