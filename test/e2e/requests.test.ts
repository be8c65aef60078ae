// ALL requests (SPEC 3.1, 5, 10) across real `dvsd` processes: the aggregated
// reply holds one entry per member of the view, comes back as soon as the
// last member answered, names a member that stays silent with ETIMEDOUT at the
// request's timeout, and one that leaves the view during the gather with
// EHOSTDOWN. A member is silenced with SIGSTOP, which keeps its NATS
// connection open: nothing but the membership's heartbeats can tell it is gone.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_KEY_FILE, loadAdminSigner } from "../../client/adminKey.js";
import { DEV_USERS } from "../../client/credentials.js";
import { discoverNodes } from "../../client/discovery.js";
import { DvsClient } from "../../client/dvsClient.js";
import type { AdminSigner } from "../../protocol/adminSignature.js";
import { decode, encode } from "../../protocol/codec.js";
import {
  ALL,
  PROTOCOL_VERSION,
  type RequestType,
  type Rply,
  rcode,
  rplySchema,
} from "../../protocol/messages.js";
import { subjects } from "../../protocol/subjects.js";
import { TEST_ADMIN } from "../../sim/testAdmin.js";
import { NatsTransport } from "../../transport/nats.js";
import { isAlive, requireBuild, type Spawned, startLocalCluster } from "../support/cli.js";
import { DvsdNode } from "../support/dvsdProcess.js";
import { about, both, EventWatch, named } from "../support/eventWatch.js";
import { startTestNatsServer, type TestNatsServer } from "../support/natsServer.js";

const NODES = [1, 2, 3, 4] as const;
const STOPPED = 4;
const dvs = subjects("dvs");

const entries = (rply: Rply) => rply.data as Rply[];
const summary = (rply: Rply) => entries(rply).map((e) => [e.src, e.rcode]);

/** A tool's connection: DvsClient for the queue subject, and ALL requests sent to one chosen node. */
class Tool {
  readonly transport: NatsTransport;
  readonly client: DvsClient;
  #seq = 1_000;

  constructor(
    readonly nc: NatsConnection,
    signer: AdminSigner,
  ) {
    this.transport = new NatsTransport(nc, { name: "e2e-requests" });
    this.client = new DvsClient(this.transport, {
      cluster: "dvs",
      clientId: "e2e",
      timeoutMs: 10_000,
      signer,
    });
  }

  /**
   * `dst: ALL` sent to node `via`'s own subject, so that node gathers it: through the queue
   * subject the stopped node itself could be the one to take it, and nobody would answer.
   * Resolves with the reply and how long it took.
   */
  async allVia(via: number, type: RequestType, timeoutMs: number): Promise<{ rply: Rply; ms: number }> {
    const rqst = {
      v: PROTOCOL_VERSION,
      type,
      src: "e2e",
      dst: ALL,
      seq: ++this.#seq,
      timeout: timeoutMs,
      params: {},
    };
    const started = performance.now();
    const msg = await this.transport.request(dvs.nodeRqst(via), encode(rqst), {
      timeoutMs: timeoutMs + 5_000,
    });
    const ms = performance.now() - started;
    const decoded = decode(msg.data, "cbor", this.transport.maxPayload);
    if (!decoded.ok) throw new Error(`undecodable reply: ${decoded.message}`);
    return { rply: rplySchema.parse(decoded.value), ms };
  }

  /** The same through DvsClient and the queue subject: any node gathers it. */
  async all(type: RequestType, params: unknown, timeoutMs: number): Promise<{ rply: Rply; ms: number }> {
    const started = performance.now();
    const rply = await this.client.request(type, params, { gatherTimeoutMs: timeoutMs });
    return { rply, ms: performance.now() - started };
  }
}

/** DVSINIT to ALL: every node initialised now (rcode = its id) or already (EEXIST, `dvsd up` does it). */
async function initialise(tool: Tool): Promise<void> {
  const { rply } = await tool.all("DVSINIT", { name: "e2e" }, 5_000);
  expect(entries(rply).map((e) => e.src)).toEqual([...NODES]);
  for (const e of entries(rply)) expect([e.src, rcode("EEXIST")]).toContain(e.rcode);
}

