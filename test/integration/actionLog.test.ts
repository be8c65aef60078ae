// The action log in JetStream over a real nats-server owned by this file: the
// contract, records written by something else, and survival of a kill -9 of
// the server (file storage; docs/operations.md has the sync policy).
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryActionLog } from "../../actors/actionLog.js";
import { actionStreamName, JetStreamActionLog } from "../../actors/actionLogJetStream.js";
import { DEV_USERS } from "../../actors/credentials.js";
import { startNatsServer } from "../../actors/natsServer.js";
import { natsConf, startTestNatsServer, type TestNatsServer } from "../support/natsServer.js";
import { actionLogContract } from "../unit/actionLogContract.js";

let server: TestNatsServer;
let nc: NatsConnection;
let run = 0;

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
  it("skips and counts records in its stream that are not records", async () => {
    const log = new JetStreamActionLog(nc, { cluster: "junk" });
    await log.append({ v: 1, kind: "reply", action: "J1", at: 1, node: 1, rcode: 0, count: 0, summary: "" });
    nc.publish("dvs.junk.actions.J1.request", "not json");
    nc.publish("dvs.junk.actions.J1.outcome", JSON.stringify({ kind: "outcome", action: "J1" }));
    await nc.flush();
    const records = await log.show("J1");
    expect(records.map((r) => r.kind)).toEqual(["reply"]);
    expect(log.skipped).toBe(2);
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
        const jsm = await (await import("@nats-io/jetstream")).jetstreamManager(c2);
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
