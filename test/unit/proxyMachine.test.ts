// The pure machines of processes: a proxy pair, the host-side lifecycle of a
// process, and the two example process machines — transitions computed with
// `transition`, no actor, no time; contexts survive a CBOR round trip.
import { describe, expect, it } from "vitest";
import { type AnyStateMachine, initialTransition, type SnapshotFrom, transition } from "xstate";
import { counterMachine } from "../../machines/examples/counter.js";
import { kvCellMachine } from "../../machines/examples/kvCell.js";
import { processLifecycleMachine } from "../../machines/process.js";
import type { DvsEvent, Sender } from "../../machines/processEvents.js";
import {
  backoff,
  baseOf,
  hasRoom,
  nextDue,
  type ProxyEvent,
  type ProxyLimits,
  proxyMachine,
} from "../../machines/proxy.js";
import { decode, encode } from "../../protocol/codec.js";

const roundTrip = <T>(value: T): T => {
  const decoded = decode(encode(value), "cbor");
  if (!decoded.ok) throw new Error(decoded.message);
  return decoded.value as T;
};

function run<M extends AnyStateMachine>(machine: M, input: unknown, events: readonly unknown[]) {
  let [snapshot] = initialTransition(machine, input as never);
  const emitted: unknown[] = [];
  for (const event of events) {
    const [next, actions] = transition(machine, snapshot, event as never);
    snapshot = next as SnapshotFrom<M>;
    for (const a of actions as { type: string; params?: unknown }[]) {
      if (a.type === "xstate.emit") emitted.push((a.params as { event: unknown }).event);
    }
  }
  return { snapshot, emitted };
}

const limits: ProxyLimits = {
  window: 4,
  windowBytes: 1_000,
  resendMs: 100,
  maxResendMs: 400,
  giveUpMs: 1_000,
};

const proxy = (up: boolean, events: ProxyEvent[]) =>
  run(proxyMachine, { self: 1, peer: 2, up, at: 0, limits }, events);

const queue = (msg: unknown, at = 0, bytes = 10): ProxyEvent => ({ type: "frame.queue", msg, bytes, at });
const arrived = (pseq: number, base = 1, epoch = 1, at = pseq): ProxyEvent => ({
  type: "frame.arrived",
  epoch,
  pseq,
  base,
  msg: `m${pseq}`,
  bytes: 10,
  at,
});
const ofType = (emitted: unknown[], type: string) =>
  (emitted as { type: string; resend?: boolean; pseq?: number }[]).filter((e) => e.type === type);

