// The client role (machines/registryClient.ts) on its own: WHO, backoff after
// NOTHING, FAILED with the epoch it was given. Time is the events' `at`.
import { describe, expect, it } from "vitest";
import { createActor } from "xstate";
import {
  type RegistryClientEvent,
  registryClientMachine,
  registryClientTickDue,
} from "../../machines/registryClient.js";

type Sent = { type: "WHO" } | { type: "FAILED"; coordinator: number; epoch: number };

function client() {
  const sent: Sent[] = [];
  const actor = createActor(
    registryClientMachine.provide({
      actions: {
        sendWho: () => sent.push({ type: "WHO" }),
        sendFailed: (_, params) => sent.push({ type: "FAILED", ...params }),
      },
    }),
    { input: { retryMs: 50, retryMaxMs: 200, at: 0 } },
  ).start();
  return {
    sent,
    send: (...events: RegistryClientEvent[]) => {
      for (const e of events) actor.send(e);
    },
    snapshot: () => actor.getSnapshot(),
  };
}

const tick = (at: number): RegistryClientEvent => ({ type: "clock.tick", at });

describe("client role", () => {
  it("asks WHO at once and knows the coordinator OK names", () => {
    const c = client();
    expect(c.sent).toEqual([{ type: "WHO" }]);
    c.send({ type: "who.ok", coordinator: 3, epoch: 9, at: 1 });
    expect(c.snapshot().value).toBe("known");
    expect(c.snapshot().context).toMatchObject({ coordinator: 3, epoch: 9 });
  });

  it("after NOTHING it asks again with a delay that doubles up to the cap", () => {
    const c = client();
    const askedAt: number[] = [];
    let at = 0;
    for (let i = 0; i < 5; i++) {
      c.send({ type: "who.nothing", at });
      const before = c.sent.length;
      while (c.sent.length === before) {
        at += 10;
        c.send(tick(at));
      }
      askedAt.push(at);
    }
    const delays = askedAt.map((t, i) => t - (i === 0 ? 0 : (askedAt[i - 1] as number)));
    expect(delays).toEqual([50, 100, 200, 200, 200]);
  });

  it("a WHO without an answer counts as NOTHING", () => {
    const c = client();
    c.send({ type: "who.failed", at: 0 }, tick(40));
    expect(c.sent).toHaveLength(1);
    c.send(tick(50));
    expect(c.sent).toHaveLength(2);
  });

  it("reports FAILED with the coordinator's epoch, then asks WHO again", () => {
    const c = client();
    c.send({ type: "who.ok", coordinator: 3, epoch: 9, at: 1 }, { type: "coordinator.failed", at: 5 });
    expect(c.sent).toEqual([{ type: "WHO" }, { type: "FAILED", coordinator: 3, epoch: 9 }, { type: "WHO" }]);
    expect(c.snapshot().context.coordinator).toBeNull();
  });

  it("ignores an answer from an older term than one it knows, and follows a newer one", () => {
    const c = client();
    c.send(
      { type: "who.ok", coordinator: 3, epoch: 9, at: 1 },
      { type: "who.ok", coordinator: 2, epoch: 4, at: 2 },
    );
    expect(c.snapshot().context).toMatchObject({ coordinator: 3, epoch: 9 });
    c.send({ type: "who.ok", coordinator: 5, epoch: 12, at: 3 });
    expect(c.snapshot().context).toMatchObject({ coordinator: 5, epoch: 12 });
  });

  it("is due for a tick only while it waits to ask again, at the end of the wait", () => {
    const c = client();
    const due = () => registryClientTickDue(String(c.snapshot().value), c.snapshot().context);
    expect(due()).toBeUndefined();
    c.send({ type: "who.nothing", at: 7 });
    expect(due()).toBe(57);
    c.send(tick(56));
    expect(c.sent).toHaveLength(1);
    c.send(tick(57));
    expect(c.sent).toHaveLength(2);
    expect(due()).toBeUndefined();
    c.send({ type: "who.ok", coordinator: 3, epoch: 9, at: 60 });
    expect(due()).toBeUndefined();
  });
});
