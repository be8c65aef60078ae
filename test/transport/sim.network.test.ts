// Behaviour of the simulated deployment beyond the Transport contract: the clock,
// routes between servers, crashes, drops and delays, queue-group locality, and
// the determinism that lets two runs be compared trace for trace.
import { describe, expect, it } from "vitest";
import { sleep } from "../../transport/clock.js";
import { NoRespondersError, TimeoutError, TransportClosedError } from "../../transport/errors.js";
import {
  DuplicateConnectionError,
  SimClock,
  SimConfigError,
  SimNetwork,
  type TraceEntry,
  UnknownHostError,
  UnknownServerError,
} from "../../transport/sim/index.js";
import type { Message, Transport, TransportStatus } from "../../transport/transport.js";

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

function collect(t: Transport, subject: string, queue?: string): string[] {
  const got: string[] = [];
  t.subscribe(subject, (m) => got.push(text(m.data)), queue === undefined ? {} : { queue });
  return got;
}

describe("SimClock", () => {
  it("fires timers by due time, and in scheduling order when they are due together", async () => {
    const clock = new SimClock();
    const fired: string[] = [];
    clock.setTimeout(() => fired.push("b@10"), 10);
    clock.setTimeout(() => fired.push("a@5"), 5);
    clock.setTimeout(() => fired.push("c@10"), 10);
    const cleared = clock.setTimeout(() => fired.push("never"), 7);
    clock.clearTimeout(cleared);
    expect(clock.pendingTimers).toBe(3);
    await clock.advance(9);
    expect(fired).toEqual(["a@5"]);
    expect(clock.now()).toBe(9);
    await clock.advance(1);
    expect(fired).toEqual(["a@5", "b@10", "c@10"]);
    expect(clock.pendingTimers).toBe(0);
  });

  it("runs a timer set for now by a timer of this instant after the others due now, and skips cleared ones", async () => {
    const clock = new SimClock();
    const fired: string[] = [];
    const host = clock.scope();
    let later: ReturnType<SimClock["setTimeout"]> | undefined;
    clock.setTimeout(() => {
      fired.push("a");
      clock.setTimeout(() => fired.push("a's echo"), 0);
      clock.clearTimeout(later);
    }, 5);
    host.setTimeout(() => fired.push("b"), 5);
    later = clock.setTimeout(() => fired.push("cleared while due"), 5);
    host.setTimeout(() => fired.push("c"), 5);
    const gone = host.setTimeout(() => fired.push("host cancelled"), 6);
    clock.setTimeout(() => host.cancel(), 5);
    await clock.advance(10);
    expect(fired).toEqual(["a", "b", "c", "a's echo"]);
    expect(clock.pendingTimers).toBe(0);
    clock.clearTimeout(gone);
  });

  it("lets async code react to one timer before the next one fires", async () => {
    const clock = new SimClock();
    const seen: string[] = [];
    const worker = async () => {
      await sleep(clock, 10);
      await Promise.resolve();
      seen.push(`woke at ${clock.now()}`);
      await sleep(clock, 0);
      seen.push(`again at ${clock.now()}`);
    };
    void worker();
    clock.setTimeout(() => seen.push("other at 10"), 10);
    await clock.advance(20);
    // Without draining, both timers due at 10 would fire before the worker woke up.
    expect(seen).toEqual(["woke at 10", "other at 10", "again at 10"]);
  });

  it("runs until a condition holds, or reports that it did not within the limit", async () => {
    const clock = new SimClock();
    let ticks = 0;
    const tick = () => {
      ticks++;
      clock.setTimeout(tick, 100);
    };
    clock.setTimeout(tick, 100);
    expect(await clock.runUntil(() => ticks === 3, 1_000)).toBe(true);
    expect(clock.now()).toBe(300);
    expect(await clock.runUntil(() => ticks === 100, 250)).toBe(false);
    expect(clock.now()).toBe(550);
  });

  it("free-runs with autoRun until stopped", async () => {
    const clock = new SimClock();
    const stop = clock.autoRun();
    await sleep(clock, 60_000);
    expect(clock.now()).toBe(60_000);
    stop();
    let fired = false;
    clock.setTimeout(() => {
      fired = true;
    }, 1);
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    expect(fired).toBe(false);
  });
});

