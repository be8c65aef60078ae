// The file store's coordinator role (SPEC 8) alone: the lifecycle machine runs
// on a simulated clock with spies for its effects (subscribing, sweeping,
// admitting and refusing commits); the repair schedule is its delayed events.
// Repair every 5 s, STATUS every 1 s, at most 2 commits waiting per file.
import { describe, expect, it } from "vitest";
import { createActor } from "xstate";
import { BusyFiles } from "../../actors/files/busyFiles.js";
import {
  type FileCoordinatorEvent,
  type FileCoordinatorInput,
  fileCoordinatorMachine,
} from "../../machines/fileCoordinator.js";
import { transferTimeoutMs } from "../../machines/filePlacement.js";
import { NotProvidedError } from "../../machines/notProvided.js";
import { decode, encode } from "../../protocol/codec.js";
import { SimClock } from "../../transport/sim/clock.js";

const input: FileCoordinatorInput = {
  self: 1,
  maxQueuedPerFile: 2,
  repairEveryMs: 5_000,
  statusMs: 1_000,
};
const transfer = { requestTimeoutMs: 100, readTimeoutMs: 100, readWindow: 4 };

/** A coordinator actor on a simulated clock whose effects are recorded, in order. */
function coordinator() {
  const clock = new SimClock();
  const effects: string[] = [];
  const machine = fileCoordinatorMachine.provide({
    actions: {
      takeClients: () => effects.push("takeClients"),
      leaveClients: () => effects.push("leaveClients"),
      sweep: () => effects.push(`sweep@${clock.now()}`),
      admitCommit: (_, { ref }) => effects.push(`admit:${ref}`),
      refuseCommit: (_, { ref, depth }) => effects.push(`refuse:${ref}:${depth}`),
    },
  });
  const actor = createActor(machine, { input, clock }).start();
  return {
    clock,
    actor,
    effects,
    send(...events: FileCoordinatorEvent[]): string[] {
      effects.length = 0;
      for (const event of events) actor.send(event);
      return [...effects];
    },
    get state() {
      return actor.getSnapshot().value;
    },
    get context() {
      return actor.getSnapshot().context;
    },
  };
}

const won = (at = 0): FileCoordinatorEvent => ({ type: "coordinator.changed", coordinator: 1, at });
const lost = (coordinator: number | null = 2): FileCoordinatorEvent => ({
  type: "coordinator.changed",
  coordinator,
  at: 0,
});
const offer = (ref: string, name = "a", size = 10, at = 0): FileCoordinatorEvent => ({
  type: "commit.offered",
  ref,
  name,
  size,
  at,
});

