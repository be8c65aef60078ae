// The pure machines of processes: a proxy pair, the host-side lifecycle of a
// process, and the two example process machines — transitions computed with
// `transition`, no actor, no time; contexts survive a CBOR round trip.
import { describe, expect, it } from "vitest";
import { type AnyStateMachine, initialTransition, type SnapshotFrom, transition } from "xstate";
import { counterMachine } from "../../machines/examples/counter.js";
import { kvCellMachine } from "../../machines/examples/kvCell.js";
import { processLifecycleMachine } from "../../machines/process.js";
import type { DvsEvent, Sender } from "../../machines/processEvents.js";
import { nextSendSeq, type ProxyEvent, proxyMachine } from "../../machines/proxy.js";
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

const proxy = (up: boolean, events: ProxyEvent[]) =>
  run(proxyMachine, { self: 1, peer: 2, up, at: 0 }, events).snapshot;

describe("proxy machine", () => {
  it("starts up or down as the peer is in the view, and follows it in and out", () => {
    expect(proxy(true, []).value).toBe("up");
    expect(proxy(false, []).value).toBe("down");
    const s = proxy(true, [
      { type: "peer.down", at: 10 },
      { type: "peer.up", at: 20 },
      { type: "peer.down", at: 30 },
    ]);
    expect(s.value).toBe("down");
    expect(s.context).toMatchObject({ up: false, since: 30, downs: 2 });
  });

  it("counts what the sender carried and numbers its frames", () => {
    let s = proxy(true, []);
    expect(nextSendSeq(s.context)).toBe(1);
    s = proxy(true, [
      { type: "frame.sent", seq: 1, bytes: 100, at: 5 },
      { type: "frame.sent", seq: 2, bytes: 50, at: 7 },
      { type: "frame.failed", at: 8 },
    ]);
    expect(s.context.sent).toEqual({ msgs: 2, bytes: 150, errors: 1, last: 7, seq: 2 });
    expect(nextSendSeq(s.context)).toBe(3);
  });

  it("counts a jump in the receiver's frame numbers as a gap and a repeat as a duplicate", () => {
    const rx = (seq: number, epoch = 1): ProxyEvent => ({
      type: "frame.received",
      seq,
      epoch,
      bytes: 10,
      at: seq,
    });
    const s = proxy(true, [rx(1), rx(2), rx(5), rx(5), rx(3), { type: "frame.rejected", at: 9 }]);
    expect(s.context.received).toMatchObject({
      msgs: 5,
      bytes: 50,
      seq: 5,
      missing: 2,
      duplicates: 2,
      rejected: 1,
      errors: 4,
      last: 3,
    });
  });

  it("starts the receiver's numbering over when the peer comes back in a new epoch", () => {
    const s = proxy(true, [
      { type: "frame.received", seq: 1, epoch: 1, bytes: 1, at: 1 },
      { type: "frame.received", seq: 2, epoch: 1, bytes: 1, at: 2 },
      { type: "frame.received", seq: 1, epoch: 2, bytes: 1, at: 3 },
    ]);
    expect(s.context.received).toMatchObject({ seq: 1, epoch: 2, errors: 0, msgs: 3 });
  });

  it("keeps counting while the peer is down (a view lags the traffic)", () => {
    const s = proxy(false, [{ type: "frame.received", seq: 1, epoch: 1, bytes: 3, at: 1 }]);
    expect(s.value).toBe("down");
    expect(s.context.received.msgs).toBe(1);
  });

  it("has a context that survives a CBOR round trip", () => {
    const s = proxy(true, [
      { type: "frame.sent", seq: 1, bytes: 100, at: 5 },
      { type: "frame.received", seq: 1, epoch: 4, bytes: 1, at: 3 },
    ]);
    expect(roundTrip(s.context)).toEqual(s.context);
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
