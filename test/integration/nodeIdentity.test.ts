// A node that logs in with its own nkey, as docs/deploy.md sets it up: the
// server knows only its public key, the node reads its replies under
// `_INBOX.node-<id>`, and nothing it does in normal work is a permission
// violation in the server's log.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../actors/logger.js";
import type { NodeRuntime } from "../../actors/node.js";
import { DEV_USERS } from "../../client/credentials.js";
import { discoverNodes } from "../../client/discovery.js";
import { DvsClient } from "../../client/dvsClient.js";
import { parseConfig } from "../../daemon/config.js";
import { createNatsNode } from "../../daemon/daemon.js";
import { nodeKeyFiles, renderNatsConfig } from "../../daemon/natsAccounts.js";
import { type NatsServer, startNatsServer } from "../../daemon/natsServer.js";
import { connectNats, type NatsTransport } from "../../transport/nats.js";

const dir = mkdtempSync(join(tmpdir(), "dvs-identity-"));
const log = join(dir, "nats-server.log");
let server: NatsServer;
let admin: NatsTransport;
let node: NodeRuntime<NatsTransport>;

beforeAll(async () => {
  const keys = nodeKeyFiles(join(dir, "keys"), [1]);
  const config = join(dir, "nats.conf");
  writeFileSync(
    config,
    renderNatsConfig({
      cluster: "dvs",
      nodes: keys.accounts,
      admin: { password: DEV_USERS.admin.pass },
      viewer: { password: DEV_USERS.viewer.pass },
      sys: { password: "sys" },
    }),
  );
  server = await startNatsServer({ config, port: 0, storeDir: join(dir, "store"), extraArgs: ["-l", log] });
  node = createNatsNode(
    parseConfig({
      node: 1,
      nats: { servers: [server.url], nkeySeedFile: join(dir, "keys", "node-1.nk") },
      stateDir: join(dir, "n1"),
      log: { level: "silent" },
    }),
    silentLogger,
  ).start();
  await node.running();
  admin = await connectNats({ servers: [server.url], name: "identity-admin", ...DEV_USERS.admin });
}, 30_000);

afterAll(async () => {
  await admin?.close();
  await node?.stop();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("a node logged in by its own nkey", () => {
  it("is found, answers requests and elects itself, with no permission violation on the server", async () => {
    expect((await discoverNodes(admin.connection, "dvs", 500)).map((n) => n.node)).toEqual([1]);
    const client = new DvsClient(admin, { cluster: "dvs", clientId: "identity", timeoutMs: 3_000 });
    expect((await client.request("DVSINIT", {}, { dst: 1 })).rcode).toBe(1);
    expect((await client.request("GETNODEINFO", {}, { dst: 1 })).rcode).toBe(0);
    // The registry (KV create, watch, compare-and-set) works within the node's permissions.
    const deadline = Date.now() + 10_000;
    while (node.election?.state().role !== "coordinator" && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(node.election?.state().role).toBe("coordinator");
    expect(readFileSync(log, "utf8")).not.toMatch(/Violation/);
  }, 20_000);
});
