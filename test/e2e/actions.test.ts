// The action log end to end (SPEC 6.4): real `dvsd run` nodes and dvsctl on a
// nats-server of this file's own. Every action dvsctl was answered for is
// still listed by `dvsctl actions` after a kill -9 of nats-server and its
// restart on the same store; `dvsctl actions show` of an ALL request gives
// each node's address (as that node states it), 0/1 result and whole data;
// the cluster's own events are listed; the listing says how far back it reaches.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type NatsServer, startNatsServer } from "../../daemon/natsServer.js";
import { rcode } from "../../protocol/messages.js";
import { testAdminKeyEnv } from "../../sim/testAdmin.js";
import type { ActionSummary, EventRecord, ReplyRecord } from "../../transport/actionLog.js";
import { requireBuild } from "../support/cli.js";
import { dvsctlRunner } from "../support/dvsctl.js";
import { DvsdNode } from "../support/dvsdProcess.js";
import { EventWatch } from "../support/eventWatch.js";
import { natsConf } from "../support/natsServer.js";

const NODES = [1, 2];
/** Each node states its own address (config `address`): one an IP, one a host name. */
const ADDRESS: Record<number, string> = { 1: "192.0.2.1", 2: "node2.example.test" };
const dir = mkdtempSync(join(tmpdir(), "dvs-actions-"));
const storeDir = join(dir, "nats");
const nodes: DvsdNode[] = [];
let server: NatsServer;

const adminKey = testAdminKeyEnv(dir);
const { dvsctl } = dvsctlRunner(() => ({ DVS_NATS: server.url, ...adminKey }));

/** Runs dvsctl and returns the action id it reported (on stderr). */
async function action(...args: string[]): Promise<{ code: number | null; id: string }> {
  const { code, output } = await dvsctl(...args);
  const id = /^action ([0-9A-Z]{26}) /m.exec(output)?.[1];
  if (id === undefined) throw new Error(`dvsctl ${args.join(" ")} reported no action id:\n${output}`);
  return { code, id };
}

async function listed(): Promise<ActionSummary[]> {
  const { code, output } = await dvsctl("--json", "actions", "--limit", "1000");
  expect(code, output).toBe(0);
  return output
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as ActionSummary);
}

