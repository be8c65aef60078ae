// The action log in JetStream over a real nats-server owned by this file: the
// contract, records on subjects that name their author, records written by
// something else, a bounded read of a long log, a stream it never updates, and
// survival of a kill -9 of the server (file storage; docs/operations.md has
// the sync policy).
import { jetstream, jetstreamManager, StorageType } from "@nats-io/jetstream";
import { connect, type NatsConnection, nanos } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEV_USERS } from "../../client/credentials.js";
import { startNatsServer } from "../../daemon/natsServer.js";
import { type ActionRecord, MemoryActionLog } from "../../transport/actionLog.js";
import { actionStreamName, JetStreamActionLog } from "../../transport/actionLogJetStream.js";
import { actionLogContract } from "../contracts/actionLog/contract.js";
import { natsConf, startTestNatsServer, type TestNatsServer } from "../support/natsServer.js";

let server: TestNatsServer;
let nc: NatsConnection;
let run = 0;
/** Each stream reserves its size limit from the server's store: small ones, so several fit. */
const MB16 = 16 * 1024 * 1024;

beforeAll(async () => {
  server = await startTestNatsServer();
  nc = await connect({ servers: server.url, ...DEV_USERS.admin });
});
afterAll(async () => {
  await nc?.close();
  await server?.stop();
});

actionLogContract("JetStream", async () => {
  const prefix = `R${++run}x`;
  const log = new JetStreamActionLog(nc, { cluster: "contract" });
  return { log, id: (n) => `${prefix}${String(n).padStart(4, "0")}` };
});

