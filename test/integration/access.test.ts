// Access control over a real nats-server started from the shipped nats.conf:
// who may connect, which subjects each user may publish to, and the node's own
// check that a viewer's request never changes anything (SPEC 6.5).
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../../actors/config.js";
import { DEV_USERS } from "../../actors/credentials.js";
import { createNatsNode } from "../../actors/daemon.js";
import { silentLogger } from "../../actors/logger.js";
import type { NodeRuntime } from "../../actors/node.js";
import { DvsClient } from "../../transport/client.js";
import { encode, parseRply } from "../../transport/codec.js";
import { AuthorizationError, PermissionDeniedError } from "../../transport/errors.js";
import { connectNats, type NatsTransport } from "../../transport/nats.js";
import { type Rply, rcode } from "../../transport/protocol.js";
import { startTestNatsServer, type TestNatsServer } from "../support/natsServer.js";

let server: TestNatsServer;
let admin: NatsTransport;
let viewer: NatsTransport;
const nodes: NodeRuntime<NatsTransport>[] = [];
const stateDir = mkdtempSync(join(tmpdir(), "dvs-access-"));

beforeAll(async () => {
  server = await startTestNatsServer();
  for (const id of [1, 2]) {
    const config = parseConfig({
      node: id,
      nats: { servers: [server.url], ...DEV_USERS.node },
      stateDir: join(stateDir, `n${id}`),
      log: { level: "silent" },
      membership: { heartbeatMs: 50 },
    });
    const node = createNatsNode(config, silentLogger).start();
    await node.running();
    nodes.push(node);
  }
  admin = await connectNats({ servers: [server.url], name: "access-admin", ...DEV_USERS.admin });
  viewer = await connectNats({ servers: [server.url], name: "access-viewer", ...DEV_USERS.viewer });
  // Both nodes in one view, so ALL requests reach both.
  const client = new DvsClient(admin, { cluster: "dvs", clientId: "access", timeoutMs: 3_000 });
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const r = await client.request("GETNODEINFO", {}, { dst: "ALL" }).catch(() => undefined);
    if (Array.isArray(r?.data) && r.data.length === 2) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const init = await client.request("DVSINIT", {}, { dst: "ALL" });
  expect(entries(init).map((e) => e.rcode)).toEqual([1, 2]);
}, 30_000);

afterAll(async () => {
  await admin?.close();
  await viewer?.close();
  await Promise.all(nodes.map((n) => n.stop()));
  await server?.stop();
});

function sleeper(): ChildProcess {
  return spawn("sleep", ["30"], { stdio: "ignore" });
}

function alive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

const entries = (r: Rply) => r.data as Rply[];

describe("who may connect", () => {
  it("refuses a connection without credentials", async () => {
    await expect(connectNats({ servers: [server.url], name: "anonymous" })).rejects.toBeInstanceOf(
      AuthorizationError,
    );
  });

  it("refuses a wrong password", async () => {
    await expect(
      connectNats({ servers: [server.url], name: "guess", user: "admin", pass: "admin" }),
    ).rejects.toBeInstanceOf(AuthorizationError);
  });
});

describe("a viewer", () => {
  it("reads through the read-only subjects", async () => {
    const client = new DvsClient(viewer, { cluster: "dvs", clientId: "v", role: "viewer", timeoutMs: 3_000 });
    const one = await client.request("GETNODEINFO", {}, { dst: 2 });
    expect(one.rcode).toBe(0);
    const all = await client.request("GETNODEINFO", {}, { dst: "ALL" });
    expect(entries(all).map((e) => [e.src, e.rcode])).toEqual([
      [1, 0],
      [2, 0],
    ]);
  });

  it("may not publish to the full request subjects, the multicast or the forward subject", async () => {
    for (const subject of ["dvs.dvs.node.1.rqst", "dvs.dvs.rqst", "dvs.dvs._mcast", "dvs.dvs._fwd.1"]) {
      await expect(
        viewer.request(subject, new Uint8Array([0xa0]), { timeoutMs: 2_000 }),
      ).rejects.toBeInstanceOf(PermissionDeniedError);
    }
  });

  it("gets EPERM for KILL on its node and on another, EPERM for a change sent to every node, and the process lives on", async () => {
    const target = sleeper();
    try {
      const client = new DvsClient(viewer, {
        cluster: "dvs",
        clientId: "v",
        role: "viewer",
        timeoutMs: 3_000,
      });
      const one = await client.request("KILL", { pid: target.pid }, { dst: 1 });
      expect(one.rcode).toBe(rcode("EPERM"));
      // Passed on to node 2 by node 1: the role travels with it.
      const forwarded = await client.request("KILL", { pid: target.pid }, { dst: 2, viaAnyNode: true });
      expect(forwarded.rcode).toBe(rcode("EPERM"));
      // Every member checks again: a viewer's change sent to ALL is EPERM on each.
      const all = await client.request("DCINIT", { dcid: 9, name: "nine" }, { dst: "ALL" });
      expect(entries(all).map((e) => e.rcode)).toEqual([rcode("EPERM"), rcode("EPERM")]);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(alive(target)).toBe(true);
    } finally {
      target.kill("SIGKILL");
    }
  });

  it("cannot claim the admin role in the request itself", async () => {
    const forged = {
      v: 1,
      type: "DCINIT",
      src: "v",
      dst: 1,
      seq: 1,
      role: "admin",
      params: { dcid: 7, name: "forged" },
    };
    const msg = await viewer.request("dvs.dvs.ro.node.1.rqst", encode(forged), { timeoutMs: 2_000 });
    const client = new DvsClient(admin, { cluster: "dvs", clientId: "a", timeoutMs: 3_000 });
    expect(msg.data.byteLength).toBeGreaterThan(0);
    const parsed = parseRply(msg.data, "cbor", admin.maxPayload);
    expect(parsed.ok && parsed.rply.rcode).toBe(rcode("EPERM"));
    // Nothing was created.
    const info = await client.request("GETDCINFO", { dcid: 7 }, { dst: 1 });
    expect(info.rcode).not.toBe(0);
  });
});

describe("an admin", () => {
  it("kills a process with KILL", async () => {
    const target = sleeper();
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      target.once("exit", (_c, s) => resolve(s)),
    );
    const client = new DvsClient(admin, { cluster: "dvs", clientId: "a", timeoutMs: 3_000 });
    const reply = await client.request("KILL", { pid: target.pid, signal: "SIGTERM" }, { dst: 2 });
    expect(reply.rcode).toBe(0);
    expect(await exited).toBe("SIGTERM");
    // A pid means something on one host only.
    const all = await client.request("KILL", { pid: 999_999 }, { dst: "ALL" });
    expect(all.rcode).toBe(rcode("EINVAL"));
  });
});