describe("ALL requests on a cluster started by dvsd up (default timings)", () => {
  let up: Spawned;
  let nc: NatsConnection;
  let tool: Tool;
  let watch: EventWatch;
  let pids: Map<number, number>;

  beforeAll(async () => {
    const cluster = await startLocalCluster(NODES.length);
    up = cluster.up;
    nc = await connect({ servers: cluster.url, name: "e2e-requests", ...DEV_USERS.admin });
    tool = new Tool(nc, loadAdminSigner(join(cluster.data, ADMIN_KEY_FILE)));
    watch = await EventWatch.start(cluster.url);
    pids = new Map((await discoverNodes(nc, "dvs", 500)).map((n) => [n.node, n.pid]));
    expect([...pids.keys()]).toEqual([...NODES]);
    await initialise(tool);
  }, 40_000);

  afterAll(async () => {
    // Should a test fail between SIGSTOP and SIGCONT, the node must still be able to stop.
    const stopped = pids?.get(STOPPED);
    if (stopped !== undefined && isAlive(stopped)) process.kill(stopped, "SIGCONT");
    await watch?.close();
    await nc?.close();
    if (up && up.child.exitCode === null) {
      up.child.kill("SIGINT");
      await up.exited(20_000).catch(() => up.child.kill("SIGKILL"));
    }
  });

  it("answers an ALL request that every node answers far sooner than its timeout", async () => {
    for (let i = 0; i < 3; i++) {
      const { rply, ms } = await tool.all("GETDVSINFO", {}, 5_000);
      expect(rply).toMatchObject({ rcode: 0, count: 4, dst: "e2e" });
      expect(summary(rply)).toEqual(NODES.map((n) => [n, 0]));
      for (const e of entries(rply))
        expect(e).toMatchObject({ seq: rply.seq, dst: "e2e", type: "GETDVSINFO" });
      expect(ms).toBeLessThan(1_000);
    }
  });

  it("names a member that leaves the view during the gather EHOSTDOWN, without waiting for the timeout", async () => {
    const pid = pids.get(STOPPED) as number;
    const from = watch.mark();
    process.kill(pid, "SIGSTOP");
    let result: { rply: Rply; ms: number };
    try {
      // Heartbeats stop: node 1 marks node 4 unreachable (PARTITION) about a second later.
      result = await tool.allVia(1, "GETDVSINFO", 4_000);
    } finally {
      process.kill(pid, "SIGCONT");
    }
    expect(summary(result.rply)).toEqual([
      [1, 0],
      [2, 0],
      [3, 0],
      [STOPPED, rcode("EHOSTDOWN")],
    ]);
    expect(result.rply.rcode).toBe(rcode("EHOSTDOWN"));
    expect(result.ms).toBeLessThan(4_000);
    // The EHOSTDOWN is the PARTITION node 1 announced (its event may reach us after the reply).
    await watch.fromEach([1], both(named("PARTITION"), about(STOPPED)), "node 1's PARTITION of node 4", {
      from,
    });

    // Back in node 1's view (MERGE; the others may not have missed it yet), and every node
    // agreeing on one view of all four, it answers again: 4 entries, well before the timeout.
    await watch.converged(NODES, 15_000);
    const after = await tool.allVia(1, "GETDVSINFO", 4_000);
    expect(summary(after.rply)).toEqual(NODES.map((n) => [n, 0]));
    expect(after.ms).toBeLessThan(1_000);
  });
});

describe("ALL requests while a member is SIGSTOPped, before the membership notices", () => {
  // Membership notices a silent member only after 25 missed heartbeats (5 s), so during a
  // 1.5 s gather the stopped node is still a member: the gather must time it out itself.
  const config = { membership: { unreachableAfterMissed: 25 }, log: { level: "warn" as const } };
  const TIMEOUT_MS = 1_500;
  const dir = mkdtempSync(join(tmpdir(), "dvs-requests-"));
  const nodes = new Map<number, DvsdNode>();
  let server: TestNatsServer;
  let nc: NatsConnection;
  let tool: Tool;
  let watch: EventWatch;

  beforeAll(async () => {
    requireBuild();
    server = await startTestNatsServer();
    for (const node of NODES) {
      const n = new DvsdNode({ node, dir, natsUrl: server.url, config });
      nodes.set(node, n);
      n.start();
    }
    watch = await EventWatch.start(server.url);
    await watch.converged(NODES, 20_000);
    nc = await connect({ servers: server.url, name: "e2e-requests", ...DEV_USERS.admin });
    tool = new Tool(nc, TEST_ADMIN);
    await initialise(tool);
  }, 40_000);

  afterAll(async () => {
    await Promise.all([...nodes.values()].map((n) => n.kill()));
    await watch?.close();
    await nc?.close();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("gives the stopped member one ETIMEDOUT entry at the request's timeout, and all four answer after SIGCONT", async () => {
    const stopped = nodes.get(STOPPED) as DvsdNode;
    const from = watch.mark();
    stopped.signal("SIGSTOP");
    let result: { rply: Rply; ms: number };
    try {
      result = await tool.allVia(1, "GETDVSINFO", TIMEOUT_MS);
    } finally {
      stopped.signal("SIGCONT");
    }
    const { rply, ms } = result;
    expect(summary(rply)).toEqual([
      [1, 0],
      [2, 0],
      [3, 0],
      [STOPPED, rcode("ETIMEDOUT")],
    ]);
    expect(entries(rply).filter((e) => e.rcode === rcode("ETIMEDOUT"))).toHaveLength(1);
    expect(rply).toMatchObject({ rcode: rcode("ETIMEDOUT"), count: 4, src: 1, dst: "e2e" });
    expect(ms).toBeGreaterThanOrEqual(TIMEOUT_MS);
    expect(ms).toBeLessThan(TIMEOUT_MS + 1_000);
    // The membership never saw it go: the timeout alone accounted for it.
    expect(watch.select(about(STOPPED), from)).toEqual([]);

    // Resumed, it answers at once: no view change was needed.
    const after = await tool.allVia(1, "GETDVSINFO", 5_000);
    expect(summary(after.rply)).toEqual(NODES.map((n) => [n, 0]));
    expect(after.ms).toBeLessThan(1_000);
    const queued = await tool.all("GETDVSINFO", {}, 5_000);
    expect(summary(queued.rply)).toEqual(NODES.map((n) => [n, 0]));
    expect(queued.ms).toBeLessThan(1_000);
  });
});
