// The adversarial suite (docs/security.md): every attack of issue 18, against a
// real `dvsd up` cluster in its default configuration (real nats-server, three
// real dvsd processes), as the holder of the development viewer password and as
// the thief of one node's credentials. Each test asserts the harm did not happen.
import { spawn } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { Encoder } from "cbor-x";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { ADMIN_KEY_FILE, loadAdminSigner } from "../../client/adminKey.js";
import { DEV_USERS } from "../../client/credentials.js";
import { DvsClient } from "../../client/dvsClient.js";
import { decode, encode } from "../../protocol/codec.js";
import { PROTOCOL_VERSION, type Rply, rcode } from "../../protocol/messages.js";
import { connectNats, type NatsTransport } from "../../transport/nats.js";
import { isAlive, type Spawned, startLocalCluster } from "../support/cli.js";
import { adminKeyEnv, dvsctlRunner } from "../support/dvsctl.js";

const CLUSTER = "dvs";
const ACTIONS = `DVS_ACTIONS_${CLUSTER}`;
const REGISTRY = `DVS_REGISTRY_${CLUSTER}`;

let cluster: { up: Spawned; port: number; url: string; data: string };
/** Raw NATS connections, as an attacker's own tool would open them. */
let adminNc: NatsConnection;
let viewerNc: NatsConnection;
let stolenNc: NatsConnection;
let admin: DvsClient;
let adminTransport: NatsTransport;
let viewerTransport: NatsTransport;
let viewer: DvsClient;
const { dvsctl } = dvsctlRunner(() => ({ DVS_NATS: cluster.url, ...adminKeyEnv(cluster.data) }));

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The credentials `dvsd up` gave node `id`, read from its config file as a thief on that host would. */
function stolenCredentials(id: number): { user: string; pass: string } {
  const dir = join(cluster.data, "config");
  const file = readdirSync(dir).find((f) => f.startsWith(`node-${id}.`));
  if (!file) throw new Error(`no config file for node ${id} in ${dir}`);
  const config = parseYaml(readFileSync(join(dir, file), "utf8")) as {
    nats?: { user?: string; pass?: string; passFile?: string };
  };
  const nats = config.nats ?? {};
  const pass = nats.pass ?? (nats.passFile ? readFileSync(nats.passFile, "utf8").trim() : undefined);
  if (!nats.user || !pass) throw new Error(`node ${id}'s config names no user and password: ${file}`);
  return { user: nats.user, pass };
}

async function actionRecords(): Promise<number> {
  const jsm = await jetstreamManager(adminNc);
  return (await jsm.streams.info(ACTIONS)).state.messages;
}

async function actionBytes(): Promise<number> {
  const jsm = await jetstreamManager(adminNc);
  return (await jsm.streams.info(ACTIONS)).state.bytes;
}

/** WHO, as any client asks it: the coordinator and its epoch, or undefined for NOTHING. */
async function who(): Promise<{ coordinator: number; epoch: number } | undefined> {
  const msg = await adminNc.request(`dvs.${CLUSTER}.dns.who`, encode({ v: PROTOCOL_VERSION, type: "WHO" }), {
    timeout: 2_000,
  });
  const decoded = decode(msg.data, "cbor");
  const answer = decoded.ok
    ? (decoded.value as { type: string; coordinator?: number; epoch?: number })
    : undefined;
  return answer?.type === "OK"
    ? { coordinator: answer.coordinator ?? -1, epoch: answer.epoch ?? -1 }
    : undefined;
}

async function waitForCoordinator(timeoutMs = 15_000): Promise<{ coordinator: number; epoch: number }> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    const answer = await who().catch((e: unknown) => {
      last = e;
      return undefined;
    });
    if (answer) return answer;
    await sleep(100);
  }
  throw new Error(`no coordinator within ${timeoutMs} ms`, { cause: last });
}

/** Every member of every node's view, from `_status` (what `dvsctl members` reads). */
async function views(): Promise<number[][]> {
  const got: number[][] = [];
  const inbox = `_INBOX.admin.views${Date.now()}`;
  const sub = adminNc.subscribe(inbox, {
    callback: (_, msg) => {
      const decoded = decode(msg.data, "cbor");
      const status = decoded.ok ? (decoded.value as { view?: { members?: number[] } }) : undefined;
      got.push([...(status?.view?.members ?? [])].sort((a, b) => a - b));
    },
  });
  adminNc.publish(`dvs.${CLUSTER}._status`, new Uint8Array(), { reply: inbox });
  await sleep(800);
  sub.unsubscribe();
  return got;
}

