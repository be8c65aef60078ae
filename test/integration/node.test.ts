// A node daemon's runtime over a real nats-server owned by this file.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, headers, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../actors/logger.js";
import { DEV_USERS } from "../../client/credentials.js";
import { discoverNodes } from "../../client/discovery.js";
import { parseConfig } from "../../daemon/config.js";
import { devNodeCredentials } from "../../daemon/credentials.js";
import { createNatsNode } from "../../daemon/daemon.js";
import { decode, encode } from "../../protocol/codec.js";
import { rcode, rplySchema } from "../../protocol/messages.js";
import { startTestNatsServer, type TestNatsServer } from "../support/natsServer.js";

let server: TestNatsServer;
let nc: NatsConnection;
const stateDir = mkdtempSync(join(tmpdir(), "dvs-node-"));

beforeAll(async () => {
  server = await startTestNatsServer();
  nc = await connect({ servers: server.url, ...DEV_USERS.admin });
});
afterAll(async () => {
  await nc?.close();
  await server?.stop();
});

const jsonHeaders = () => {
  const h = headers();
  h.set("Content-Type", "application/json");
  return h;
};

function config(node: number) {
  return parseConfig({
    node,
    nats: { servers: [server.url], ...devNodeCredentials(node) },
    stateDir: join(stateDir, `n${node}`),
    log: { level: "silent" },
  });
}

describe("node daemon over NATS", () => {
  it("registers as a micro service, answers requests, rejects bad input, and deregisters on stop", async () => {
    const node = createNatsNode(config(1), silentLogger).start();
    await node.running();

    const found = await discoverNodes(nc, "dvs", 500);
    expect(found.map((n) => [n.node, n.incarnation])).toEqual([[1, node.identity.incarnation]]);

    // Garbage params in JSON get a JSON EBADMSG reply.
    const bad = await nc.request(
      "dvs.dvs.node.1.rqst",
      JSON.stringify({
        v: 1,
        type: "DCINIT",
        src: "test",
        dst: 1,
        seq: 9,
        params: { dcid: "zzz", junk: [1] },
      }),
      { timeout: 2_000, headers: jsonHeaders() },
    );
    expect(bad.headers?.get("Content-Type")).toBe("application/json");
    const badReply = rplySchema.parse(JSON.parse(bad.string()));
    expect(badReply).toMatchObject({ rcode: rcode("EBADMSG"), seq: 9, src: 1, dst: "test", type: "DCINIT" });

    // Undecodable CBOR gets a CBOR EBADMSG reply.
    const junk = await nc.request("dvs.dvs.node.1.rqst", new Uint8Array([0xff, 0xfe, 0x00]), {
      timeout: 2_000,
    });
    const junkReply = decode(junk.data, "cbor");
    expect(junkReply.ok && rplySchema.parse(junkReply.value).rcode).toBe(rcode("EBADMSG"));

    // A flood of bad input, with and without reply subjects, leaves the node serving.
    for (let i = 0; i < 500; i++) nc.publish("dvs.dvs.node.1.rqst", new Uint8Array([i & 0xff, 0x9f]));
    await nc.flush();
    const good = await nc.request(
      "dvs.dvs.rqst",
      encode({ v: 1, type: "GETDVSINFO", src: "test", dst: "ALL", seq: 10, params: {} }),
      { timeout: 2_000 },
    );
    const goodReply = decode(good.data, "cbor");
    // An ALL request, gathered from the view (just node 1), before DVSINIT.
    expect(goodReply.ok && rplySchema.parse(goodReply.value)).toMatchObject({
      rcode: rcode("ENOTINIT"),
      seq: 10,
      src: 1,
      count: 1,
      data: [{ src: 1, seq: 10, rcode: rcode("ENOTINIT") }],
    });

    await node.stop("test");
    expect(node.actor.getSnapshot().status).toBe("done");
    expect(await discoverNodes(nc, "dvs", 300)).toEqual([]);
  });

  it("starts as a new incarnation each time it restarts, keeping its DVS and DC tables", async () => {
    const ask = async (type: string, params: object) => {
      const msg = await nc.request(
        "dvs.dvs.node.2.rqst",
        encode({ v: 1, type, src: "test", dst: 2, seq: 1, params }),
        { timeout: 2_000 },
      );
      const decoded = decode(msg.data, "cbor");
      return rplySchema.parse(decoded.ok ? decoded.value : undefined);
    };
    const first = createNatsNode(config(2), silentLogger).start();
    await first.running();
    expect((await ask("DVSINIT", { name: "kept" })).rcode).toBe(2);
    expect((await ask("DCINIT", { dcid: 4, nodes: [2] })).rcode).toBe(4);
    expect((await ask("ADDNODE", { dcid: 4, nodeid: 5 })).rcode).toBe(0);
    await first.stop();
    const second = createNatsNode(config(2), silentLogger).start();
    await second.running();
    expect(second.identity.incarnation).toBeGreaterThan(first.identity.incarnation);
    expect(await ask("GETDVSINFO", {})).toMatchObject({ rcode: 0, data: { name: "kept" } });
    expect(await ask("GETDCINFO", { dcid: 4 })).toMatchObject({ rcode: 0, data: { nodes: [2, 5] } });
    await second.stop();
  });

  it("fails to start with a ConnectError naming the server when NATS is not there", async () => {
    const c = parseConfig({
      node: 3,
      nats: { servers: ["nats://127.0.0.1:1"], connectTimeoutMs: 500 },
      stateDir: join(stateDir, "n3"),
      log: { level: "silent" },
    });
    const node = createNatsNode(c, silentLogger).start();
    await expect(node.running()).rejects.toMatchObject({ name: "ConnectError" });
    expect(await node.ended()).toBe("start failed");
  });
});
