// Access control over a real nats-server started from the shipped nats.conf:
// who may connect, which subjects each user may publish and subscribe to (one
// identity per node, each acting only as itself), and the node's own check
// that a viewer's request never changes anything (SPEC 6.5).
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../actors/logger.js";
import type { NodeRuntime } from "../../actors/node.js";
import { loadAdminSigner } from "../../client/adminKey.js";
import { type Credentials, DEV_USERS } from "../../client/credentials.js";
import { DvsClient } from "../../client/dvsClient.js";
import { generateAdminKey } from "../../daemon/adminKey.js";
import { parseConfig } from "../../daemon/config.js";
import { devNodeCredentials } from "../../daemon/credentials.js";
import { createNatsNode } from "../../daemon/daemon.js";
import { encode, parseRply } from "../../protocol/codec.js";
import { type Rply, rcode } from "../../protocol/messages.js";
import { AuthorizationError, PermissionDeniedError } from "../../transport/errors.js";
import { connectNats, type NatsTransport } from "../../transport/nats.js";
import { startTestNatsServer, type TestNatsServer } from "../support/natsServer.js";

let server: TestNatsServer;
let admin: NatsTransport;
let viewer: NatsTransport;
const nodes: NodeRuntime<NatsTransport>[] = [];
/** A JSON-only client (plain nats.js, JSON.parse, no CBOR) on the events' twins, from before the nodes start. */
let jsonWatcher: NatsConnection;
const jsonEvents: { subject: string; body: { node?: unknown; event?: unknown } }[] = [];
const stateDir = mkdtempSync(join(tmpdir(), "dvs-access-"));
const adminKey = generateAdminKey(stateDir);
const signer = loadAdminSigner(adminKey.seedFile);

beforeAll(async () => {
  server = await startTestNatsServer();
  jsonWatcher = await connectAs(DEV_USERS.viewer);
  jsonWatcher.subscribe("dvs.dvs.events.json.*", {
    callback: (error, msg) => {
      if (error !== null) return;
      try {
        jsonEvents.push({ subject: msg.subject, body: JSON.parse(msg.string()) });
      } catch {
        // Not JSON: the forged bodies of the publish checks below.
      }
    },
  });
  await jsonWatcher.flush();
  for (const id of [1, 2]) {
    const config = parseConfig({
      node: id,
      // Each node as itself: the development user node-<id> of nats.conf.
      nats: { servers: [server.url], ...devNodeCredentials(id) },
      adminKeys: [adminKey.publicKey],
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
  const client = new DvsClient(admin, { cluster: "dvs", clientId: "access", timeoutMs: 3_000, signer });
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const r = await client.request("GETNODEINFO", {}, { dst: "ALL" }).catch(() => undefined);
    if (Array.isArray(r?.data) && r.data.length === 2) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  for (const id of [1, 2]) expect((await client.request("DVSINIT", {}, { dst: id })).rcode).toBe(id);
}, 30_000);

afterAll(async () => {
  await admin?.close();
  await viewer?.close();
  await jsonWatcher?.close();
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
    const client = new DvsClient(admin, { cluster: "dvs", clientId: "a", timeoutMs: 3_000, signer });
    const reply = await client.request("KILL", { pid: target.pid, signal: "SIGTERM" }, { dst: 2 });
    expect(reply.rcode).toBe(0);
    expect(await exited).toBe("SIGTERM");
    // A pid means something on one host only.
    const all = await client.request("KILL", { pid: 999_999 }, { dst: "ALL" });
    expect(all.rcode).toBe(rcode("EINVAL"));
  });
});

describe("a JSON-only client", () => {
  it("sees the nodes' membership and COORDINATOR events on the JSON twins, with the viewer's credentials", async () => {
    const has = (event: string, node?: number) =>
      jsonEvents.some((e) => e.body.event === event && (node === undefined || e.body.node === node));
    const deadline = Date.now() + 10_000;
    while (!(has("JOIN", 1) && has("JOIN", 2) && has("COORDINATOR")) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect([has("JOIN", 1), has("JOIN", 2), has("COORDINATOR")]).toEqual([true, true, true]);
    for (const e of jsonEvents) expect(e.subject).toBe(`dvs.dvs.events.json.${e.body.node}`);
  });
});

/** A raw connection as `credentials`, with that user's own inbox prefix. */
function connectAs(credentials: Credentials): Promise<NatsConnection> {
  return connect({
    servers: server.url,
    ...credentials,
    inboxPrefix: `_INBOX.${credentials.user}`,
    name: `access-${credentials.user}`,
  });
}

/** Resolves with the error the server closed a subscription with, or undefined if it was not refused in time. */
async function subscriptionRefusal(nc: NatsConnection, subject: string): Promise<Error | undefined> {
  const sub = nc.subscribe(subject);
  await nc.flush();
  const closed = sub.closed.then((e) => (e instanceof Error ? e : undefined));
  const waited = new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 1_000));
  const refusal = await Promise.race([closed, waited]);
  if (!sub.isClosed()) sub.unsubscribe();
  return refusal;
}

let forgeries = 0;

/** Whether what `nc` publishes to `subject` reaches a subscriber (the server drops a refused publish). */
async function delivered(nc: NatsConnection, subject: string): Promise<boolean> {
  const watcher = await connectAs(DEV_USERS.admin);
  const token = `forged-${++forgeries}`;
  try {
    const sub = watcher.subscribe(subject);
    await watcher.flush();
    nc.publish(subject, token);
    await nc.flush();
    const got = (async () => {
      // The running nodes publish on these subjects too: only our own message counts.
      for await (const m of sub) if (m.string() === token) return true;
      return false;
    })();
    return await Promise.race([got, new Promise<boolean>((r) => setTimeout(() => r(false), 500))]);
  } finally {
    await watcher.close();
  }
}

