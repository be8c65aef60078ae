// nats-server's DISCONNECT advisory under the shipped, least-privilege nats.conf:
// the system account exports each account's own advisories, the cluster's
// account imports them, node users may read them, the viewer may not, and
// nobody but the server may publish them. Then the node runtime: a node whose
// connection closes is probed at once by the others, long before its missed
// heartbeats would have said anything.
import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../actors/logger.js";
import type { NodeRuntime } from "../../actors/node.js";
import { DEV_USERS } from "../../client/credentials.js";
import { parseConfig } from "../../daemon/config.js";
import { devNodeCredentials } from "../../daemon/credentials.js";
import { createNatsNode } from "../../daemon/daemon.js";
import {
  DISCONNECT_ADVISORIES,
  type DisconnectAdvisory,
  disconnectAdvisorySubject,
  nodeClientName,
  nodeOfClientName,
  parseDisconnectAdvisory,
} from "../../protocol/advisories.js";
import { PermissionDeniedError } from "../../transport/errors.js";
import { connectNats, type NatsTransport } from "../../transport/nats.js";
import { about, both, EventWatch, named } from "../support/eventWatch.js";
import { repoRoot, startTestNatsServer, type TestNatsServer } from "../support/natsServer.js";

let server: TestNatsServer;
const open: NatsTransport[] = [];
const stateDir = mkdtempSync(join(tmpdir(), "dvs-advisory-"));

beforeAll(async () => {
  server = await startTestNatsServer();
});
afterAll(async () => {
  await Promise.all(open.map((t) => t.close()));
  await server?.stop();
});

async function connectAs(
  credentials: { user: string; pass: string },
  name: string,
  onHandlerError?: (error: unknown) => void,
): Promise<NatsTransport> {
  const transport = await connectNats({
    servers: [server.url],
    name,
    ...credentials,
    ...(onHandlerError ? { onHandlerError } : {}),
  });
  open.push(transport);
  return transport;
}

/** The advisories `transport` receives, parsed, and a way to wait for one. */
function advisories(transport: NatsTransport) {
  const seen: DisconnectAdvisory[] = [];
  const waiters = new Set<() => void>();
  transport.subscribe(DISCONNECT_ADVISORIES, (msg) => {
    const advisory = parseDisconnectAdvisory(msg.data);
    if (advisory) seen.push(advisory);
    for (const w of waiters) w();
  });
  const naming = (name: string, timeoutMs = 5_000) =>
    new Promise<DisconnectAdvisory>((resolve, reject) => {
      const check = () => {
        const found = seen.find((a) => a.client.name === name);
        if (!found) return;
        waiters.delete(check);
        clearTimeout(timer);
        resolve(found);
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`no DISCONNECT advisory naming ${name} within ${timeoutMs} ms`));
      }, timeoutMs);
      waiters.add(check);
      check();
    });
  return { seen, naming };
}

/** A separate process connected as node `node` under its dvsd client name, ready to be SIGKILLed. */
async function nodeProcess(node: number) {
  const { user, pass } = devNodeCredentials(node);
  const script = `
    const { connect } = await import("@nats-io/transport-node");
    const nc = await connect(${JSON.stringify({ servers: server.url, user, pass, name: nodeClientName("dvs", node), inboxPrefix: `_INBOX.${user}` })});
    await nc.flush();
    process.stdout.write("connected\\n");
    setInterval(() => {}, 60_000);`;
  const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
    cwd: repoRoot,
    stdio: ["ignore", "pipe", "inherit"],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout?.once("data", () => resolve());
    child.once("exit", (code) => reject(new Error(`the node process exited with ${code}`)));
  });
  return child;
}

describe("the DISCONNECT advisory under nats.conf", () => {
  it("reaches a node user the moment another node's process is killed, naming that node", async () => {
    const one = await connectAs(devNodeCredentials(1), nodeClientName("dvs", 1));
    const watcher = advisories(one);
    await one.flush();
    const child = await nodeProcess(2);
    child.kill("SIGKILL");
    const advisory = await watcher.naming(nodeClientName("dvs", 2));
    expect(advisory.client).toMatchObject({ acc: "DVS", user: "node-2" });
    expect(advisory.reason).toBe("Client Closed");
    expect(nodeOfClientName("dvs", advisory.client.name ?? "")).toBe(2);
  });

  it("is refused to the viewer, without closing its connection", async () => {
    const errors: unknown[] = [];
    const viewer = await connectAs(DEV_USERS.viewer, "advisory-viewer", (error) => errors.push(error));
    viewer.subscribe(DISCONNECT_ADVISORIES, () => {});
    await viewer.flush();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(PermissionDeniedError);
    expect(errors[0]).toMatchObject({ subject: DISCONNECT_ADVISORIES, operation: "subscribe" });
    expect(viewer.status).toBe("connected");
  });

  it("may be published by nobody but the server: not a node, not the viewer, not the admin", async () => {
    const users = [
      await connectAs(devNodeCredentials(3), nodeClientName("dvs", 3)),
      await connectAs(DEV_USERS.viewer, "advisory-forger-viewer"),
      await connectAs(DEV_USERS.admin, "advisory-forger-admin"),
    ];
    for (const user of users) {
      await expect(
        user.request(disconnectAdvisorySubject("DVS"), new Uint8Array([0x7b, 0x7d]), { timeoutMs: 2_000 }),
        user.name,
      ).rejects.toBeInstanceOf(PermissionDeniedError);
    }
    // The admin is refused only the advisories: JetStream, for one, still answers it.
    const admin = users[2] as NatsTransport;
    const info = await admin.request("$JS.API.INFO", new Uint8Array(), { timeoutMs: 2_000 });
    expect(JSON.parse(new TextDecoder().decode(info.data))).not.toHaveProperty("error");
  });
});

describe("a node whose connection closes", () => {
  const nodes: NodeRuntime<NatsTransport>[] = [];
  afterAll(async () => {
    // Node 2 has ended already, its connection closed under it.
    const running = nodes.filter((n) => n.actor.getSnapshot().status !== "done");
    await Promise.all(running.map((n) => n.stop()));
  });

  it("is probed by the others at once, not after its heartbeats are late", async () => {
    // Heartbeats every 2 s: no peer probes a silent node before 2.5 s of silence.
    const heartbeatMs = 2_000;
    for (const id of [1, 2]) {
      const config = parseConfig({
        node: id,
        nats: { servers: [server.url], ...devNodeCredentials(id) },
        stateDir: join(stateDir, `n${id}`),
        log: { level: "silent" },
        membership: { heartbeatMs },
        election: { enabled: false },
      });
      nodes.push(createNatsNode(config, silentLogger).start());
    }
    await Promise.all(nodes.map((n) => n.running()));
    await using watch = await EventWatch.start(server.url);
    await watch.converged([1, 2]);

    // Close node 2's connection just after one of its heartbeats, as a killed
    // process's socket is closed: no leave announcement, only the server knows.
    const admin = await connectAs(DEV_USERS.admin, "advisory-heartbeats");
    const from = watch.mark();
    await new Promise<void>((resolve) => {
      const sub = admin.subscribe("dvs.dvs._hb.2", () => {
        sub.unsubscribe();
        void nodes[1]?.transport?.connection.close();
        resolve();
      });
    });
    const [partition] = (
      await watch.fromEach([1], both(named("PARTITION"), about(2)), "node 1 partitioned from node 2", {
        from,
        timeoutMs: heartbeatMs,
      })
    ).values();
    expect(partition?.cause).toMatch(/no responders/);
  });
});
