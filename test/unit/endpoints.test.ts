// The node's public endpoints (actors/endpoints.ts) over the simulated network:
// listed while subscribed, each message counted once when its answer is sent
// (async work included), errors counted from the answer, and calls that are
// never answered counted as errors rather than kept for ever.
import { describe, expect, it } from "vitest";
import { Endpoints, publicEndpoints } from "../../actors/endpoints.js";
import { silentLogger } from "../../actors/logger.js";
import { RequestServer } from "../../actors/requestServer.js";
import { DvsClient } from "../../client/dvsClient.js";
import { subjects } from "../../protocol/subjects.js";
import { SimNetwork } from "../../transport/sim/index.js";

const spec = { name: "echo", subject: "dvs.dvs.echo", queue: "dvsd" };
const bytes = (s: string) => new TextEncoder().encode(s);

function setup(options: { maxPending?: number; abandonAfterMs?: number } = {}) {
  const network = new SimNetwork({ seed: 3, trace: false });
  const transport = network.connect("node-1");
  const endpoints = new Endpoints({ transport, clock: network.clock, ...options });
  const client = network.connect("tool");
  return { network, transport, endpoints, client };
}

describe("Endpoints", () => {
  it("lists an endpoint while it is subscribed and tells when the list changes", () => {
    const { endpoints } = setup();
    let changes = 0;
    endpoints.onChange(() => changes++);
    const a = endpoints.serve(spec, () => {});
    const b = endpoints.serve(spec, () => {});
    expect(endpoints.list()).toEqual([spec]);
    a.unsubscribe();
    a.unsubscribe();
    expect(endpoints.list()).toEqual([spec]);
    b.unsubscribe();
    expect(endpoints.list()).toEqual([]);
    expect(changes).toBe(2);
    expect(() => endpoints.serve({ ...spec, subject: "dvs.dvs.other" }, () => {})).toThrow(/already served/);
  });

  it("counts a request when its answer is sent, with the time it took, and an error answer as an error", async () => {
    const { network, transport, endpoints, client } = setup();
    endpoints.serve(spec, (msg) => {
      // Answered 40 ms later, as a gather would be.
      network.clock.setTimeout(() => {
        const text = new TextDecoder().decode(msg.data);
        endpoints.answered(msg.reply, text === "bad" ? "EBADMSG" : undefined);
        if (msg.reply) transport.publish(msg.reply, bytes("ok"));
      }, 40);
    });
    const stop = network.clock.autoRun();
    try {
      await client.request(spec.subject, bytes("good"), { timeoutMs: 1_000 });
      expect(endpoints.counters("echo")).toMatchObject({ requests: 1, errors: 0, inFlight: 0 });
      await client.request(spec.subject, bytes("bad"), { timeoutMs: 1_000 });
    } finally {
      stop();
    }
    const c = endpoints.counters("echo");
    expect(c).toMatchObject({ requests: 2, errors: 1, lastError: "EBADMSG", inFlight: 0 });
    expect(c.processingNs).toBeGreaterThanOrEqual(2 * 40 * 1e6);
  });

  it("counts a message without a reply subject once handled, and one with a foreign reply subject as an error", async () => {
    const { network, endpoints, client } = setup();
    let handled = 0;
    endpoints.serve(spec, () => handled++);
    client.publish(spec.subject, bytes("fire and forget"));
    client.publish(spec.subject, bytes("answer me elsewhere"), { reply: "$JS.API.STREAM.DELETE.X" });
    await network.clock.advance(100);
    expect(handled).toBe(2);
    expect(endpoints.counters("echo")).toMatchObject({
      requests: 2,
      errors: 1,
      lastError: "reply subject refused",
      inFlight: 0,
    });
  });

  it("counts a call never answered as an error once it is too old, or too many wait", async () => {
    const { network, endpoints, client } = setup({ abandonAfterMs: 1_000, maxPending: 3 });
    endpoints.serve(spec, () => {});
    for (let i = 0; i < 3; i++) client.publish(spec.subject, bytes("x"), { reply: `_INBOX.tool.${i}` });
    await network.clock.advance(100);
    expect(endpoints.counters("echo")).toMatchObject({ requests: 0, inFlight: 3 });
    // A fourth while three wait: the oldest goes.
    client.publish(spec.subject, bytes("x"), { reply: "_INBOX.tool.3" });
    await network.clock.advance(2_000);
    expect(endpoints.counters("echo")).toMatchObject({ requests: 1, errors: 1, lastError: "unanswered" });
    // Much later, one more arrival: the oldest waiting has outlived abandonAfterMs.
    client.publish(spec.subject, bytes("x"), { reply: "_INBOX.tool.4" });
    await network.clock.advance(100);
    expect(endpoints.counters("echo")).toMatchObject({ requests: 2, errors: 2, inFlight: 3 });
    // An answer to an expired call is ignored; one to a waiting call counts.
    endpoints.answered("_INBOX.tool.0");
    endpoints.answered("_INBOX.tool.4");
    expect(endpoints.counters("echo")).toMatchObject({ requests: 3, errors: 2, inFlight: 2 });
  });

  it("a request server serves its public subjects through them, and leaving the DVS unlists `rqst`", async () => {
    const network = new SimNetwork({ seed: 4, trace: false });
    const transport = network.connect("node-1");
    const endpoints = new Endpoints({ transport, clock: network.clock });
    const server = new RequestServer({
      node: 1,
      subjects: subjects("dvs"),
      transport,
      clock: network.clock,
      logger: silentLogger,
      handlers: { GETNODEINFO: () => ({ rcode: 0, data: { ok: true } }) },
      endpoints,
    });
    server.start();
    const specs = publicEndpoints(subjects("dvs"), 1);
    expect(endpoints.list()).toEqual([specs.nodeRqst, specs.roNodeRqst, specs.rqst, specs.roRqst]);
    const stop = network.clock.autoRun();
    try {
      const client = new DvsClient(network.connect("c"), { cluster: "dvs", clientId: "c" });
      await client.request("GETNODEINFO", {}, { dst: 1 });
      await client.request("GETDCINFO", { dcid: 0 }, { dst: 1 });
    } finally {
      stop();
    }
    expect(endpoints.counters("node-rqst")).toMatchObject({ requests: 2, errors: 1, lastError: "ENOSYS" });
    server.leaveCluster();
    expect(endpoints.list().map((e) => e.name)).toEqual(["node-rqst", "ro-node-rqst"]);
    server.stop();
    expect(endpoints.list()).toEqual([]);
  });
});