describe("a node's credentials", () => {
  it("publish heartbeats and events only under the node's own id", async () => {
    const nc = await connectAs(devNodeCredentials(1));
    try {
      expect(await delivered(nc, "dvs.dvs._hb.1")).toBe(true);
      expect(await delivered(nc, "dvs.dvs.events.1")).toBe(true);
      expect(await delivered(nc, "dvs.dvs.events.json.1")).toBe(true);
      expect(await delivered(nc, "dvs.dvs._hb.2")).toBe(false);
      expect(await delivered(nc, "dvs.dvs.events.2")).toBe(false);
      expect(await delivered(nc, "dvs.dvs.events.json.2")).toBe(false);
      expect(await delivered(nc, "dvs.dvs.actions.2.01ABC.request")).toBe(false);
    } finally {
      await nc.close();
    }
  });

  it("may not send a request on the admin's subjects, nor another cluster's internal ones", async () => {
    const t = await connectNats({ servers: [server.url], name: "stolen-node", ...devNodeCredentials(1) });
    try {
      for (const subject of ["dvs.dvs.node.2.rqst", "dvs.dvs.rqst", "dvs.other._fwd.2", "dvs.other._mcast"]) {
        await expect(t.request(subject, new Uint8Array([0xa0]), { timeoutMs: 2_000 })).rejects.toBeInstanceOf(
          PermissionDeniedError,
        );
      }
    } finally {
      await t.close();
    }
  });

  it("may not purge, delete or reconfigure the cluster's streams, nor touch another cluster's", async () => {
    const nc = await connectAs(devNodeCredentials(1));
    try {
      const refused = [
        "$JS.API.STREAM.PURGE.DVS_ACTIONS_dvs",
        "$JS.API.STREAM.DELETE.DVS_ACTIONS_dvs",
        "$JS.API.STREAM.UPDATE.DVS_ACTIONS_dvs",
        "$JS.API.STREAM.MSG.DELETE.DVS_ACTIONS_dvs",
        "$JS.API.STREAM.PURGE.KV_DVS_REGISTRY_dvs",
        "$JS.API.STREAM.DELETE.KV_DVS_REGISTRY_dvs",
        "$JS.API.STREAM.UPDATE.KV_DVS_REGISTRY_dvs",
        "$JS.API.STREAM.MSG.DELETE.KV_DVS_REGISTRY_dvs",
        "$JS.API.CONSUMER.CREATE.DVS_ACTIONS_dvs",
        "$JS.API.STREAM.INFO.DVS_ACTIONS_other",
        "$JS.API.STREAM.CREATE.KV_DVS_REGISTRY_other",
        "$JS.API.STREAM.LIST",
        "$KV.DVS_REGISTRY_other.coordinator",
      ];
      for (const subject of refused) {
        const error = await nc.request(subject, "{}", { timeout: 2_000 }).then(
          () => undefined,
          (e: unknown) => e as Error & { cause?: Error },
        );
        // nats.js rejects the request with a RequestError whose cause is the server's refusal.
        expect([error?.name, error?.cause?.name], subject).toContain("PermissionViolationError");
      }
      // Reading its own cluster's stream is allowed: JetStream answers.
      const info = await nc.request("$JS.API.STREAM.INFO.KV_DVS_REGISTRY_dvs", "", { timeout: 2_000 });
      expect(info.json<{ config?: { name?: string } }>().config?.name).toBe("KV_DVS_REGISTRY_dvs");
    } finally {
      await nc.close();
    }
  });

  it("subscribe to what is addressed to the node only, and never to another user's inbox", async () => {
    const nc = await connectAs(devNodeCredentials(1));
    try {
      for (const subject of [
        "_INBOX.>",
        "_INBOX.admin.>",
        "_INBOX.node-2.x",
        "dvs.dvs.node.2.rqst",
        "dvs.dvs._fwd.2",
        "dvs.dvs._px.2",
        "dvs.dvs.actions.>",
        "dvs.>",
      ]) {
        expect(await subscriptionRefusal(nc, subject), subject).toMatchObject({
          name: "PermissionViolationError",
        });
      }
      expect(await subscriptionRefusal(nc, "_INBOX.node-1.mine")).toBeUndefined();
    } finally {
      await nc.close();
    }
  });
});

describe("a viewer's inbox", () => {
  it("is its own: the viewer may not subscribe to the inbox namespace or an admin's inbox", async () => {
    const nc = await connectAs(DEV_USERS.viewer);
    try {
      expect(await subscriptionRefusal(nc, "_INBOX.>")).toMatchObject({ name: "PermissionViolationError" });
      expect(await subscriptionRefusal(nc, "_INBOX.admin.>")).toMatchObject({
        name: "PermissionViolationError",
      });
      expect(await subscriptionRefusal(nc, "_INBOX.viewer.x")).toBeUndefined();
      expect(await subscriptionRefusal(nc, "dvs.dvs.events.*")).toBeUndefined();
      expect(await subscriptionRefusal(nc, "dvs.dvs.events.json.*")).toBeUndefined();
    } finally {
      await nc.close();
    }
  });
});