describe("SimNetwork", () => {
  it("delivers across a route, stops when the route is cut, and resumes when it is restored", async () => {
    const net = new SimNetwork({ seed: 1, servers: 2 });
    const a = net.connect("a", { server: 0 });
    const b = net.connect("b", { server: 1 });
    const c = net.connect("c", { server: 0 });
    const atB = collect(b, "dvs.x");
    const atC = collect(c, "dvs.x");
    a.publish("dvs.x", bytes("1"));
    await net.clock.advance(10);
    net.cutRoute(0, 1);
    a.publish("dvs.x", bytes("2"));
    await net.clock.advance(10);
    net.restoreRoute(1, 0);
    a.publish("dvs.x", bytes("3"));
    await net.clock.advance(10);
    expect(atB).toEqual(["1", "3"]);
    expect(atC).toEqual(["1", "2", "3"]);
  });

  it("does not forward across a third server when the direct route is cut", async () => {
    const net = new SimNetwork({ seed: 1, servers: 3 });
    const a = net.connect("a", { server: 0 });
    const b = net.connect("b", { server: 1 });
    const c = net.connect("c", { server: 2 });
    const atB = collect(b, "dvs.x");
    const atC = collect(c, "dvs.x");
    a.subscribe("dvs.y", (m) => {
      if (m.reply) a.publish(m.reply, m.data);
    });
    net.cutRoute(0, 2);
    a.publish("dvs.x", bytes("1"));
    const outcome = c.request("dvs.y", bytes("?"), { timeoutMs: 100 }).catch((e: unknown) => e);
    await net.clock.advance(10);
    expect(atB).toEqual(["1"]);
    expect(atC).toEqual([]);
    expect(await outcome).toBeInstanceOf(NoRespondersError);
  });

  it("loses messages already on a route when the route is cut", async () => {
    const net = new SimNetwork({ seed: 1, servers: 2, latencyMs: { min: 10, max: 10 } });
    const a = net.connect("a", { server: 0 });
    const b = net.connect("b", { server: 1 });
    const got = collect(b, "dvs.x");
    a.publish("dvs.x", bytes("in flight"));
    await net.clock.advance(5);
    net.cutRoute(0, 1);
    net.restoreRoute(0, 1);
    await net.clock.advance(10);
    expect(got).toEqual([]);
    expect(net.trace.at(-1)).toMatchObject({ kind: "drop", to: "b", detail: "route" });
  });

  it("prefers a queue member on the publisher's server, and falls back to a remote one", async () => {
    const net = new SimNetwork({ seed: 7, servers: 2 });
    const pub = net.connect("pub", { server: 0 });
    const local = collect(net.connect("local", { server: 0 }), "dvs.work", "workers");
    const remote = collect(net.connect("remote", { server: 1 }), "dvs.work", "workers");
    for (let i = 0; i < 20; i++) pub.publish("dvs.work", bytes(String(i)));
    await net.clock.advance(10);
    expect(local).toHaveLength(20);
    expect(remote).toHaveLength(0);
    net.cutLink("local");
    pub.publish("dvs.work", bytes("fallback"));
    await net.clock.advance(10);
    expect(remote).toEqual(["fallback"]);
  });

  it("spreads a queue group's messages over its members by the seeded generator", async () => {
    const net = new SimNetwork({ seed: 3 });
    const pub = net.connect("pub");
    const one = collect(net.connect("one"), "dvs.work", "workers");
    const two = collect(net.connect("two"), "dvs.work", "workers");
    const other = collect(net.connect("other"), "dvs.work", "auditors");
    for (let i = 0; i < 100; i++) pub.publish("dvs.work", bytes(String(i)));
    await net.clock.advance(10);
    expect(one.length + two.length).toBe(100);
    expect(one.length).toBeGreaterThan(20);
    expect(two.length).toBeGreaterThan(20);
    expect(other).toHaveLength(100);
  });

  it("gives a client with two matching subscriptions two copies", async () => {
    const net = new SimNetwork({ seed: 1 });
    const a = net.connect("a");
    const b = net.connect("b");
    const got: string[] = [];
    b.subscribe("dvs.>", (m) => got.push(`wide ${text(m.data)}`));
    b.subscribe("dvs.x", (m) => got.push(`exact ${text(m.data)}`));
    a.publish("dvs.x", bytes("1"));
    await net.clock.advance(10);
    expect(got.sort()).toEqual(["exact 1", "wide 1"]);
  });

  it("follows subscriptions as they come and go, literal or wildcard, for a subject already published to", async () => {
    const net = new SimNetwork({ seed: 1 });
    const a = net.connect("a");
    const b = net.connect("b");
    const got: string[] = [];
    const send = async (tag: string) => {
      a.publish("dvs.a.b", bytes(tag));
      await net.clock.advance(10);
    };
    await send("nobody");
    const wild = b.subscribe("dvs.*.b", (m) => got.push(`wild ${text(m.data)}`));
    await send("1");
    const exact = b.subscribe("dvs.a.b", (m) => got.push(`exact ${text(m.data)}`));
    await send("2");
    wild.unsubscribe();
    await send("3");
    exact.unsubscribe();
    await send("4");
    b.subscribe("dvs.>", (m) => got.push(`tail ${text(m.data)}`));
    await send("5");
    expect(got).toEqual(["wild 1", "wild 2", "exact 2", "exact 3", "tail 5"]);
  });

  it("reaches each of a few hundred subscribers, wildcard and literal, on every publish", async () => {
    const net = new SimNetwork({ seed: 1, trace: false });
    const a = net.connect("a");
    const counts: number[] = [];
    for (let i = 0; i < 300; i++) {
      const t = net.connect(`n${i}`);
      counts.push(0);
      t.subscribe(i % 3 === 0 ? "dvs.x" : "dvs.*", () => counts[i]!++);
    }
    for (let round = 0; round < 3; round++) a.publish("dvs.x", bytes(String(round)));
    await net.clock.advance(10);
    expect(counts.every((n) => n === 3)).toBe(true);
  });

  it("hands every receiver the same bytes, copied once from the publisher", async () => {
    const net = new SimNetwork({ seed: 1 });
    const a = net.connect("a");
    const seen: Uint8Array[] = [];
    for (const name of ["b", "c"]) net.connect(name).subscribe("dvs.x", (m) => seen.push(m.data));
    const payload = bytes("abc");
    a.publish("dvs.x", payload);
    payload[0] = 0x7a;
    await net.clock.advance(10);
    expect(seen.map(text)).toEqual(["abc", "abc"]);
    expect(seen[0]).toBe(seen[1]);
  });

  it("runs the deliveries of one message that land together back to back, in subscription order", async () => {
    const net = new SimNetwork({ seed: 1, latencyMs: { min: 1, max: 1 } });
    const a = net.connect("a");
    const order: string[] = [];
    for (const name of ["b", "c", "d"]) {
      net.connect(name).subscribe("dvs.x", () => {
        order.push(name);
        void Promise.resolve().then(() => order.push(`${name} then`));
      });
    }
    a.publish("dvs.x", bytes("1"));
    await net.clock.advance(1);
    // As one socket read hands over several messages: continuations run after the batch.
    expect(order).toEqual(["b", "c", "d", "b then", "c then", "d then"]);
  });

  it("keeps one publisher's messages in order even when latency varies widely", async () => {
    const net = new SimNetwork({ seed: 5, latencyMs: { min: 1, max: 50 } });
    const a = net.connect("a");
    const got = collect(net.connect("b"), "dvs.seq");
    const sent: string[] = [];
    for (let i = 0; i < 200; i++) {
      sent.push(String(i));
      a.publish("dvs.seq", bytes(String(i)));
      if (i % 10 === 0) await net.clock.advance(1);
    }
    await net.clock.advance(100);
    expect(got).toEqual(sent);
  });

  it("drops a share of deliveries without reordering the rest", async () => {
    const net = new SimNetwork({ seed: 11, latencyMs: { min: 1, max: 20 } });
    const a = net.connect("a");
    const c = net.connect("c");
    const atB = collect(net.connect("b"), "dvs.seq");
    net.setFaults({ dropRate: 0.3 }, "a");
    for (let i = 0; i < 200; i++) {
      a.publish("dvs.seq", bytes(String(i)));
      c.publish("dvs.seq", bytes(`c${i}`));
    }
    await net.clock.advance(100);
    const fromA = atB.filter((s) => !s.startsWith("c")).map(Number);
    expect(fromA.length).toBeGreaterThan(100);
    expect(fromA.length).toBeLessThan(180);
    expect(fromA).toEqual([...fromA].sort((x, y) => x - y));
    expect(atB.filter((s) => s.startsWith("c"))).toHaveLength(200);
    expect(net.trace.filter((e) => e.kind === "drop" && e.detail === "fault")).toHaveLength(
      200 - fromA.length,
    );
  });

  it("adds extra delay globally and per publisher", async () => {
    const net = new SimNetwork({ seed: 1, latencyMs: { min: 2, max: 2 } });
    const a = net.connect("a");
    const b = net.connect("b");
    const arrivals: string[] = [];
    b.subscribe("dvs.t", (m) => arrivals.push(`${text(m.data)}@${net.clock.now()}`));
    net.setFaults({ extraDelayMs: 10 });
    net.setFaults({ extraDelayMs: 100 }, "a");
    a.publish("dvs.t", bytes("a"));
    b.publish("dvs.t", bytes("b"));
    await net.clock.advance(200);
    expect(arrivals).toEqual(["b@12", "a@112"]);
  });

  it("reports a cut link one latency later, reconnects on a reconnect attempt after restore, and drops what was published meanwhile", async () => {
    const net = new SimNetwork({ seed: 1, latencyMs: { min: 5, max: 5 }, reconnectWaitMs: 100 });
    const a = net.connect("a");
    const got = collect(net.connect("b"), "dvs.x");
    const statuses: string[] = [];
    a.onStatus((s: TransportStatus) => statuses.push(`${s.type}@${net.clock.now()}`));
    net.cutLink("a");
    a.publish("dvs.x", bytes("lost"));
    await net.clock.advance(5);
    expect(statuses).toEqual(["disconnected@5", "reconnecting@5"]);
    await net.clock.advance(200);
    net.restoreLink("a");
    expect(a.status).toBe("reconnecting");
    await net.clock.advance(100);
    expect(statuses.at(-1)).toBe("connected@305");
    a.publish("dvs.x", bytes("back"));
    await net.clock.advance(10);
    expect(got).toEqual(["back"]);
  });

  it("keeps a cut link cut across a restart, and connects the restarted host once it is restored", async () => {
    const net = new SimNetwork({ seed: 1, reconnectWaitMs: 100 });
    net.connect("a");
    net.cutLink("a");
    net.crash("a");
    const a = net.connect("a");
    const statuses: string[] = [];
    a.onStatus((s) => statuses.push(`${s.type}@${net.clock.now()}`));
    expect(a.status).toBe("reconnecting");
    await net.clock.advance(250);
    net.restoreLink("a");
    await net.clock.advance(100);
    expect(statuses).toEqual(["connected@300"]);
  });

  it("times out a request sent while the link is down, and ignores a reply that comes after the timeout", async () => {
    const net = new SimNetwork({ seed: 1, latencyMs: { min: 50, max: 50 } });
    const client = net.connect("client");
    const server = net.connect("server");
    server.subscribe("dvs.slow", (m) => {
      if (m.reply) server.publish(m.reply, m.data);
    });
    const late = client.request("dvs.slow", bytes("x"), { timeoutMs: 60 }).catch((e: unknown) => e);
    await net.clock.advance(200);
    expect(await late).toBeInstanceOf(TimeoutError);
    expect(net.trace.filter((e) => e.kind === "drop" && e.detail === "unsubscribed")).toHaveLength(1);

    net.cutLink("client");
    const cut = client.request("dvs.slow", bytes("y"), { timeoutMs: 500 }).catch((e: unknown) => e);
    await net.clock.advance(499);
    expect(net.trace.some((e) => e.kind === "timeout" && e.time === 699)).toBe(false);
    await net.clock.advance(1);
    expect(await cut).toBeInstanceOf(TimeoutError);
  });

  it("answers a request without responders after one round trip", async () => {
    const net = new SimNetwork({ seed: 1, latencyMs: { min: 4, max: 4 } });
    const client = net.connect("client");
    const outcome = client.request("dvs.none", bytes("x"), { timeoutMs: 1_000 }).catch((e: unknown) => e);
    await net.clock.advance(4);
    expect(await outcome).toBeInstanceOf(NoRespondersError);
    expect(net.trace.at(-1)).toMatchObject({ kind: "noResponders", time: 4, to: "client" });
  });

  it("makes a crashed host vanish silently and stops its timers, and lets it restart under the same name", async () => {
    const net = new SimNetwork({ seed: 1 });
    const clockA = net.hostClock("a");
    const a = net.connect("a");
    const b = net.connect("b");
    b.subscribe("dvs.silent", () => {});
    const statuses: string[] = [];
    const gotA: string[] = [];
    a.onStatus((s) => statuses.push(s.type));
    a.subscribe("dvs.x", (m) => gotA.push(text(m.data)));
    let ticks = 0;
    const tick = () => {
      ticks++;
      clockA.setTimeout(tick, 10);
    };
    clockA.setTimeout(tick, 10);
    const pending = a.request("dvs.silent", bytes("x"), { timeoutMs: 50 });
    let settled = false;
    pending.then(
      () => (settled = true),
      () => (settled = true),
    );
    await net.clock.advance(25);
    expect(ticks).toBe(2);

    net.crash("a");
    b.publish("dvs.x", bytes("after crash"));
    await net.clock.advance(1_000);
    expect(ticks).toBe(2);
    expect(gotA).toEqual([]);
    expect(statuses).toEqual([]);
    expect(settled).toBe(false);
    expect(clockA.setTimeout(tick, 1)).toEqual({ timer: undefined });
    const toDead = b.request("dvs.x", bytes("?"), { timeoutMs: 100 }).catch((e: unknown) => e);
    await net.clock.advance(10);
    expect(await toDead).toBeInstanceOf(NoRespondersError);

    const a2 = net.connect("a");
    const again = collect(a2, "dvs.x");
    b.publish("dvs.x", bytes("restarted"));
    await net.clock.advance(10);
    expect(again).toEqual(["restarted"]);
    expect(net.hostClock("a")).not.toBe(clockA);
  });

  it("still delivers what a closing client had already sent, then refuses it with TransportClosedError", async () => {
    const net = new SimNetwork({ seed: 1, latencyMs: { min: 10, max: 10 } });
    const a = net.connect("a");
    const got = collect(net.connect("b"), "dvs.x");
    const statuses: string[] = [];
    a.onStatus((s) => statuses.push(s.type));
    a.publish("dvs.x", bytes("last words"));
    await a.close();
    await a.close();
    expect(await a.closed()).toBeUndefined();
    await net.clock.advance(10);
    expect(got).toEqual(["last words"]);
    expect(statuses).toEqual(["closed"]);
    await expect(a.flush()).rejects.toBeInstanceOf(TransportClosedError);
    expect(() => a.subscribe("dvs.y", () => {})).toThrow(TransportClosedError);
    expect(net.connect("a").name).toBe("a");
  });

  it("flushes at once with nothing in flight, and otherwise once earlier messages have landed", async () => {
    const net = new SimNetwork({ seed: 1, latencyMs: { min: 3, max: 3 }, servers: 2 });
    const a = net.connect("a");
    net.connect("b", { server: 1 }).subscribe("dvs.x", () => {});
    await a.flush();
    expect(net.clock.now()).toBe(0);
    net.setFaults({ extraDelayMs: 20 }, "a");
    a.publish("dvs.x", bytes("1"));
    let flushed = -1;
    void a.flush().then(() => {
      flushed = net.clock.now();
    });
    await net.clock.advance(50);
    expect(flushed).toBe(23);
  });

  it("records a throwing handler in the trace and keeps going", async () => {
    const net = new SimNetwork({ seed: 1 });
    const a = net.connect("a");
    const b = net.connect("b");
    const got: string[] = [];
    b.subscribe("dvs.x", (m: Message) => {
      got.push(text(m.data));
      throw new RangeError("boom");
    });
    a.publish("dvs.x", bytes("1"));
    a.publish("dvs.x", bytes("2"));
    await net.clock.advance(10);
    expect(got).toEqual(["1", "2"]);
    expect(net.trace.filter((e) => e.kind === "handlerError").map((e) => e.detail)).toEqual([
      "RangeError: boom",
      "RangeError: boom",
    ]);
  });

  it("rejects scenario mistakes with named errors", () => {
    const net = new SimNetwork({ seed: 1, servers: 2 });
    net.connect("a");
    expect(() => net.connect("a")).toThrow(DuplicateConnectionError);
    expect(() => net.connect("b", { server: 2 })).toThrow(UnknownServerError);
    expect(() => net.cutRoute(0, 0)).toThrow(UnknownServerError);
    expect(() => net.crash("nobody")).toThrow(UnknownHostError);
    expect(() => net.setFaults({ dropRate: 1.5 })).toThrow(SimConfigError);
    expect(() => new SimNetwork({ seed: 1, latencyMs: { min: 5, max: 1 } })).toThrow(SimConfigError);
  });

  it("carries a hundred heartbeating nodes, each hearing every other", async () => {
    const net = new SimNetwork({ seed: 9, servers: 3, trace: false });
    const heard = new Map<string, Set<string>>();
    for (let i = 0; i < 100; i++) {
      const name = `node-${i}`;
      const t = net.connect(name, { server: i % 3 });
      const clock = net.hostClock(name);
      const peers = new Set<string>();
      heard.set(name, peers);
      t.subscribe("dvs.hb.*", (m) => peers.add(m.subject.slice("dvs.hb.".length)));
      const beat = () => {
        t.publish(`dvs.hb.${name}`, bytes("hb"));
        clock.setTimeout(beat, 200);
      };
      clock.setTimeout(beat, i % 200);
    }
    await net.clock.advance(1_000);
    for (const peers of heard.values()) expect(peers.size).toBe(100);
  });
});