describe("file coordinator machine", () => {
  it("stands by until this node is named coordinator, then takes the clients' requests", () => {
    const c = coordinator();
    expect(c.state).toBe("standby");
    expect(c.send(lost(2))).toEqual([]);
    expect(c.send(won(7))).toEqual(["takeClients"]);
    expect(c.state).toBe("coordinating");
    expect(c.context.termStart).toBe(7);
  });

  it("a new term starts the judging of holders at its own start", () => {
    const c = coordinator();
    c.send(won(0));
    c.send(lost(), won(9));
    expect(c.context.termStart).toBe(9);
  });

  it("sweeps at once when the term begins, then every repairEveryMs after a sweep ends", async () => {
    const c = coordinator();
    c.send(won());
    await c.clock.advance(0);
    expect(c.effects).toEqual(["takeClients", "sweep@0"]);
    expect(c.context.repairing).toBe(true);
    c.send({ type: "repair.done" });
    expect(c.context.repairing).toBe(false);
    await c.clock.advance(4_999);
    expect(c.effects).toEqual([]);
    await c.clock.advance(1);
    expect(c.effects).toEqual(["sweep@5000"]);
  });

  it("a repair due while a sweep runs is put off by one period, not run twice", async () => {
    const c = coordinator();
    c.send(won());
    await c.clock.advance(0);
    c.effects.length = 0;
    c.send({ type: "server.left" });
    await c.clock.advance(0);
    expect(c.effects).toEqual([]);
    expect(c.clock.pendingTimers).toBe(1);
    await c.clock.advance(5_000);
    expect(c.effects).toEqual([]);
    expect(c.clock.pendingTimers).toBe(1);
  });

  it("a server that leaves brings the next sweep forward to now, keeping one timer", async () => {
    const c = coordinator();
    c.send(won());
    await c.clock.advance(0);
    c.send({ type: "repair.done" });
    expect(c.clock.pendingTimers).toBe(1);
    expect(c.send({ type: "server.left" })).toEqual([]);
    expect(c.clock.pendingTimers).toBe(1);
    await c.clock.advance(0);
    expect(c.effects).toEqual(["sweep@0"]);
  });

  it("losing the term leaves the clients and cancels the repair", async () => {
    const c = coordinator();
    c.send(won());
    expect(c.send(lost(2))).toEqual(["leaveClients"]);
    expect(c.state).toBe("standby");
    expect(c.clock.pendingTimers).toBe(0);
    c.send({ type: "server.left" });
    expect(c.clock.pendingTimers).toBe(0);
  });

  it("a sweep that ends after the term was lost schedules nothing", () => {
    const c = coordinator();
    c.send(won(), { type: "repair.due" }, lost());
    expect(c.send({ type: "repair.done" })).toEqual([]);
    expect(c.context.repairing).toBe(false);
    expect(c.clock.pendingTimers).toBe(0);
  });

  it("a stopped coordinator leaves the clients and takes no new term", () => {
    const c = coordinator();
    c.send(won());
    expect(c.send({ type: "files.stop" })).toEqual(["leaveClients"]);
    expect(c.clock.pendingTimers).toBe(0);
    expect(c.send(won())).toEqual([]);
    expect(c.state).toBe("stopped");
  });

  it("admits commits of a file up to maxQueuedPerFile and refuses one more with the depth", () => {
    const c = coordinator();
    expect(c.send(offer("1"), offer("2"), offer("3"), offer("4", "b"))).toEqual([
      "admit:1",
      "admit:2",
      "refuse:3:2",
      "admit:4",
    ]);
    expect(c.context.queued).toEqual({ a: 2, b: 1 });
    c.send({ type: "commit.ended", name: "a", size: 10, at: 0 });
    expect(c.send(offer("5"))).toEqual(["admit:5"]);
    c.send(
      { type: "commit.ended", name: "a", size: 10, at: 0 },
      { type: "commit.ended", name: "a", size: 10, at: 0 },
    );
    expect(c.context.queued).toEqual({ b: 1 });
  });

  it("a file with a commit under way, or one ended lately, is busy: its copies are not judged", () => {
    const busy = new BusyFiles({ ...transfer, statusMs: input.statusMs });
    const quiet = transferTimeoutMs(transfer, 10) + 2 * input.statusMs;
    expect(busy.at(0, ["a"])).toEqual(new Set(["a"]));
    busy.hold("a", 10, 50);
    expect(busy.at(50 + quiet - 1, [])).toEqual(new Set(["a"]));
    expect(busy.at(50 + quiet, [])).toEqual(new Set());
    busy.forgetQuiet(50 + quiet - 1);
    expect(busy.size).toBe(1);
    busy.forgetQuiet(50 + quiet);
    expect(busy.size).toBe(0);
  });

  it("a file named like an Object.prototype key is counted like any other", () => {
    const c = coordinator();
    expect(c.send(offer("1", "constructor"), offer("2", "__proto__"))).toEqual(["admit:1", "admit:2"]);
    expect(c.context.queued).toEqual({ constructor: 1, ["__proto__"]: 1 });
  });

  it("each delegation takes the next turn of the round robin", () => {
    const c = coordinator();
    c.send({ type: "delegation.started" }, { type: "delegation.started" });
    expect(c.context.turn).toBe(2);
  });

  it("its context survives a CBOR round trip", () => {
    const c = coordinator();
    c.send(won(3), offer("1"));
    expect(decode(encode(c.context), "cbor")).toEqual({ ok: true, value: c.context });
  });

  it("an effect the runtime forgot to provide fails loudly", () => {
    const actor = createActor(fileCoordinatorMachine, { input });
    const errors: unknown[] = [];
    actor.subscribe({ error: (e) => errors.push(e) });
    actor.start();
    actor.send(won());
    expect(errors[0]).toBeInstanceOf(NotProvidedError);
  });
});
