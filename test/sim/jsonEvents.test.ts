// The events' JSON twin over the simulated network: a subscriber that knows
// only JSON (no CBOR decoder) on `dvs.<c>.events.json.*` sees the membership
// and COORDINATOR events, each on its observer's own twin subject, the same
// events the CBOR subscribers get on `dvs.<c>.events.*`, and never a JSON body
// there.
import { describe, expect, it } from "vitest";
import { watchEvents } from "../../client/events.js";
import type { ClusterEvent } from "../../protocol/messages.js";
import { SimCluster } from "../../sim/cluster.js";
import { header, type Message } from "../../transport/transport.js";

interface Received {
  readonly subject: string;
  readonly contentType: string | undefined;
  readonly body: { node: number; event: string; [field: string]: unknown };
}

/** What a JSON-only client does: subscribe to the twins and JSON.parse each body. */
function jsonWatcher(c: SimCluster): Received[] {
  const received: Received[] = [];
  c.network.connect("json-watcher").subscribe("dvs.dvs.events.json.*", (msg: Message) => {
    received.push({
      subject: msg.subject,
      contentType: header(msg, "Content-Type"),
      body: JSON.parse(new TextDecoder().decode(msg.data)),
    });
  });
  return received;
}

describe("events as JSON on the twin subject", () => {
  it("a JSON-only subscriber sees each node's JOIN and the coordinator's COORDINATOR, on the observer's own twin", async () => {
    const c = new SimCluster({ seed: 21, election: {} });
    const received = jsonWatcher(c);
    for (const id of [1, 2, 3]) c.start(id);
    await c.advance(2_000);

    for (const id of [1, 2, 3]) {
      expect(received.some((r) => r.body.node === id && r.body.event === "JOIN")).toBe(true);
    }
    const elected = received.find((r) => r.body.event === "COORDINATOR" && r.body.cause === "elected");
    expect(elected?.body).toMatchObject({ v: 1, coordinator: elected?.body.node });
    for (const r of received) {
      expect(r.subject).toBe(`dvs.dvs.events.json.${r.body.node}`);
      expect(r.contentType).toBe("application/json");
    }
  });

  it("carries the same events as the CBOR subjects, whose subscribers never see a JSON body", async () => {
    const c = new SimCluster({ seed: 22, election: {} });
    const received = jsonWatcher(c);
    const cbor: ClusterEvent[] = [];
    const skipped: string[] = [];
    watchEvents(
      c.network.connect("cbor-watcher"),
      "dvs",
      (event) => cbor.push(event),
      (reason) => skipped.push(reason),
    );
    for (const id of [1, 2, 3]) c.start(id);
    await c.advance(2_000);
    c.crash(3);
    await c.advance(7_000);

    expect(skipped).toEqual([]);
    expect(cbor.some((e) => e.event === "DISCONNECT")).toBe(true);
    expect(received).toHaveLength(cbor.length);
    for (const r of received) expect(cbor).toContainEqual(r.body);
  });

  it("an event seen while the node's link was down reaches the twin once the link is back", async () => {
    const c = new SimCluster({ seed: 5 });
    const received = jsonWatcher(c);
    for (const id of [1, 2, 3]) c.start(id);
    await c.advance(1_000);
    c.cutLink(3);
    await c.advance(2_000);
    const lost = (r: Received) => r.body.node === 3 && r.body.cause === "lost own NATS link";
    expect(received.some(lost)).toBe(false);
    c.restoreLink(3);
    await c.advance(2_000);
    expect(received.some((r) => lost(r) && r.body.event === "PARTITION")).toBe(true);
    expect(received.some((r) => r.body.node === 3 && r.body.event === "MERGE")).toBe(true);
  });
});