const rqst = (type: string, params: unknown, dst: number | "ALL" = 1) => ({
  v: PROTOCOL_VERSION,
  type,
  src: "attacker",
  dst,
  seq: 1,
  params,
});

beforeAll(async () => {
  cluster = await startLocalCluster(3);
  adminNc = await connect({ servers: cluster.url, ...DEV_USERS.admin, inboxPrefix: "_INBOX.admin" });
  viewerNc = await connect({ servers: cluster.url, ...DEV_USERS.viewer, inboxPrefix: "_INBOX.viewer" });
  stolenNc = await connect({ servers: cluster.url, ...stolenCredentials(1), inboxPrefix: "_INBOX.node-1" });
  adminTransport = await connectNats({ servers: [cluster.url], name: "attack-admin", ...DEV_USERS.admin });
  viewerTransport = await connectNats({ servers: [cluster.url], name: "attack-viewer", ...DEV_USERS.viewer });
  admin = new DvsClient(adminTransport, {
    cluster: CLUSTER,
    clientId: "suite",
    timeoutMs: 10_000,
    signer: loadAdminSigner(join(cluster.data, ADMIN_KEY_FILE)),
  });
  viewer = new DvsClient(viewerTransport, {
    cluster: CLUSTER,
    clientId: "viewer",
    role: "viewer",
    timeoutMs: 10_000,
  });
  // Something in the action log to lose: one admin action on every node.
  const dc = await admin.request("DCINIT", { dcid: 7, name: "lab", nodes: [1, 2, 3] }, { dst: "ALL" });
  expect(dc.rcode).toBe(0);
  await waitForCoordinator();
}, 90_000);

afterAll(async () => {
  await Promise.allSettled([adminNc?.close(), viewerNc?.close(), stolenNc?.close()]);
  await Promise.allSettled([adminTransport?.close(), viewerTransport?.close()]);
  if (cluster) {
    cluster.up.child.kill("SIGINT");
    await cluster.up.exited(30_000).catch(() => cluster.up.child.kill("SIGKILL"));
  }
}, 40_000);

