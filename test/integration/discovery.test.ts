// `$SRV` discovery of two node daemons over a real nats-server owned by this
// file: INFO lists the public subjects each node really serves, with their
// queue groups; a request on a queue subject is delivered once, answered once
// and counted once; STATS counts errors and the time until the answer.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, headers, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../actors/logger.js";
import { DEV_USERS } from "../../client/credentials.js";
import { parseConfig } from "../../daemon/config.js";
import { devNodeCredentials } from "../../daemon/credentials.js";
import { createNatsNode } from "../../daemon/daemon.js";
import { startTestNatsServer, type TestNatsServer } from "../support/natsServer.js";

interface EndpointInfo {
  name: string;
  subject: string;
  queue_group: string;
}
interface EndpointStats extends EndpointInfo {
  num_requests: number;
  num_errors: number;
  processing_time: number;
  last_error?: string;
  data?: { in_flight: number } | null;
}
interface ServiceAnswer<E> {
  id: string;
  metadata: { node: string; cluster: string };
  endpoints: E[];
}

let server: TestNatsServer;
let nc: NatsConnection;
const stateDir = mkdtempSync(join(tmpdir(), "dvs-discovery-"));
const nodes: ReturnType<typeof createNatsNode>[] = [];

const jsonHeaders = () => {
  const h = headers();
  h.set("Content-Type", "application/json");
  return h;
};

/** Every `dvsd` service's answer to `$SRV.<verb>.dvsd`, by node. */
async function ask<E>(verb: "INFO" | "STATS"): Promise<Map<string, ServiceAnswer<E>>> {
  const answers = new Map<string, ServiceAnswer<E>>();
  for await (const msg of await nc.requestMany(`$SRV.${verb}.dvsd`, "", {
    maxWait: 500,
    strategy: "timer",
  })) {
    const a = msg.json<ServiceAnswer<E>>();
    if (answers.has(a.metadata.node)) throw new Error(`node ${a.metadata.node} registered twice`);
    answers.set(a.metadata.node, a);
  }
  return answers;
}

async function coordinator(): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const who = await nc
      .request("dvs.dvs.dns.who", "", { headers: jsonHeaders(), timeout: 1_000 })
      .then((m) => m.json<{ type: string; coordinator?: number }>())
      .catch(() => undefined);
    if (who?.type === "OK" && who.coordinator !== undefined) return who.coordinator;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error("no coordinator");
}

const stat = (answers: Map<string, ServiceAnswer<EndpointStats>>, node: string, name: string) =>
  answers.get(node)?.endpoints.find((e) => e.name === name);

beforeAll(async () => {
  server = await startTestNatsServer();
  nc = await connect({ servers: server.url, ...DEV_USERS.admin });
  for (const node of [1, 2]) {
    const config = parseConfig({
      node,
      nats: { servers: [server.url], ...devNodeCredentials(node) },
      stateDir: join(stateDir, `n${node}`),
      log: { level: "silent" },
      files: { replicationFactor: 2 },
    });
    const n = createNatsNode(config, silentLogger).start();
    nodes.push(n);
    await n.running();
  }
}, 30_000);

afterAll(async () => {
  for (const n of nodes) await n.stop();
  await nc?.close();
  await server?.stop();
  rmSync(stateDir, { recursive: true, force: true });
});

