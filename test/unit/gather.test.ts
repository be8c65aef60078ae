import { describe, expect, it } from "vitest";
import { createActor, SimulatedClock } from "xstate";
import { createGatherMachine, type GatherOutput } from "../../machines/gather.js";

const machine = createGatherMachine<string>();

function start(expected: number[], timeoutMs = 1_000) {
  const clock = new SimulatedClock();
  const actor = createActor(machine, { input: { expected, timeoutMs }, clock }).start();
  const output = () => actor.getSnapshot().output as GatherOutput<string> | undefined;
  return { actor, clock, output };
}

describe("gather machine", () => {
  it("ends the moment the last expected member answers, with entries in view order", () => {
    const { actor, output } = start([1, 2, 3]);
    actor.send({ type: "member.answered", node: 3, reply: "c" });
    actor.send({ type: "member.answered", node: 1, reply: "a" });
    expect(actor.getSnapshot().status).toBe("active");
    actor.send({ type: "member.answered", node: 2, reply: "b" });
    expect(actor.getSnapshot().status).toBe("done");
    expect(output()?.entries.map((e) => (e.outcome === "answered" ? e.reply : e.outcome))).toEqual([
      "a",
      "b",
      "c",
    ]);
  });

  it("drops a second answer from a member and answers from nodes it did not expect", () => {
    const { actor, output } = start([1, 2]);
    actor.send({ type: "member.answered", node: 1, reply: "first" });
    actor.send({ type: "member.answered", node: 1, reply: "again" });
    actor.send({ type: "member.answered", node: 9, reply: "stranger" });
    actor.send({ type: "member.answered", node: 2, reply: "b" });
    expect(output()?.dropped).toBe(2);
    expect(output()?.entries[0]).toEqual({ node: 1, outcome: "answered", reply: "first" });
  });

  it("gives silent members a timeout entry when the timeout runs out, and not before", () => {
    const { actor, clock, output } = start([1, 2, 3], 500);
    actor.send({ type: "member.answered", node: 2, reply: "b" });
    clock.increment(499);
    expect(actor.getSnapshot().status).toBe("active");
    clock.increment(1);
    expect(output()?.entries.map((e) => e.outcome)).toEqual(["timeout", "answered", "timeout"]);
  });

  it("marks members that leave the view as down and ends without waiting when no one else is missing", () => {
    const { actor, output } = start([1, 2, 3]);
    actor.send({ type: "member.answered", node: 1, reply: "a" });
    actor.send({ type: "member.answered", node: 2, reply: "b" });
    actor.send({ type: "view.changed", members: [1, 2] });
    expect(actor.getSnapshot().status).toBe("done");
    expect(output()?.entries[2]).toEqual({ node: 3, outcome: "down" });
  });

  it("keeps an answer that arrived before its member left the view", () => {
    const { actor, output } = start([1, 2]);
    actor.send({ type: "member.answered", node: 2, reply: "b" });
    actor.send({ type: "view.changed", members: [1] });
    actor.send({ type: "member.answered", node: 1, reply: "a" });
    expect(output()?.entries.map((e) => e.outcome)).toEqual(["answered", "answered"]);
  });

  it("is done at once when nobody is expected", () => {
    const { actor, output } = start([]);
    expect(actor.getSnapshot().status).toBe("done");
    expect(output()?.entries).toEqual([]);
  });
});