describe("as the viewer", () => {
  it("a reply subject aimed at the JetStream API purges and deletes nothing in the action log", async () => {
    const before = await actionRecords();
    expect(before).toBeGreaterThan(0);
    viewerNc.publish("$SRV.PING.dvsd", "", { reply: `$JS.API.STREAM.PURGE.${ACTIONS}` });
    viewerNc.publish("$SRV.INFO", "", { reply: `$JS.API.STREAM.PURGE.${ACTIONS}` });
    for (const subject of [`dvs.${CLUSTER}.ro.node.1.rqst`, `dvs.${CLUSTER}.ro.rqst`])
      viewerNc.publish(subject, encode(rqst("GETDVSINFO", {})), {
        reply: `$JS.API.STREAM.MSG.DELETE.${ACTIONS}`,
      });
    viewerNc.publish(`dvs.${CLUSTER}._status`, "", { reply: `$JS.API.STREAM.DELETE.${ACTIONS}` });
    await viewerNc.flush();
    await sleep(1_500);
    expect(await actionRecords()).toBeGreaterThanOrEqual(before);
  });

  it("a reply subject aimed at an action's record writes nothing into the log", async () => {
    const before = await actionRecords();
    for (const node of [1, 2, 3])
      viewerNc.publish(`dvs.${CLUSTER}.ro.node.${node}.rqst`, encode(rqst("GETNODEINFO", {}, node)), {
        reply: `dvs.${CLUSTER}.actions.${node}.01JFORGEDFORGEDFORGEDFORGED.outcome`,
      });
    await viewerNc.flush();
    await sleep(1_000);
    expect(await actionRecords()).toBe(before);
  });

  it("a reply subject aimed at the coordinator record leaves the election working", async () => {
    const before = await waitForCoordinator();
    const key = `$KV.${REGISTRY}.coordinator`;
    for (const subject of [
      `dvs.${CLUSTER}.dns.who`,
      `dvs.${CLUSTER}.ro.rqst`,
      `dvs.${CLUSTER}._status`,
      "$SRV.PING",
    ])
      viewerNc.publish(subject, subject.endsWith("rqst") ? encode(rqst("GETDVSINFO", {})) : "", {
        reply: key,
      });
    await viewerNc.flush();
    await sleep(1_500);
    const after = await waitForCoordinator(5_000);
    expect(after.epoch).toBe(before.epoch);
    expect(after.coordinator).toBe(before.coordinator);
  });

  it("a reply subject aimed at a file's catalog key leaves the file committed and readable", async () => {
    const file = join(cluster.data, "attack.bin");
    writeFileSync(file, "the bytes of a committed file\n");
    const committed = await dvsctl("file", "commit", "attack.bin", file);
    expect(committed.code, committed.output).toBe(0);
    const key = `$KV.${REGISTRY}.file.${Buffer.from("attack.bin").toString("base64url")}`;
    viewerNc.publish(`dvs.${CLUSTER}.file.ls`, encode({ v: PROTOCOL_VERSION }), { reply: key });
    viewerNc.publish(`dvs.${CLUSTER}.ro.rqst`, encode(rqst("GETDVSINFO", {})), { reply: key });
    await viewerNc.flush();
    await sleep(1_500);
    const ls = await dvsctl("file", "ls");
    expect(ls.output).toContain("attack.bin");
    const out = join(cluster.data, "attack.out");
    const update = await dvsctl("file", "update", "attack.bin", "-o", out);
    expect(update.code, update.output).toBe(0);
    expect(readFileSync(out, "utf8")).toBe("the bytes of a committed file\n");
  });

  it("subscribing to every inbox is refused: an admin's replies never reach the viewer", async () => {
    const snooped: string[] = [];
    const errors: unknown[] = [];
    for (const subject of ["_INBOX.>", "_INBOX.admin.>", "_INBOX.node-1.>"]) {
      const sub = viewerNc.subscribe(subject, {
        callback: (err, msg) => {
          if (err) errors.push(err);
          else snooped.push(msg.subject);
        },
      });
      void sub.closed.catch((e: unknown) => errors.push(e));
    }
    await viewerNc.flush().catch(() => {});
    const ps = await admin.request("PS", {}, { dst: "ALL" });
    expect(ps.rcode).toBe(0);
    await admin.request("GETDVSINFO", {}, { dst: 2 });
    await sleep(500);
    expect(snooped).toEqual([]);
  });

  it("refused requests are logged without their params: a flood of large SPAWNs barely grows the log", async () => {
    const bytesBefore = await actionBytes();
    const input = "x".repeat(200 * 1024);
    const replies = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        viewer.request(
          "SPAWN",
          { dcid: 7, machine: "counter", input: { pad: input, i } },
          { dst: 1 + (i % 3) },
        ),
      ),
    );
    const refused = replies.filter((r) => r.rcode === rcode("EPERM") || r.rcode === rcode("EAGAIN"));
    expect(refused.length).toBe(replies.length);
    const grown = (await actionBytes()) - bytesBefore;
    // Each refusal is logged (short), so the log did grow: the requests reached the nodes.
    expect(grown).toBeGreaterThan(0);
    // 40 requests of 200 KiB each would be 8 MB; each refused record is a few hundred bytes.
    expect(grown).toBeLessThan(40 * 4_096);
  });

  it("a read flood to ALL does not move the coordinator", async () => {
    const before = await waitForCoordinator();
    // PIDSTAT is left out: it reads /proc for every process of the host, and on a
    // CI machine running other suites at once that alone can starve the nodes'
    // event loops past a lease (docs/operations.md, "Host requests").
    const replies = await Promise.all(
      Array.from({ length: 64 }, (_, i) =>
        viewer.request(i % 2 === 0 ? "GETNODEINFO" : "PS", {}, { dst: "ALL" }).catch((e: unknown) => e),
      ),
    );
    expect(replies.length).toBe(64);
    await sleep(1_000);
    const after = await waitForCoordinator(5_000);
    expect(after).toEqual(before);
  }, 60_000);
});

