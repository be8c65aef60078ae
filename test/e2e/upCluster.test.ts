// `dvsd up --servers 3`: a local JetStream cluster of three nats-servers with
// the nodes spread over them; the registry and the action log are replicated
// on all three, so the cluster keeps its coordinator when one server dies.
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEV_USERS } from "../../client/credentials.js";
import { actionStreamName } from "../../transport/actionLogJetStream.js";
import { coordinatorBucketName } from "../../transport/kvJetStream.js";
import {
  dvsctlBin,
  freePortRun,
  isAlive,
  type Spawned,
  spawnNode,
  startLocalCluster,
} from "../support/cli.js";

let up: Spawned;
let port: number;
let nc: NatsConnection;

beforeAll(async () => {
  const clusterPort = await freePortRun(3);
  const cluster = await startLocalCluster(3, ["--servers", "3", "--cluster-port", String(clusterPort)]);
  up = cluster.up;
  port = cluster.port;
  // Server 2: server 1 is killed below.
  nc = await connect({ servers: `nats://127.0.0.1:${port + 1}`, ...DEV_USERS.admin });
}, 60_000);

afterAll(async () => {
  await nc?.close();
  if (up && up.child.exitCode === null) up.child.kill("SIGKILL");
});

/** dvsctl --json through server `server` (1-based), parsed; retried until `ok` holds or 20 s pass. */
async function dvsctlUntil<T>(server: number, args: string[], ok: (value: T) => boolean): Promise<T> {
  const deadline = Date.now() + 20_000;
  let last = "";
  while (Date.now() < deadline) {
    const run = spawnNode([dvsctlBin, "--json", ...args], {
      DVS_NATS: `nats://127.0.0.1:${port + server - 1}`,
    });
    const code = await run.exited();
    last = run.output();
    if (code === 0) {
      const value = JSON.parse(last) as T;
      if (ok(value)) return value;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`dvsctl ${args.join(" ")} never satisfied the test; last output:\n${last}`);
}

describe("dvsd up --servers 3", () => {
  it("replicates the registry and the action log on the three servers", async () => {
    const jsm = await jetstreamManager(nc);
    const registry = await jsm.streams.info(`KV_${coordinatorBucketName("dvs")}`);
    expect(registry.config.num_replicas).toBe(3);
    expect(registry.cluster?.replicas?.length).toBe(2);
    const actions = await jsm.streams.info(actionStreamName("dvs"));
    expect(actions.config.num_replicas).toBe(3);
  });

  it("keeps one view and a coordinator when a nats-server is killed", async () => {
    const pid = Number(/started nats-server dvs-s1 \(pid (\d+)\)/.exec(up.output())?.[1]);
    expect(isAlive(pid)).toBe(true);
    process.kill(pid, "SIGKILL");
    // Node 1 lived on server 1: it fails over to another server and the view heals to all three.
    const members = await dvsctlUntil<{ node: number; view: { members: number[] } }[]>(
      2,
      ["members"],
      (nodes) => nodes.length === 3 && nodes.every((n) => n.view.members.join(",") === "1,2,3"),
    );
    expect(members.map((n) => n.node)).toEqual([1, 2, 3]);
    const who = await dvsctlUntil<{ coordinator: number }>(
      3,
      ["who"],
      (w) => typeof w.coordinator === "number",
    );
    expect([1, 2, 3]).toContain(who.coordinator);
  });

  it("stops every server and node on SIGINT", async () => {
    up.child.kill("SIGINT");
    expect(await up.exited(30_000)).toBe(0);
    expect(up.output()).toMatch(/stopped/);
  });
});