describe("$SRV discovery of dvsd nodes", () => {
  it("lists the public subjects each node serves, and the file store's only at the coordinator", async () => {
    const c = String(await coordinator());
    // The coordinator registers again with the file store's endpoints once it takes them.
    let info = await ask<EndpointInfo>("INFO");
    for (let i = 0; i < 50 && !info.get(c)?.endpoints.some((e) => e.name === "file-commit"); i++) {
      await new Promise((r) => setTimeout(r, 100));
      info = await ask<EndpointInfo>("INFO");
    }
    expect([...info.keys()].sort()).toEqual(["1", "2"]);
    for (const [node, { endpoints }] of info) {
      const listed = endpoints.map((e) => [e.name, e.subject, e.queue_group]);
      const coordinating =
        node === c
          ? [
              ["file-commit", "dvs.dvs.file.commit", "dvsd"],
              ["file-update", "dvs.dvs.file.update", "dvsd"],
              ["file-ls", "dvs.dvs.file.ls", "dvsd"],
            ]
          : [];
      expect(listed.sort()).toEqual(
        [
          ["node-rqst", `dvs.dvs.node.${node}.rqst`, ""],
          ["ro-node-rqst", `dvs.dvs.ro.node.${node}.rqst`, ""],
          ["rqst", "dvs.dvs.rqst", "dvsd"],
          ["ro-rqst", "dvs.dvs.ro.rqst", "dvsd"],
          ["file-read", `dvs.dvs.file.read.${node}`, ""],
          ["dns-who", "dvs.dvs.dns.who", "dvsd"],
          ["dns-node-who", `dvs.dvs.dns.node.${node}.who`, ""],
          ["dns-failed", "dvs.dvs.dns.failed", "dvsd"],
          ...coordinating,
        ].sort(),
      );
    }
  });

  it("delivers, answers and counts each request on a queue subject once", async () => {
    const before = await ask<EndpointStats>("STATS");
    const count = (answers: Map<string, ServiceAnswer<EndpointStats>>) =>
      ["1", "2"].reduce((sum, n) => sum + (stat(answers, n, "rqst")?.num_requests ?? 0), 0);
    const requests = 20;
    for (let seq = 1; seq <= requests; seq++) {
      const rqst = { v: 1, type: "GETNODEINFO", src: "discovery-test", dst: 1, seq, params: {} };
      const replies: unknown[] = [];
      // Every answer that comes within 300 ms: a second subscriber would make a second one, or none.
      const it = await nc.requestMany("dvs.dvs.rqst", JSON.stringify(rqst), {
        headers: jsonHeaders(),
        maxWait: 300,
        strategy: "timer",
      });
      for await (const m of it) replies.push(m.json());
      expect(replies).toEqual([expect.objectContaining({ type: "GETNODEINFO", seq, rcode: 0 })]);
    }
    const after = await ask<EndpointStats>("STATS");
    expect(count(after) - count(before)).toBe(requests);
    for (const n of ["1", "2"]) {
      const e = stat(after, n, "rqst");
      expect(e?.num_errors).toBe(0);
      expect(e?.data).toEqual({ in_flight: 0 });
      if ((e?.num_requests ?? 0) > 0) expect(e?.processing_time).toBeGreaterThan(0);
    }
  });

  it("unlists the queue subjects of a node that left with DVSEND, under the same service id", async () => {
    const send = async (type: string, seq: number) => {
      const rqst = { v: 1, type, src: "discovery-test", dst: 2, seq, params: {} };
      const reply = await nc.request("dvs.dvs.node.2.rqst", JSON.stringify(rqst), {
        headers: jsonHeaders(),
        timeout: 5_000,
      });
      return reply.json<{ rcode: number }>().rcode;
    };
    expect(await send("DVSINIT", 1)).toBe(2);
    const before = (await ask<EndpointInfo>("INFO")).get("2");
    expect(before?.endpoints.map((e) => e.name)).toContain("rqst");
    expect(await send("DVSEND", 2)).toBe(0);
    const after = (await ask<EndpointInfo>("INFO")).get("2");
    expect(after?.id).toBe(before?.id);
    const names = after?.endpoints.map((e) => e.name) ?? [];
    expect(names).toContain("node-rqst");
    expect(names).not.toContain("rqst");
    expect(names).not.toContain("ro-rqst");
    const stats = (await ask<EndpointStats>("STATS")).get("2");
    expect(stats?.endpoints.map((e) => e.name).sort()).toEqual([...names].sort());
  });

  it("counts an error answer as an error, with its name", async () => {
    const before = stat(await ask<EndpointStats>("STATS"), "2", "node-rqst");
    const reply = await nc.request("dvs.dvs.node.2.rqst", "{not json", {
      headers: jsonHeaders(),
      timeout: 2_000,
    });
    expect(reply.json<{ rcode: number }>().rcode).toBe(-74);
    const after = stat(await ask<EndpointStats>("STATS"), "2", "node-rqst");
    expect(after?.num_requests).toBe((before?.num_requests ?? 0) + 1);
    expect(after?.num_errors).toBe((before?.num_errors ?? 0) + 1);
    expect(after?.last_error).toBe("EBADMSG");
  });
});
