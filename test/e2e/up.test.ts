// `dvsd up` as an operator runs it: a real nats-server and three node
// processes, found through NATS micro discovery, stopped by Ctrl-C.
import { connect, headers, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEV_USERS } from "../../client/credentials.js";
import { discoverNodes } from "../../client/discovery.js";
import { rcode } from "../../protocol/messages.js";
import { dvsctlBin, isAlive, type Spawned, spawnNode, startLocalCluster } from "../support/cli.js";

let up: Spawned;
let port: number;
let nc: NatsConnection;

beforeAll(async () => {
  const cluster = await startLocalCluster();
  up = cluster.up;
  port = cluster.port;
  nc = await connect({ servers: cluster.url, ...DEV_USERS.admin });
}, 40_000);

afterAll(async () => {
  await nc?.close();
  if (up && up.child.exitCode === null) {
    up.child.kill("SIGKILL");
  }
});

describe("dvsd up", () => {
  it("starts three node processes that $SRV.PING.dvsd finds", async () => {
    const nodes = await discoverNodes(nc, "dvs", 500);
    expect(nodes.map((n) => n.node)).toEqual([1, 2, 3]);
    for (const n of nodes) expect(isAlive(n.pid)).toBe(true);
    expect(new Set(nodes.map((n) => n.pid)).size).toBe(3);
  });

  it("answers a JSON request with garbage params with a JSON EBADMSG reply", async () => {
    const h = headers();
    h.set("Content-Type", "application/json");
    const msg = await nc.request(
      "dvs.dvs.node.1.rqst",
      '{"v":1,"type":"DVSINIT","src":"e2e","dst":1,"seq":1,"params":"garbage"}',
      {
        timeout: 2_000,
        headers: h,
      },
    );
    const reply = JSON.parse(msg.string()) as { rcode: number; src: number };
    expect(reply.rcode).toBe(rcode("EBADMSG"));
    expect(reply.src).toBe(1);
  });

  it("lets dvsctl list the nodes and send a request with no connection flags but the port", async () => {
    const env = { DVS_NATS: `nats://127.0.0.1:${port}` };
    const nodes = spawnNode([dvsctlBin, "nodes", "--json"], env);
    expect(await nodes.exited()).toBe(0);
    expect((JSON.parse(nodes.output()) as { node: number }[]).map((n) => n.node)).toEqual([1, 2, 3]);
    const rqst = spawnNode([dvsctlBin, "rqst", "GETDVSINFO", "--node", "2", "--json"], env);
    // `dvsd up` initialised every node once they agreed on one view.
    expect(await rqst.exited()).toBe(0);
    expect(JSON.parse(rqst.output())).toMatchObject({ src: 2, rcode: 0, data: { name: "dvs" } });
    // A node that answers an error makes dvsctl exit 1.
    const missing = spawnNode(
      [dvsctlBin, "rqst", "GETDCINFO", "--node", "2", "--param", "dcid=99", "--json"],
      env,
    );
    expect(await missing.exited()).toBe(1);
    expect(JSON.parse(missing.output())).toMatchObject({ src: 2, rcode: rcode("ENOENT") });
    // Bad usage is exit status 2, whether the program or the subcommand finds it.
    expect(await spawnNode([dvsctlBin, "rqst"], env).exited()).toBe(2);
    expect(await spawnNode([dvsctlBin, "rqst", "PS", "--node", "x"], env).exited()).toBe(2);
    expect(await spawnNode([dvsctlBin, "rqst", "PS", "--param", "novalue"], env).exited()).toBe(2);
    expect(await spawnNode([dvsctlBin, "frobnicate"], env).exited()).toBe(2);
  });

  it("keeps the other nodes when one is killed, and stops everything on SIGINT", async () => {
    const nodes = await discoverNodes(nc, "dvs", 500);
    const victim = nodes.find((n) => n.node === 2);
    expect(victim).toBeDefined();
    process.kill(victim?.pid ?? -1, "SIGKILL");
    await up.waitFor(/node 2 \(pid \d+\) exited \(SIGKILL\)/);
    expect((await discoverNodes(nc, "dvs", 500)).map((n) => n.node)).toEqual([1, 3]);

    await nc.close();
    up.child.kill("SIGINT");
    expect(await up.exited(20_000)).toBe(0);
    for (const n of nodes) expect(isAlive(n.pid)).toBe(false);
    expect(up.output()).toMatch(/stopped/);
  });
});