describe("proxy machine", () => {
  it("starts up or down as the peer is in the view, and follows it in and out", () => {
    expect(proxy(true, []).snapshot.value).toBe("up");
    expect(proxy(false, []).snapshot.value).toBe("down");
    const { snapshot } = proxy(true, [
      { type: "peer.down", at: 10 },
      { type: "peer.up", at: 20 },
      { type: "peer.down", at: 30 },
    ]);
    expect(snapshot.value).toBe("down");
    expect(snapshot.context).toMatchObject({ up: false, since: 30, downs: 2 });
  });

  it("numbers, publishes and keeps each frame until the peer acknowledges it", () => {
    const { snapshot, emitted } = proxy(true, [
      queue("a", 5),
      queue("b", 7),
      { type: "ack.received", acks: [{ pseq: 1 }], at: 8 },
      { type: "frame.failed", at: 9 },
    ]);
    expect(emitted).toEqual([
      { type: "proxy.publish", pseq: 1, base: 1, msg: "a", resend: false },
      { type: "proxy.publish", pseq: 2, base: 1, msg: "b", resend: false },
      { type: "proxy.settled", pseq: 1 },
    ]);
    expect(snapshot.context.sent).toMatchObject({ msgs: 2, bytes: 20, errors: 1, last: 7, seq: 2, acked: 1 });
    expect(snapshot.context.out.map((f) => f.pseq)).toEqual([2]);
    expect(baseOf(snapshot.context)).toBe(2);
  });

  it("resends an unacknowledged frame with backoff, then gives it up with ETIMEDOUT", () => {
    const tick = (at: number): ProxyEvent => ({ type: "resend.tick", at });
    const { snapshot, emitted } = proxy(true, [
      queue("a", 0),
      tick(50),
      tick(100),
      tick(300),
      tick(700),
      tick(1_000),
    ]);
    expect(ofType(emitted, "proxy.publish").map((e) => e.resend)).toEqual([false, true, true, true]);
    expect(ofType(emitted, "proxy.settled")).toEqual([
      { type: "proxy.settled", pseq: 1, error: "ETIMEDOUT" },
    ]);
    expect(snapshot.context.sent).toMatchObject({ resent: 3, gaveUp: 1 });
    expect(snapshot.context.out).toEqual([]);
    expect(nextDue(snapshot.context)).toBeUndefined();
    // Backoff: 100, 200, 400 (the cap), and the give-up deadline bounds the wait.
    expect(backoff(limits, 1)).toBe(100);
    expect(backoff(limits, 3)).toBe(400);
    expect(backoff(limits, 9)).toBe(400);
    expect(nextDue(proxy(true, [queue("a", 0), tick(100), tick(300), tick(700)]).snapshot.context)).toBe(
      1_000,
    );
  });

  it("holds at most a window of frames and of bytes in flight", () => {
    let { snapshot } = proxy(true, [queue(1), queue(2), queue(3)]);
    expect(hasRoom(snapshot.context, 10)).toBe(true);
    expect(hasRoom(snapshot.context, 980)).toBe(false);
    ({ snapshot } = proxy(true, [queue(1), queue(2), queue(3), queue(4)]));
    expect(hasRoom(snapshot.context, 1)).toBe(false);
    // The window counts from the oldest unacknowledged frame, acknowledged ones above it included.
    ({ snapshot } = proxy(true, [
      queue(1),
      queue(2),
      queue(3),
      queue(4),
      { type: "ack.received", acks: [{ pseq: 2 }], at: 1 },
    ]));
    expect(hasRoom(snapshot.context, 1)).toBe(false);
    ({ snapshot } = proxy(true, [
      queue(1),
      queue(2),
      queue(3),
      queue(4),
      { type: "ack.received", acks: [{ pseq: 1 }], at: 1 },
    ]));
    expect(hasRoom(snapshot.context, 1)).toBe(true);
  });

  it("hands each frame on once and acknowledges it when settled, a duplicate again", () => {
    const { snapshot, emitted } = proxy(true, [
      arrived(1),
      arrived(1),
      { type: "frame.settled", epoch: 1, pseq: 1 },
      arrived(1),
      arrived(2),
      { type: "frame.settled", epoch: 1, pseq: 2, error: "ENOENT" },
    ]);
    expect(emitted).toEqual([
      { type: "proxy.deliver", epoch: 1, pseq: 1, msg: "m1" },
      { type: "proxy.ack", epoch: 1, pseq: 1 },
      { type: "proxy.ack", epoch: 1, pseq: 1 },
      { type: "proxy.deliver", epoch: 1, pseq: 2, msg: "m2" },
      { type: "proxy.ack", epoch: 1, pseq: 2, error: "ENOENT" },
    ]);
    expect(snapshot.context.received).toMatchObject({ msgs: 2, duplicates: 2, seq: 2, errors: 2 });
  });

  it("forgets frames below the sender's base, counting those it never got as missing", () => {
    const { snapshot, emitted } = proxy(true, [arrived(1), arrived(4, 3), arrived(2, 3), arrived(9, 3)]);
    expect(ofType(emitted, "proxy.deliver").map((e) => e.pseq)).toEqual([1, 4]);
    // 2 is below the floor (stale); 9 is more than a window above it (rejected).
    expect(snapshot.context.received).toMatchObject({ floor: 2, missing: 1, duplicates: 1, rejected: 1 });
    expect(snapshot.context.received.seen).toEqual([{ pseq: 4, outcome: "pending" }]);
  });

  it("starts the receiver over when the peer comes back in a new epoch, from that frame's base", () => {
    const { snapshot, emitted } = proxy(true, [
      arrived(1),
      arrived(2),
      arrived(5, 5, 2),
      { type: "frame.settled", epoch: 1, pseq: 1 },
      arrived(3, 1, 1),
    ]);
    // The frame of the old run that lands late is rejected.
    expect(ofType(emitted, "proxy.deliver")).toHaveLength(3);
    // A settlement of the old epoch is not acknowledged: its sender is gone.
    expect(ofType(emitted, "proxy.ack")).toEqual([]);
    expect(snapshot.context.received).toMatchObject({
      seq: 5,
      epoch: 2,
      floor: 4,
      errors: 1,
      rejected: 1,
      msgs: 3,
    });
  });

  it("keeps carrying while the peer is down (a view lags the traffic)", () => {
    const { snapshot } = proxy(false, [arrived(1), queue("x")]);
    expect(snapshot.value).toBe("down");
    expect(snapshot.context.received.msgs).toBe(1);
    expect(snapshot.context.out).toHaveLength(1);
  });

  it("has a context that survives a CBOR round trip", () => {
    const { snapshot } = proxy(true, [queue({ sender: "x", seq: 1 }, 5), arrived(1, 1, 4)]);
    expect(roundTrip(snapshot.context)).toEqual(snapshot.context);
  });
});

