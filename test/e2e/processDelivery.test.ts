// Process messages across a cut NATS link, with real processes: three `dvsd
// run` daemons on a nats-server of this file's own, node 3 (the host of a
// kvCell process) through a TCP proxy the test cuts silently for 10 s (as a
// pulled cable: nobody learns of it but by timeouts). A numbered
// sequence of SENDs goes through node 2 before, during and after the cut.
// Every SEND answered OK is delivered exactly once (its key is in the cell and
// the cell's version counts one set per key); every SEND not delivered was
// answered with an error; node 2's proxy resent what the cut lost and gave up
// nothing (the cut is shorter than the give-up).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ProcUsr } from "../../actors/processes/procInfo.js";
import type { ProxyStats } from "../../actors/processes/proxy.js";
import { DEV_USERS } from "../../client/credentials.js";
import { DvsClient } from "../../client/dvsClient.js";
import type { Rply } from "../../protocol/messages.js";
import { TEST_ADMIN } from "../../sim/testAdmin.js";
import { NatsTransport } from "../../transport/nats.js";
import { requireBuild } from "../support/cli.js";
import { DvsdNode } from "../support/dvsdProcess.js";
import { EventWatch } from "../support/eventWatch.js";
import { startTestNatsServer, type TestNatsServer } from "../support/natsServer.js";
import { startTcpProxy, type TcpProxy } from "../support/tcpProxy.js";

const NODES = [1, 2, 3] as const;
const HOST = 3;
const VIA = 2;
const DCID = 5;
const ENDPOINT = 4;
const CUT_MS = 10_000;
/** Short, so the view changes during the cut (SENDs then answer EHOSTDOWN) and merges soon after. */
const DOWN_AFTER_MS = 3_000;
const dir = mkdtempSync(join(tmpdir(), "dvs-process-delivery-"));
let server: TestNatsServer;
let proxy: TcpProxy;
const nodes: DvsdNode[] = [];
let nc: NatsConnection;
let client: DvsClient;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function eventually<T>(
  what: string,
  probe: () => Promise<T>,
  ok: (seen: T) => boolean,
  timeoutMs = 30_000,
) {
  const deadline = Date.now() + timeoutMs;
  let seen = await probe();
  while (!ok(seen)) {
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(seen)}`);
    await sleep(250);
    seen = await probe();
  }
  return seen;
}

beforeAll(async () => {
  requireBuild();
  server = await startTestNatsServer();
  proxy = await startTcpProxy(server.port);
  for (const node of NODES) {
    const n = new DvsdNode({
      node,
      dir,
      natsUrl: node === HOST ? proxy.url : server.url,
      config: { log: { level: "warn" }, membership: { downAfterMs: DOWN_AFTER_MS } },
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
  nc = await connect({ servers: server.url, name: "e2e-process-delivery", ...DEV_USERS.admin });
  client = new DvsClient(new NatsTransport(nc, { name: "e2e-process-delivery" }), {
    cluster: "dvs",
    clientId: "e2e-delivery",
    // Longer than the cut: a SEND taken before it is answered once its message is acknowledged.
    timeoutMs: 45_000,
    signer: TEST_ADMIN,
  });
  expect((await client.request("DVSINIT", {}, { dst: 1, gatherTimeoutMs: 5_000 })).rcode).toBe(1);
  for (const dst of [2, 3]) expect((await client.request("DVSINIT", {}, { dst })).rcode).toBe(dst);
  expect((await client.request("DCINIT", { dcid: DCID, nodes: [...NODES] })).rcode).toBe(0);
}, 60_000);

afterAll(async () => {
  await nc?.close();
  await Promise.all(nodes.map((n) => n.kill()));
  await proxy?.close();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("process messages across a cut link, with real dvsd processes", () => {
  it("delivers every SEND answered OK exactly once, and answers the others with an error", async () => {
    const spawned = await client.request(
      "SPAWN",
      { dcid: DCID, endpoint: ENDPOINT, machine: "kvCell" },
      { dst: HOST },
    );
    expect(spawned).toMatchObject({ rcode: ENDPOINT, data: { nodeid: HOST } });
    await eventually(
      `node ${VIA} to locate the process`,
      () => client.request("GETPROCINFO", { dcid: DCID, endpoint: ENDPOINT }, { dst: VIA }),
      (r) => r.rcode === 0,
    );

    const sends: { n: number; phase: string; reply: Promise<Rply | "timeout"> }[] = [];
    let n = 0;
    const sendFor = async (phase: string, ms: number) => {
      const until = Date.now() + ms;
      while (Date.now() < until) {
        n++;
        const body = { type: "set", key: `k${n}`, value: n };
        sends.push({
          n,
          phase,
          reply: client
            .request("SEND", { dcid: DCID, endpoint: ENDPOINT, body }, { dst: VIA })
            .catch(() => "timeout" as const),
        });
        await sleep(150);
      }
    };
    await sendFor("before", 1_000);
    // A silent cut: node 3 and the server keep their sockets, and nothing gets through either way.
    proxy.blackhole();
    const cutAt = Date.now();
    await sendFor("during", 4_000);
    await sleep(Math.max(0, CUT_MS - (Date.now() - cutAt)));
    proxy.restore();
    // After the merge, SENDs through node 2 reach node 3 again.
    await eventually(
      "a SEND through node 2 to succeed after the cut",
      () =>
        client.request(
          "SEND",
          { dcid: DCID, endpoint: ENDPOINT, body: { type: "get", key: "k1" } },
          { dst: VIA },
        ),
      (r) => r.rcode === 0,
      45_000,
    );
    await sendFor("after", 1_000);

    const answered = await Promise.all(sends.map(async (s) => ({ ...s, reply: await s.reply })));
    const ok = answered.filter((s) => s.reply !== "timeout" && s.reply.rcode === 0).map((s) => s.n);
    // Some SENDs taken during the cut waited for it to end and were acknowledged then.
    expect(answered.filter((s) => s.phase === "during" && ok.includes(s.n)).length).toBeGreaterThan(0);
    for (const s of answered) {
      if (!ok.includes(s.n)) expect(s.reply === "timeout" || s.reply.rcode < 0, `SEND #${s.n}`).toBe(true);
    }

    const proc = (
      await eventually(
        "the cell to have taken every message",
        () => client.request("GETPROCINFO", { dcid: DCID, endpoint: ENDPOINT }, { dst: 1 }),
        (r) => r.rcode === 0 && (r.data as ProcUsr).pending === 0,
      )
    ).data as ProcUsr;
    const cell = proc.context as { entries: Record<string, number>; version: number };
    for (const k of ok) expect(cell.entries[`k${k}`], `SEND #${k} answered OK`).toBe(k);
    // One set per key: nothing was delivered twice.
    expect(cell.version).toBe(Object.keys(cell.entries).length);
    expect(proc).toMatchObject({ nodeid: HOST, gaps: 0 });

    const pair = (await client.request("GETPROXYSTS", { nodeid: HOST }, { dst: VIA })).data as ProxyStats[];
    expect(pair[0]?.sent.resent).toBeGreaterThan(0);
    expect(pair[0]?.sent.gaveUp).toBe(0);
  }, 120_000);
});