beforeAll(async () => {
  requireBuild();
  server = await startNatsServer({ config: natsConf, port: 0, storeDir });
  for (const node of NODES) {
    const n = new DvsdNode({
      dir,
      natsUrl: server.url,
      node,
      config: { log: { level: "warn" }, address: ADDRESS[node] },
    });
    nodes.push(n);
    n.start();
  }
  const watch = await EventWatch.start(server.url);
  try {
    await watch.converged(NODES, 20_000);
  } finally {
    await watch.close();
  }
}, 40_000);

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.kill()));
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("the action log through dvsctl", () => {
  it("keeps every answered action across a kill -9 of nats-server", async () => {
    const answered: { id: string; type: string; rcode: number }[] = [];
    const init = await action("init");
    expect(init.code).toBe(0);
    answered.push({ id: init.id, type: "DVSINIT", rcode: 0 });
    for (let dc = 1; dc <= 4; dc++) {
      const made = await action("dc", "init", String(dc), "--nodes", "1,2");
      expect(made.code).toBe(0);
      answered.push({ id: made.id, type: "DCINIT", rcode: 0 });
    }
    const info = await action("info", "--node", "2");
    answered.push({ id: info.id, type: "GETDVSINFO", rcode: 0 });
    // A viewer's attempt to end a DC is refused, and logged as such.
    const refused = await action("--user", "viewer", "dc", "end", "1", "--node", "1");
    expect(refused.code).toBe(1);
    answered.push({ id: refused.id, type: "DCEND", rcode: rcode("EPERM") });

    const before = await listed();
    expect(before.map((a) => a.request.action)).toEqual(answered.map((a) => a.id));
    // The refused request is logged short: the refusal and the size of its params, not the params.
    const short = before.find((a) => a.request.action === refused.id)?.request;
    expect(short).toMatchObject({
      role: "viewer",
      type: "DCEND",
      refused: "EPERM",
      paramsBytes: expect.any(Number),
    });
    expect(short).not.toHaveProperty("params");

    server.process.kill("SIGKILL");
    await new Promise((resolve) => server.process.once("exit", resolve));
    server = await startNatsServer({ config: natsConf, port: server.port, storeDir });

    const after = await listed();
    expect(after).toEqual(before);
    expect(after.map((a) => [a.request.action, a.request.type, a.outcome?.error ?? "ok"])).toEqual(
      answered.map((a) => [a.id, a.type, a.rcode < 0 ? "EPERM" : "ok"]),
    );

    // The nodes reconnect and log new actions in the same stream.
    let again: { code: number | null; id: string } | undefined;
    for (let tries = 0; tries < 30 && again?.code !== 0; tries++) {
      again = await action("info", "--node", "1").catch(() => undefined);
      if (again?.code !== 0) await new Promise((resolve) => setTimeout(resolve, 500));
    }
    expect(again?.code).toBe(0);
    const latest = await listed();
    expect(latest.at(-1)?.request.action).toBe(again?.id);
    expect(latest).toHaveLength(answered.length + 1);
  }, 90_000);

  it("shows each node's address, 0/1 result and whole data of an ALL request", async () => {
    const ps = await action("ps", "--node", "all", "--limit", "50");
    expect(ps.code).toBe(0);
    const { code, output } = await dvsctl("--json", "actions", "show", ps.id);
    expect(code, output).toBe(0);
    const replies = output
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as ReplyRecord)
      .filter((r) => r.kind === "reply")
      .sort((a, b) => a.node - b.node);
    expect(replies.map((r) => [r.node, r.addr, r.ok, r.rcode >= 0])).toEqual([
      [1, ADDRESS[1], 1, true],
      [2, ADDRESS[2], 1, true],
    ]);
    for (const r of replies) {
      // The whole PS table, far past the old 256-character summary.
      expect(r.truncated).toBe(false);
      expect(Array.isArray(r.data)).toBe(true);
      expect(JSON.stringify(r.data).length).toBeGreaterThan(256);
      expect(r.dataBytes).toBe(Buffer.byteLength(JSON.stringify(r.data)));
    }
    const human = await dvsctl("actions", "show", ps.id);
    expect(human.code, human.output).toBe(0);
    expect(human.output).toContain(`node 1 at ${ADDRESS[1]}: result 1`);
    expect(human.output).toContain(`node 2 at ${ADDRESS[2]}: result 1`);
  }, 30_000);

  it("lists the cluster's own events and says how far back the log reaches", async () => {
    const { code, output } = await dvsctl("--json", "actions", "--events", "--limit", "100");
    expect(code, output).toBe(0);
    const events = output
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as EventRecord);
    expect(events.map((e) => e.type)).toContain("COORDINATOR");
    const joined = events.filter((e) => e.type === "JOIN" || e.type === "MERGE");
    expect(joined.at(-1)).toMatchObject({ node: 1, addr: ADDRESS[1], view: { members: NODES } });
    expect(output).toMatch(/the action log reaches back to \d{4}-\d\d-\d\dT.* \(sequence 1 of \d+/);
    const human = await dvsctl("actions", "--limit", "3");
    expect(human.output).toMatch(/the action log reaches back to .*keeps 90 days, 1024 MiB/);
  }, 30_000);

  it("shows one action's records", async () => {
    const { id } = await action("info");
    const { code, output } = await dvsctl("--json", "actions", "show", id);
    expect(code, output).toBe(0);
    const kinds = output
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => {
        const r = JSON.parse(l) as { kind: string; node: number };
        return r.kind === "reply" ? `reply.${r.node}` : r.kind;
      });
    expect(kinds).toEqual(["request", "reply.1", "reply.2", "outcome"]);
    expect((await dvsctl("actions", "show", "NOPE0")).code).toBe(1);
    expect((await dvsctl("actions", "show", "no.such")).code).toBe(2);
  }, 30_000);
});
