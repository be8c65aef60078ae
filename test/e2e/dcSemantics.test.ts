// What the DC tables do to processes and members, with real processes: three
// `dvsd run` daemons on a nats-server of this file's own. DCEND with force ends
// the DC's running process (GETPROCINFO then answers ENOENT on every node), and
// a member killed with SIGKILL leaves the DC's node list on every survivor
// once `downAfter` has passed, as GETDCINFO shows.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEV_USERS } from "../../client/credentials.js";
import { DvsClient } from "../../client/dvsClient.js";
import { type Rply, rcode } from "../../protocol/messages.js";
import { TEST_ADMIN } from "../../sim/testAdmin.js";
import { NatsTransport } from "../../transport/nats.js";
import { requireBuild } from "../support/cli.js";
import { type DvsdNode, startDvsdNodes } from "../support/dvsdProcess.js";
import { startTestNatsServer, type TestNatsServer } from "../support/natsServer.js";

const NODES = [1, 2, 3] as const;
/** Short, so the killed member is declared gone quickly. */
const DOWN_AFTER_MS = 1_500;
const dir = mkdtempSync(join(tmpdir(), "dvs-dc-semantics-"));
let server: TestNatsServer;
let nodes: DvsdNode[] = [];
let nc: NatsConnection;
let client: DvsClient;

const entries = (rply: Rply) => [...(rply.data as Rply[])].sort((a, b) => Number(a.src) - Number(b.src));

/** Polls `check` until it holds, failing after `timeoutMs` with what it last saw. */
async function eventually<T>(
  what: string,
  probe: () => Promise<T>,
  ok: (seen: T) => boolean,
  timeoutMs = 15_000,
) {
  const deadline = Date.now() + timeoutMs;
  let seen = await probe();
  while (!ok(seen)) {
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(seen)}`);
    await new Promise((r) => setTimeout(r, 200));
    seen = await probe();
  }
  return seen;
}

beforeAll(async () => {
  requireBuild();
  server = await startTestNatsServer();
  nodes = await startDvsdNodes(NODES, {
    dir,
    natsUrl: server.url,
    config: { log: { level: "info" }, membership: { downAfterMs: DOWN_AFTER_MS } },
  });
  nc = await connect({ servers: server.url, name: "e2e-dc-semantics", ...DEV_USERS.admin });
  client = new DvsClient(new NatsTransport(nc, { name: "e2e-dc-semantics" }), {
    cluster: "dvs",
    clientId: "e2e-dc",
    timeoutMs: 10_000,
    signer: TEST_ADMIN,
  });
  const init = await client.request("DVSINIT", {}, { dst: 1, gatherTimeoutMs: 5_000 });
  expect(init.rcode).toBe(1);
  for (const dst of [2, 3]) expect((await client.request("DVSINIT", {}, { dst })).rcode).toBe(dst);
}, 60_000);

afterAll(async () => {
  await nc?.close();
  await Promise.all(nodes.map((n) => n.kill()));
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("DC semantics with real dvsd processes", () => {
  it("DCEND with force ends the DC's running process: GETPROCINFO answers ENOENT on every node", async () => {
    expect((await client.request("DCINIT", { dcid: 7, nodes: [1, 2, 3] })).rcode).toBe(0);
    const spawned = await client.request("SPAWN", { dcid: 7, endpoint: 3, machine: "counter" }, { dst: 2 });
    expect(spawned).toMatchObject({ rcode: 3, data: { nodeid: 2 } });
    // Every node has heard where it runs once GETPROCINFO answers through each.
    for (const dst of NODES)
      await eventually(
        `node ${dst} to locate the process`,
        () => client.request("GETPROCINFO", { dcid: 7, endpoint: 3 }, { dst }),
        (r) => r.rcode === 0,
      );

    const busy = await client.request("DCEND", { dcid: 7 });
    expect(entries(busy).map((e) => e.rcode)).toEqual([rcode("EBUSY"), rcode("EBUSY"), rcode("EBUSY")]);

    const ended = await client.request("DCEND", { dcid: 7, force: true });
    expect(ended.rcode).toBe(0);
    expect(entries(ended).map((e) => e.data)).toEqual([
      { dcid: 7, ended: [] },
      { dcid: 7, ended: [3] },
      { dcid: 7, ended: [] },
    ]);
    for (const dst of NODES) {
      await eventually(
        `GETPROCINFO on node ${dst} to answer ENOENT`,
        () => client.request("GETPROCINFO", { dcid: 7, endpoint: 3 }, { dst }),
        (r) => r.rcode === rcode("ENOENT"),
      );
      const sent = await client.request("SEND", { dcid: 7, endpoint: 3, body: { type: "inc" } }, { dst });
      expect(sent.rcode).toBe(rcode("ENOENT"));
    }
  }, 60_000);

  it("a member killed with SIGKILL leaves the DC on every survivor after downAfter", async () => {
    expect((await client.request("DCINIT", { dcid: 8, nodes: [1, 2, 3] })).rcode).toBe(0);
    const killed = nodes[2] as DvsdNode;
    const killedAt = Date.now();
    await killed.kill();
    for (const dst of [1, 2]) {
      const rply = await eventually(
        `node ${dst} to take node 3 out of DC 8`,
        () => client.request("GETDCINFO", { dcid: 8 }, { dst }),
        (r) => r.rcode === 0 && !(r.data as { nodes: number[] }).nodes.includes(3),
        DOWN_AFTER_MS + 15_000,
      );
      expect(rply.data).toMatchObject({
        nodes: [1, 2],
        nr_nodes: 2,
        departed: [{ nodeid: 3, cause: expect.any(String) }],
      });
      // Not before the survivors declared it gone.
      expect(Date.now() - killedAt).toBeGreaterThanOrEqual(DOWN_AFTER_MS);
    }
    // The survivors logged the change.
    for (const n of nodes.slice(0, 2)) expect(n.output()).toContain("out of their DCs until they rejoin");
  }, 60_000);
});