describe("with one node's stolen credentials", () => {
  it("the node credentials may not publish to another node's admin subject, and a forwarded KILL is refused", async () => {
    const victim = spawn("sleep", ["120"], { stdio: "ignore" });
    const pid = victim.pid as number;
    try {
      await expect(
        stolenNc.request(`dvs.${CLUSTER}.node.2.rqst`, encode({ ...rqst("KILL", { pid }, 2) }), {
          timeout: 2_000,
        }),
      ).rejects.toThrow();
      for (const subject of [`dvs.${CLUSTER}._fwd.2`, `dvs.${CLUSTER}._mcast`]) {
        const reply = await stolenNc.request(
          subject,
          encode({ ...rqst("KILL", { pid }, 2), role: "admin" }),
          {
            timeout: 3_000,
          },
        );
        const decoded = decode(reply.data, "cbor");
        expect(decoded.ok && (decoded.value as Rply).rcode).toBe(rcode("EPERM"));
      }
      await sleep(300);
      expect(isAlive(pid)).toBe(true);
    } finally {
      victim.kill("SIGKILL");
    }
  });

  it("the node credentials may not write another node's action records nor touch the stream", async () => {
    const before = await actionRecords();
    const forged = { kind: "request", action: "01JFORGED0000000000000000", node: 2, type: "KILL", at: 0 };
    for (const subject of [
      `dvs.${CLUSTER}.actions.2.01JFORGED0000000000000000.request`,
      `$JS.API.STREAM.PURGE.${ACTIONS}`,
      `$JS.API.STREAM.MSG.DELETE.${ACTIONS}`,
      `$JS.API.STREAM.DELETE.${ACTIONS}`,
      `$JS.API.STREAM.UPDATE.${ACTIONS}`,
    ])
      await expect(
        stolenNc.request(subject, JSON.stringify(subject.startsWith("$JS") ? { seq: 1 } : forged), {
          timeout: 2_000,
        }),
      ).rejects.toThrow();
    expect(await actionRecords()).toBe(before);
  });

  it("a forged heartbeat of another node is refused by the server and evicts nobody", async () => {
    const forged = {
      v: PROTOCOL_VERSION,
      node: 2,
      incarnation: 2 ** 40,
      seq: 1,
      view: { id: 1, size: 1, first: 2, digest: 0 },
      down: [],
    };
    const errors: unknown[] = [];
    stolenNc.publish(`dvs.${CLUSTER}._hb.2`, encode(forged));
    // Its own subject with another node's body: the nodes check the subject names the body's node.
    stolenNc.publish(`dvs.${CLUSTER}._hb.1`, encode(forged));
    await stolenNc.flush().catch((e: unknown) => errors.push(e));
    await sleep(2_000);
    const seen = await views();
    expect(seen.length).toBe(3);
    for (const members of seen) expect(members).toEqual([1, 2, 3]);
  });
});

describe("the small walls", () => {
  it("KILL of a thread of a node's daemon is EPERM and the node lives on", async () => {
    const status = await admin.request("GETNODEINFO", {}, { dst: 3 });
    const pid = (status.data as { pid?: number } | null)?.pid ?? nodePid(3);
    const threads = readdirSync(`/proc/${pid}/task`)
      .map(Number)
      .filter((t) => t !== pid);
    expect(threads.length).toBeGreaterThan(0);
    const reply = await admin.request("KILL", { pid: threads[0], signal: "SIGKILL" }, { dst: 3 });
    expect(reply.rcode).toBe(rcode("EPERM"));
    await sleep(300);
    expect(isAlive(pid)).toBe(true);
  });

  it("a SPAWN whose CBOR input is cyclic is answered EBADMSG", async () => {
    const cyclic: Record<string, unknown> = { name: "loop" };
    cyclic.self = cyclic;
    const bytes = new Encoder({ structuredClone: true }).encode(
      rqst("SPAWN", { dcid: 7, machine: "counter", input: cyclic }, 1),
    );
    const reply = await adminNc.request(`dvs.${CLUSTER}.node.1.rqst`, bytes, { timeout: 3_000 });
    const decoded = decode(reply.data, "cbor");
    expect(decoded.ok && (decoded.value as Rply).rcode).toBe(rcode("EBADMSG"));
  });
});

/** Node `id`'s daemon pid, from `_status`, when GETNODEINFO does not report it. */
function nodePid(id: number): number {
  const output = cluster.up.output();
  const m = new RegExp(`node ${id}\\D+pid (\\d+)`).exec(output);
  if (!m) throw new Error(`no pid of node ${id} in dvsd up's output:\n${output}`);
  return Number(m[1]);
}
