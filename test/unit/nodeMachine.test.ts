import { describe, expect, it } from "vitest";
import { createActor, fromPromise, waitFor } from "xstate";
import { nodeMachine } from "../../machines/node.js";

const input = { node: 1, cluster: "dvs", incarnation: 3 };

function provided(overrides: { connect?: () => Promise<void>; drain?: () => Promise<void> } = {}) {
  const reports: string[] = [];
  const machine = nodeMachine.provide({
    actors: {
      connect: fromPromise(overrides.connect ?? (async () => {})),
      drain: fromPromise(overrides.drain ?? (async () => {})),
    },
    actions: {
      reportRunning: () => reports.push("running"),
      reportIsolated: () => reports.push("isolated"),
      reportReconnected: () => reports.push("reconnected"),
      reportLeaving: () => reports.push("leaving"),
      reportFailed: (_, p) => reports.push(`failed:${(p.error as Error).message}`),
      reportEnded: () => reports.push("ended"),
    },
  });
  return { machine, reports };
}

describe("node lifecycle machine", () => {
  it("joins once connected, is isolated while the link is down, and leaves then ends on stop", async () => {
    const { machine, reports } = provided();
    const actor = createActor(machine, { input }).start();
    expect(actor.getSnapshot().value).toBe("starting");
    await waitFor(actor, (s) => s.matches({ running: "joining" }));
    expect(reports).toEqual([]);
    actor.send({ type: "membership.joined" });
    expect(actor.getSnapshot().value).toEqual({ running: "member" });
    actor.send({ type: "link.down" });
    expect(actor.getSnapshot().value).toEqual({ running: "isolated" });
    expect(actor.getSnapshot().context.linkLosses).toBe(1);
    actor.send({ type: "link.up" });
    expect(actor.getSnapshot().value).toEqual({ running: "member" });
    actor.send({ type: "node.stop", reason: "SIGTERM" });
    const done = await waitFor(actor, (s) => s.status === "done");
    expect(done.context.reason).toBe("SIGTERM");
    expect(reports).toEqual(["running", "isolated", "reconnected", "leaving", "ended"]);
  });

  it("ends with the start failure reported when it cannot connect", async () => {
    const { machine, reports } = provided({ connect: async () => Promise.reject(new Error("no server")) });
    const actor = createActor(machine, { input }).start();
    const done = await waitFor(actor, (s) => s.status === "done");
    expect(done.context.reason).toBe("start failed");
    expect(reports).toEqual(["failed:no server", "ended"]);
  });

  it("ends when the connection closes under it, without draining", async () => {
    let drained = false;
    const { machine } = provided({
      drain: async () => {
        drained = true;
      },
    });
    const actor = createActor(machine, { input }).start();
    await waitFor(actor, (s) => s.matches("running"));
    actor.send({ type: "link.closed", reason: "connection closed" });
    expect(actor.getSnapshot().status).toBe("done");
    expect(drained).toBe(false);
  });

  it("fails loudly when the runtime did not provide its effects", async () => {
    const actor = createActor(nodeMachine, { input });
    const errors: unknown[] = [];
    actor.subscribe({ error: (e) => errors.push(e) });
    actor.start();
    await new Promise((r) => setTimeout(r, 10));
    // The unprovided connect actor rejects, and the unprovided report action throws.
    expect(errors.map((e) => (e as Error).name)).toContain("NotProvidedError");
  });

  it("keeps a context that survives a CBOR-like round trip (plain data only)", async () => {
    const { machine } = provided();
    const actor = createActor(machine, { input }).start();
    await waitFor(actor, (s) => s.matches("running"));
    const context = actor.getSnapshot().context;
    expect(JSON.parse(JSON.stringify(context))).toEqual({ ...context, reason: undefined });
  });
});
