// A node that only moves to another nats-server is not gone: two servers in a
// cluster (one nats.conf), node 1 on server 1, node 2 on server 2; server 2 is
// SIGKILLed, node 2 reconnects to server 1, and no node may declare it down.
// A killed server publishes no advisory about its clients, and the other
// server none about clients that were not its own.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../actors/logger.js";
import type { NodeRuntime } from "../../actors/node.js";
import { parseConfig } from "../../daemon/config.js";
import { devNodeCredentials } from "../../daemon/credentials.js";
import { createNatsNode } from "../../daemon/daemon.js";
import { type NatsCluster, startNatsCluster } from "../../daemon/natsCluster.js";
import { DISCONNECT_ADVISORIES, parseDisconnectAdvisory } from "../../protocol/advisories.js";
import { connectNats, type NatsTransport } from "../../transport/nats.js";
import { about, both, EventWatch, named } from "../support/eventWatch.js";
import { natsConf } from "../support/natsServer.js";

const HEARTBEAT_MS = 200;
const DOWN_AFTER_MS = 1_000;

const dir = mkdtempSync(join(tmpdir(), "dvs-server-move-"));
let cluster: NatsCluster;
const nodes: NodeRuntime<NatsTransport>[] = [];

beforeAll(async () => {
  cluster = await startNatsCluster({ config: natsConf, servers: 2, storeDir: join(dir, "nats") });
}, 60_000);
afterAll(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
  await cluster?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Node `id` on `servers`, in that order, never learning of others; no election (JetStream loses its quorum with server 2). */
function start(id: number, servers: readonly string[]): NodeRuntime<NatsTransport> {
  const config = parseConfig({
    node: id,
    nats: { servers: [...servers], randomize: false, discover: false, ...devNodeCredentials(id) },
    stateDir: join(dir, `n${id}`),
    log: { level: "silent" },
    membership: { heartbeatMs: HEARTBEAT_MS, downAfterMs: DOWN_AFTER_MS },
    election: { enabled: false },
  });
  const node = createNatsNode(config, silentLogger).start();
  nodes.push(node);
  return node;
}

describe("a node that moves to another nats-server", () => {
  it("is not declared down by the others (it may be partitioned and merged back)", async () => {
    const [one, two] = cluster.urls as [string, string];
    start(1, [one]);
    const moving = start(2, [two, one]);
    await Promise.all(nodes.map((n) => n.running()));
    await using watch = await EventWatch.start(one, "dvs", { discover: false });
    await watch.converged([1, 2]);
    expect(moving.transport?.connection.getServer()).toBe(new URL(two).host);

    const observer = await connectNats({ servers: [one], name: "move-observer", ...devNodeCredentials(3) });
    const advisories: string[] = [];
    observer.subscribe(DISCONNECT_ADVISORIES, (msg) => {
      const advisory = parseDisconnectAdvisory(msg.data);
      advisories.push(`${advisory?.client.name} (${advisory?.reason})`);
    });
    await observer.flush();

    const from = watch.mark();
    await cluster.kill(2);
    // Back in one view over server 1, then long enough for an unreachable node to be declared down.
    await watch.converged([1, 2]);
    expect(moving.transport?.connection.getServer()).toBe(new URL(one).host);
    await new Promise((resolve) => setTimeout(resolve, DOWN_AFTER_MS + 4 * HEARTBEAT_MS));

    // No node declares anyone down. Node 2 itself announces PARTITION (its own
    // link was lost) and MERGE once it is back; a flap of node 2 at node 1 is
    // allowed too, but it ends merged.
    expect(watch.select(named("DISCONNECT"), from), watch.describe(from)).toEqual([]);
    const flaps = watch.select(both(named("PARTITION", "MERGE"), about(2)), from);
    expect(flaps.at(-1)?.event ?? "MERGE", watch.describe(from)).toBe("MERGE");
    expect(advisories).toEqual([]);
    await observer.close();
  });
});
