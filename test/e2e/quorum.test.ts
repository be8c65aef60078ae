// Quorum mode on real processes (SPEC 4, 5, 8; docs/protocol.md 9.5): three
// `dvsd run` nodes with membership.quorum on, each on its own server of a
// 3-server JetStream cluster whose routes go through TCP proxies. Server 3's
// routes are cut: node 3 marks itself minority and, through its server,
// refuses the file store's COMMIT and DCINIT with EROFS while it answers
// GETDVSINFO and a host request; once the routes are back, COMMIT through
// server 3 works again.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { monotonicFactory } from "ulid";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEV_USERS } from "../../client/credentials.js";
import { DvsClient } from "../../client/dvsClient.js";
import { bytesSource, FileClient } from "../../client/fileClient.js";
import { type NatsCluster, startNatsCluster } from "../../daemon/natsCluster.js";
import { FileStoreError } from "../../protocol/files.js";
import { NODE_FLAGS, rcode } from "../../protocol/messages.js";
import { subjects } from "../../protocol/subjects.js";
import { TEST_ADMIN } from "../../sim/testAdmin.js";
import { sleep, systemClock } from "../../transport/clock.js";
import { connectNats, type NatsTransport } from "../../transport/nats.js";
import { type RouteProxies, startRouteProxies } from "../chaos/routes.js";
import { requireBuild } from "../support/cli.js";
import { DvsdNode } from "../support/dvsdProcess.js";
import { EventWatch } from "../support/eventWatch.js";
import { natsConf } from "../support/natsServer.js";

const IDS = [1, 2, 3] as const;
const CUT_OFF = 3;
const dir = mkdtempSync(join(tmpdir(), "dvs-quorum-"));
let routes: RouteProxies;
let cluster: NatsCluster;
const nodes: DvsdNode[] = [];
/** Clients on server 3, node 3's side of the cut. */
let transport: NatsTransport;
let admin: DvsClient;
let files: FileClient;

beforeAll(async () => {
  requireBuild();
  routes = await startRouteProxies(IDS.length);
  cluster = await startNatsCluster({
    config: natsConf,
    servers: IDS.length,
    storeDir: join(dir, "nats"),
    clusterPorts: routes.clusterPorts,
    routeUrl: (from, to) => routes.routeUrl(from, to),
    hideClusterAddress: true,
  });
  for (const id of IDS) {
    const node = new DvsdNode({
      node: id,
      natsUrl: cluster.urls[id - 1] as string,
      dir,
      logFile: join(dir, `node-${id}.log`),
      config: {
        cluster: "dvs",
        // Each node keeps to its own server: a cut route cuts its nodes off.
        nats: { discover: false },
        log: { level: "warn" },
        membership: { quorum: true },
        actions: { replicas: 3 },
        election: { replicas: 3 },
        // Two of three keep committing while one server is cut off.
        files: { replicationFactor: 2 },
      },
    });
    nodes.push(node);
    node.start();
  }
  await using watch = await EventWatch.start(cluster.urls[0] as string, "dvs", { discover: false });
  await watch.converged([...IDS], 60_000);
  transport = await connectNats({
    servers: [cluster.urls[CUT_OFF - 1] as string],
    name: "e2e-quorum",
    ...DEV_USERS.admin,
    reconnectWaitMs: 100,
    discover: false,
  });
  admin = new DvsClient(transport, {
    cluster: "dvs",
    clientId: "e2e-quorum",
    timeoutMs: 10_000,
    signer: TEST_ADMIN,
  });
  const ulid = monotonicFactory();
  files = new FileClient({
    transport,
    subjects: subjects("dvs"),
    clock: systemClock,
    newCommitId: () => ulid(),
    requestTimeoutMs: 3_000,
    deadlineMs: 20_000,
  });
}, 120_000);

afterAll(async () => {
  await transport?.close();
  await Promise.all(nodes.map((n) => n.kill()));
  await cluster?.stop();
  await routes?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Node 3's GETNODEINFO flags, asked through server 3. */
async function flagsOf(node: number): Promise<number | undefined> {
  const rply = await admin.request("GETNODEINFO", {}, { dst: node }).catch(() => undefined);
  return rply?.rcode === 0 ? (rply.data as { flags: number }).flags : undefined;
}

/** Polls until `check` holds, or fails naming `what` after `timeoutMs`. */
async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs} ms`);
    await sleep(systemClock, 200);
  }
}

/** A COMMIT through server 3, retried while the cluster settles (no coordinator yet is EAGAIN until the deadline). */
async function commit(name: string, body: string) {
  return files.commit(name, bytesSource(new TextEncoder().encode(body)));
}

describe("quorum mode across a cut route", () => {
  it("a node cut off with a minority refuses COMMIT and DCINIT with EROFS, answers reads and host requests, and commits again after the heal", async () => {
    // The action log's stream may still be forming (EAGAIN: nothing was changed).
    let init = await admin.request("DVSINIT", { name: "lab" });
    const deadline = performance.now() + 30_000;
    while (init.rcode === rcode("EAGAIN") && performance.now() < deadline) {
      await sleep(systemClock, 250);
      init = await admin.request("DVSINIT", { name: "lab" });
    }
    expect(init.rcode, JSON.stringify(init)).toBe(0);
    expect(await commit("q.txt", "before")).toMatchObject({ type: "SUCCESS", version: 1 });

    routes.isolate(CUT_OFF);
    await until(
      "node 3 marking itself minority",
      async () => (((await flagsOf(CUT_OFF)) ?? 0) & NODE_FLAGS.minority) !== 0,
      30_000,
    );

    const refused = await commit("q.txt", "during").then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(FileStoreError);
    expect((refused as FileStoreError).code).toBe("EROFS");

    const dcinit = await admin.request("DCINIT", { dcid: 9, name: "cut" }, { dst: CUT_OFF });
    expect(dcinit.rcode).toBe(rcode("EROFS"));
    const info = await admin.request("GETDVSINFO", {}, { dst: CUT_OFF });
    expect(info).toMatchObject({ rcode: 0, data: { name: "lab" } });
    const vmstat = await admin.request("VMSTAT", {}, { dst: CUT_OFF });
    expect(vmstat.rcode).toBe(0);

    routes.restoreAll();
    await until(
      "node 3 back in a view of three, no longer a minority",
      async () => {
        const flags = await flagsOf(CUT_OFF);
        if (flags === undefined || flags & NODE_FLAGS.minority) return false;
        const status = await admin.request("GETNODEINFO", {}, { dst: CUT_OFF });
        return (status.data as { view?: readonly number[] }).view?.length === IDS.length;
      },
      60_000,
    );
    expect(await commit("q.txt", "after")).toMatchObject({ type: "SUCCESS", version: 2 });
  }, 180_000);
});