describe("the JetStream action log", () => {
  const reply = (action: string, node: number, via: number): ActionRecord => ({
    v: 1,
    kind: "reply",
    action,
    at: 1,
    node,
    via,
    rcode: 0,
    count: 0,
    summary: "",
  });
  const request = (action: string, node: number, type = "KILL"): ActionRecord => ({
    v: 1,
    kind: "request",
    action,
    at: 1,
    node,
    role: "admin",
    src: "t",
    type,
    dst: 1,
    seq: 1,
    params: {},
  });
  const outcome = (action: string, node: number): ActionRecord => ({
    v: 1,
    kind: "outcome",
    action,
    at: 2,
    node,
    type: "KILL",
    dst: 1,
    rcode: 0,
    ok: 1,
    failed: 0,
    durationMs: 1,
  });

  it("stores each record on a subject that names the node that wrote it", async () => {
    const log = new JetStreamActionLog(nc, { cluster: "author", maxBytes: MB16 });
    await log.append(request("W1", 2));
    await log.append(reply("W1", 3, 2));
    await log.append(outcome("W1", 2));
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(actionStreamName("author"), { subjects_filter: ">" });
    expect(Object.keys(info.state.subjects ?? {}).sort()).toEqual([
      "dvs.author.actions.2.W1.outcome",
      "dvs.author.actions.2.W1.reply.3",
      "dvs.author.actions.2.W1.request",
    ]);
    expect(info.config.subjects).toEqual(["dvs.author.actions.>"]);
    // Found by its id alone, whichever node wrote it.
    expect((await log.show("W1")).map((r) => r.kind)).toEqual(["request", "reply", "outcome"]);
  });

  it("skips and reports records that are not records, or whose subject does not name their author", async () => {
    const log = new JetStreamActionLog(nc, { cluster: "junk", maxBytes: MB16 });
    await log.append(request("J1", 1));
    await log.append(reply("J1", 2, 1));
    const put = (key: string, body: unknown) =>
      nc.publish(`dvs.junk.actions.${key}`, typeof body === "string" ? body : JSON.stringify(body));
    put("1.J1.outcome", "not json");
    put("1.J1.reply.3", { kind: "reply", action: "J1" });
    // Node 3 (its credentials let it publish only under actions.3) forging node 1's records.
    put("3.J1.outcome", outcome("J1", 1));
    put("3.J1.reply.3", reply("J1", 3, 1));
    // A record whose subject names another action or replier than its body.
    put("1.J1.reply.4", reply("J1", 2, 1));
    // Node 3's own records for an action id node 1 logged first.
    put("3.J1.reply.3", reply("J1", 3, 3));
    await nc.flush();
    const records = await log.show("J1");
    expect(records.map((r) => (r.kind === "reply" ? `reply.${r.node}` : r.kind))).toEqual([
      "request",
      "reply.2",
    ]);
    expect(log.skips).toEqual({ invalid: 2, author: 2, subject: 1, conflict: 1 });
    expect(log.skipped).toBe(6);
    // A listing does not fail on them either: the unreadable outcome is no outcome.
    const reader = new JetStreamActionLog(nc, { cluster: "junk", maxBytes: MB16 });
    expect(await reader.list({ limit: 10 })).toEqual([{ request: request("J1", 1) }]);
    expect(reader.skips).toMatchObject({ invalid: 1, author: 1 });
  });

  it("lists the newest actions of a long log reading back from its end, not the whole log", async () => {
    const log = new JetStreamActionLog(nc, { cluster: "long", maxBytes: MB16 });
    await log.append(request("L0000", 1));
    const js = jetstream(nc);
    // Thousands of short records (what refused requests leave), written straight to the stream.
    const acks: Promise<unknown>[] = [];
    for (let n = 1; n < 3_000; n++) {
      const id = `L${String(n).padStart(4, "0")}`;
      const node = 1 + (n % 3);
      acks.push(js.publish(`dvs.long.actions.${node}.${id}.request`, JSON.stringify(request(id, node))));
      acks.push(js.publish(`dvs.long.actions.${node}.${id}.outcome`, JSON.stringify(outcome(id, node))));
    }
    await Promise.all(acks);
    const reader = new JetStreamActionLog(nc, { cluster: "long", maxBytes: MB16 });
    const newest = await reader.list({ limit: 20 });
    expect(newest.map((a) => a.request.action)).toEqual(
      Array.from({ length: 20 }, (_, i) => `L${String(2_980 + i).padStart(4, "0")}`),
    );
    expect(newest.every((a) => a.outcome?.node === a.request.node)).toBe(true);
    expect(reader.delivered).toBeLessThanOrEqual(1_000);
    // The oldest one still shows, found by its id alone.
    expect((await reader.show("L0000")).map((r) => r.kind)).toEqual(["request"]);
    const all = await reader.list({ limit: 10_000 });
    expect(all).toHaveLength(3_000);
    expect(all[0]?.request.action).toBe("L0000");
  }, 60_000);

  it("never updates, purges or deletes the stream: one with other limits is used as it is, with a warning", async () => {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({
      name: actionStreamName("limits"),
      subjects: ["dvs.limits.actions.>"],
      storage: StorageType.File,
      max_age: nanos(3_600_000),
      max_bytes: 10 * 1024 * 1024,
    });
    const calls: string[] = [];
    const spy = nc.subscribe("$JS.API.STREAM.>", {
      callback: (_, msg) => {
        if (/^\$JS\.API\.STREAM\.(UPDATE|PURGE|DELETE|MSG\.DELETE)\./.test(msg.subject))
          calls.push(msg.subject);
      },
    });
    const warnings: unknown[] = [];
    const log = new JetStreamActionLog(nc, {
      cluster: "limits",
      maxAgeMs: 86_400_000,
      maxBytes: MB16,
      logger: { warn: ((fields: unknown) => warnings.push(fields)) as never },
    });
    await log.append(request("U1", 1));
    await nc.flush();
    spy.unsubscribe();
    expect(calls).toEqual([]);
    const info = await jsm.streams.info(actionStreamName("limits"));
    expect(info.config).toMatchObject({ max_age: nanos(3_600_000), max_bytes: 10 * 1024 * 1024 });
    expect(warnings).toEqual([
      expect.objectContaining({
        differ: expect.objectContaining({ max_age: expect.anything(), max_bytes: expect.anything() }),
      }),
    ]);
    expect((await log.show("U1")).map((r) => r.kind)).toEqual(["request"]);
  });

  it("creates the stream with the configured retention and record size, and the admin applies changed limits", async () => {
    const log = new JetStreamActionLog(nc, {
      cluster: "retention",
      maxAgeMs: 2 * 86_400_000,
      maxBytes: MB16,
    });
    await log.append(request("R1", 1));
    expect(await log.reach()).toMatchObject({
      records: 1,
      firstSeq: 1,
      lastSeq: 1,
      firstAt: expect.any(Number),
      maxAgeMs: 2 * 86_400_000,
      maxBytes: MB16,
    });
    const jsm = await jetstreamManager(nc);
    expect((await jsm.streams.info(actionStreamName("retention"))).config).toMatchObject({
      max_msg_size: 128 * 1024,
    });
    // Changed in the config: nodes leave the stream as it is; the admin applies them.
    const changed = new JetStreamActionLog(nc, {
      cluster: "retention",
      maxAgeMs: 86_400_000,
      maxBytes: MB16 / 2,
    });
    const { before, after } = await changed.applyLimits();
    expect(before).toMatchObject({ max_age: nanos(2 * 86_400_000), max_bytes: MB16 });
    expect(after).toMatchObject({ max_age: nanos(86_400_000), max_bytes: MB16 / 2 });
    expect(await changed.reach()).toMatchObject({ maxAgeMs: 86_400_000, maxBytes: MB16 / 2, records: 1 });
  });

  it("keeps to a smaller max_msg_size an operator gave the stream: a record over it is refused by name, before publishing", async () => {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({
      name: actionStreamName("small"),
      subjects: ["dvs.small.actions.>"],
      storage: StorageType.File,
      max_bytes: MB16,
      max_msg_size: 2_048,
    });
    const log = new JetStreamActionLog(nc, { cluster: "small", maxBytes: MB16 });
    await log.append(request("M1", 1));
    const big: ActionRecord = { ...(reply("M1", 1, 1) as object), data: "z".repeat(4_000) } as ActionRecord;
    await expect(log.append(big)).rejects.toMatchObject({ name: "ActionRecordTooLargeError", limit: 2_048 });
    expect((await log.show("M1")).map((r) => r.kind)).toEqual(["request"]);
  });

  it("keeps every acknowledged record across a kill -9 of nats-server and its restart", async () => {
    // A server of its own, so the kill does not disturb the other tests.
    const { mkdtempSync, rmSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const dir = mkdtempSync(join(tmpdir(), "dvs-kill9-"));
    const first = await startNatsServer({ config: natsConf, port: 0, storeDir: dir });
    const port = first.port;
    const acknowledged = new MemoryActionLog();
    try {
      const c1 = await connect({ servers: first.url, ...DEV_USERS.admin });
      const log = new JetStreamActionLog(c1, { cluster: "k9" });
      const ids: string[] = [];
      for (let n = 0; n < 200; n++) {
        const id = `K${String(n).padStart(5, "0")}`;
        const record = {
          v: 1 as const,
          kind: "request" as const,
          action: id,
          at: n,
          node: 1,
          role: "admin" as const,
          src: "t",
          type: "KILL",
          dst: 1,
          seq: n,
          params: { pid: n + 2 },
        };
        await log.append(record); // acknowledged from here on
        await acknowledged.append(record);
        ids.push(id);
      }
      first.process.kill("SIGKILL");
      await new Promise((resolve) => first.process.once("exit", resolve));
      await c1.close().catch(() => {});

      const second = await startNatsServer({ config: natsConf, port, storeDir: dir });
      try {
        const c2 = await connect({ servers: second.url, ...DEV_USERS.admin });
        const after = new JetStreamActionLog(c2, { cluster: "k9" });
        const listed = await after.list({ limit: 1_000 });
        expect(listed.map((s) => s.request.action)).toEqual(ids);
        expect(listed).toEqual(await acknowledged.list({ limit: 1_000 }));
        const jsm = await jetstreamManager(c2);
        expect((await jsm.streams.info(actionStreamName("k9"))).config.storage).toBe("file");
        await c2.close();
      } finally {
        await second.stop();
      }
    } finally {
      await first.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