describe("process lifecycle machine", () => {
  const input = { dcid: 1, endpoint: 5, machine: "counter", epoch: 1 };

  it("goes running → migrating → moved, bumping the epoch", () => {
    const { snapshot } = run(processLifecycleMachine, input, [
      { type: "process.migrate", to: 3 },
      { type: "migration.done", to: 3, epoch: 2 },
    ]);
    expect(snapshot.value).toBe("moved");
    expect(snapshot.status).toBe("done");
    expect(snapshot.context).toMatchObject({ movedTo: 3, epoch: 2, migrations: 1, migratingTo: null });
  });

  it("runs on where it was when a migration fails, and counts the failure", () => {
    const { snapshot } = run(processLifecycleMachine, input, [
      { type: "process.migrate", to: 3 },
      { type: "migration.failed", reason: "ETIMEDOUT" },
    ]);
    expect(snapshot.value).toBe("running");
    expect(snapshot.context).toMatchObject({ failedMigrations: 1, reason: "ETIMEDOUT", epoch: 1 });
  });

  it("cannot end while migrating, nor migrate twice at once", () => {
    const { snapshot } = run(processLifecycleMachine, input, [
      { type: "process.migrate", to: 3 },
      { type: "process.end", reason: "PROCEND" },
      { type: "process.migrate", to: 2 },
    ]);
    expect(snapshot.value).toBe("migrating");
    expect(snapshot.context.migratingTo).toBe(3);
  });

  it("ends from running", () => {
    const { snapshot } = run(processLifecycleMachine, input, [{ type: "process.end", reason: "PROCEND" }]);
    expect(snapshot.value).toBe("ended");
    expect(roundTrip(snapshot.context)).toEqual(snapshot.context);
  });
});

const client: Sender = { kind: "client", key: "c:1.1:tool", node: 1, src: "tool" };
const peer: Sender = { kind: "process", key: "p:1:7.0", dcid: 1, endpoint: 7 };
const msg = (body: unknown, from: Sender = client, seq = 1): DvsEvent => ({
  type: "dvs.message",
  from,
  seq,
  body,
});

describe("counter machine", () => {
  it("counts up and down, and is set", () => {
    const { snapshot } = run(counterMachine, { count: 10 }, [
      msg({ type: "inc" }),
      msg({ type: "inc", by: 5 }),
      msg({ type: "dec", by: 3 }),
      msg({ type: "unknown" }),
      msg("not an object"),
    ]);
    expect(snapshot.context).toEqual({ count: 13, updates: 3, reads: 0 });
    expect(run(counterMachine, undefined, [msg({ type: "set", value: -4 })]).snapshot.context.count).toBe(-4);
  });

  it("answers a process's get with a dvs.send back to it, and a requester's get with nothing", () => {
    const { snapshot, emitted } = run(counterMachine, {}, [
      msg({ type: "inc" }),
      msg({ type: "get" }, peer),
      msg({ type: "get" }, client),
    ]);
    expect(emitted).toEqual([
      { type: "dvs.send", dcid: 1, endpoint: 7, body: { type: "counter.value", count: 1 } },
    ]);
    expect(snapshot.context.reads).toBe(2);
    expect(roundTrip(snapshot.context)).toEqual(snapshot.context);
  });
});

describe("kvCell machine", () => {
  it("sets, deletes and answers gets from processes", () => {
    const { snapshot, emitted } = run(kvCellMachine, { entries: { a: 1 } }, [
      msg({ type: "set", key: "b", value: { deep: [1, "x"] } }),
      msg({ type: "del", key: "a" }),
      msg({ type: "del", key: "missing" }),
      msg({ type: "set", value: 1 }),
      msg({ type: "get", key: "b" }, peer),
      msg({ type: "get", key: "a" }, peer),
    ]);
    expect(snapshot.context).toEqual({ entries: { b: { deep: [1, "x"] } }, version: 2 });
    expect(emitted).toEqual([
      {
        type: "dvs.send",
        dcid: 1,
        endpoint: 7,
        body: { type: "kv.value", key: "b", found: true, value: { deep: [1, "x"] } },
      },
      {
        type: "dvs.send",
        dcid: 1,
        endpoint: 7,
        body: { type: "kv.value", key: "a", found: false, value: null },
      },
    ]);
    expect(roundTrip(snapshot.context)).toEqual(snapshot.context);
  });

  it("keeps a key named __proto__ as data", () => {
    const { snapshot } = run(kvCellMachine, undefined, [msg({ type: "set", key: "__proto__", value: 3 })]);
    expect(Object.hasOwn(snapshot.context.entries, "__proto__")).toBe(true);
    expect(Object.getPrototypeOf(snapshot.context.entries)).toBe(Object.prototype);
  });
});