describe("determinism", () => {
  async function scenario(seed: number): Promise<TraceEntry[]> {
    const net = new SimNetwork({ seed, servers: 2, latencyMs: { min: 1, max: 8 } });
    const nodes = ["n0", "n1", "n2", "n3"].map((name, i) => net.connect(name, { server: i % 2 }));
    for (const [i, t] of nodes.entries()) {
      t.subscribe(
        "dvs.work",
        (m) => {
          if (m.reply) t.publish(m.reply, m.data);
        },
        { queue: "workers" },
      );
      t.subscribe("dvs.hb.>", () => {});
      t.subscribe(`dvs.node.${i}`, (m) => {
        if (m.reply) t.publish(m.reply, bytes(`n${i}`));
      });
    }
    net.setFaults({ dropRate: 0.1 });
    const outcomes: Promise<unknown>[] = [];
    for (let round = 0; round < 20; round++) {
      for (const [i, t] of nodes.entries()) {
        t.publish(`dvs.hb.n${i}`, bytes(`beat ${round}`));
        outcomes.push(t.request("dvs.work", bytes(`job ${round}`), { timeoutMs: 50 }).catch((e) => e));
        outcomes.push(t.request(`dvs.node.${(i + 1) % 4}`, bytes("?"), { timeoutMs: 50 }).catch((e) => e));
      }
      if (round === 5) net.cutLink("n1");
      if (round === 8) net.cutRoute(0, 1);
      if (round === 12) {
        net.restoreLink("n1");
        net.restoreRoute(0, 1);
      }
      await net.clock.advance(40);
    }
    await net.clock.advance(1_000);
    await Promise.all(outcomes);
    return net.trace;
  }

  it("gives the same trace for the same seed, and a different one for another seed", async () => {
    const first = await scenario(42);
    const second = await scenario(42);
    const other = await scenario(43);
    expect(first.length).toBeGreaterThan(500);
    expect(second).toEqual(first);
    expect(other).not.toEqual(first);
    const kinds = new Set(first.map((e) => e.kind));
    for (const kind of ["deliver", "drop", "status", "noResponders", "timeout"] as const) {
      expect(kinds.has(kind)).toBe(true);
    }
  });
});
