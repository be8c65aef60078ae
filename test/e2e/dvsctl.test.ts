// `dvsctl members` and `dvsctl watch` against a real `dvsd up` cluster of its
// own (a free port, a temporary data directory): the view every node reports,
// and the membership events when a node leaves gracefully and when one is killed.
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EventMessage, NodeStatus } from "../../transport/protocol.js";
import { dvsctlBin, type Spawned, spawnNode, startLocalCluster } from "../support/processes.js";

let up: Spawned;
let env: NodeJS.ProcessEnv;
const watchers: Spawned[] = [];

beforeAll(async () => {
  const cluster = await startLocalCluster();
  up = cluster.up;
  env = { DVS_NATS: cluster.url };
}, 40_000);

afterAll(async () => {
  for (const w of watchers) if (w.child.exitCode === null) w.child.kill("SIGKILL");
  if (up && up.child.exitCode === null) {
    up.child.kill("SIGINT");
    await up.exited(20_000).catch(() => up.child.kill("SIGKILL"));
  }
});

async function members(): Promise<NodeStatus[]> {
  const p = spawnNode([dvsctlBin, "members", "--json"], env);
  expect(await p.exited()).toBe(0);
  const line = p
    .output()
    .split("\n")
    .find((l) => l.startsWith("["));
  return JSON.parse(line ?? "[]") as NodeStatus[];
}

function eventsOf(w: Spawned): EventMessage[] {
  return w
    .output()
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as EventMessage);
}

/** Polls `check` until it holds, failing after `timeoutMs`. */
async function until(what: string, check: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("dvsctl members and watch", () => {
  it("dvsd up waited for one view of all three nodes and printed it", () => {
    expect(up.output()).toMatch(/node\s+incarnation\s+state\s+view\s+members\s+pid/);
    expect(up.output()).toMatch(/^1\s+1\s+member\s+\d+\s+1,2,3\s+\d+$/m);
    expect(up.output()).not.toMatch(/did not agree/);
  });

  it("members --json shows three nodes with the same view of [1,2,3]", async () => {
    const nodes = await members();
    expect(nodes.map((n) => n.node)).toEqual([1, 2, 3]);
    for (const n of nodes) {
      expect(n.view.members).toEqual([1, 2, 3]);
      expect(n.view.id).toBe(nodes[0]?.view.id);
      expect(n.state).toBe("member");
      expect(n.minority).toBe(false);
      expect(n.pid).toBeGreaterThan(0);
    }
    const table = spawnNode([dvsctlBin, "members"], env);
    expect(await table.exited()).toBe(0);
    expect(table.output()).toMatch(/^node\s+incarnation\s+state\s+view\s+members\s+pid$/m);
    expect(table.output()).toMatch(/^3\s+1\s+member\s+\d+\s+1,2,3\s+\d+$/m);
  });

  it("members exits 3 at once when no node of the cluster answers", async () => {
    const started = Date.now();
    const p = spawnNode([dvsctlBin, "--cluster", "nobody", "members", "--timeout", "3000"], env);
    expect(await p.exited()).toBe(3);
    expect(p.output()).toMatch(/no node of cluster "nobody" answered/);
    // NATS says "no responders" at once: no need to wait for the timeout.
    expect(Date.now() - started).toBeLessThan(2_900);
  });

  it("watch prints DISCONNECT (left) on a graceful stop and PARTITION on a SIGKILL, and exits 0 on Ctrl-C", async () => {
    const nodes = await members();
    const json = spawnNode([dvsctlBin, "watch", "--json"], env);
    const text = spawnNode([dvsctlBin, "watch"], env);
    watchers.push(json, text);
    await json.waitFor(/watching dvs\.dvs\.events/);
    await text.waitFor(/watching dvs\.dvs\.events/);

    // A malformed message is skipped with a note, and the watch goes on.
    const nc = await connect({ servers: env.DVS_NATS ?? "" });
    nc.publish("dvs.dvs.events", "not cbor at all");
    await nc.flush();
    await nc.close();
    await json.waitFor(/skipped a malformed message/);

    const pidOf = (id: number) => nodes.find((n) => n.node === id)?.pid ?? -1;
    process.kill(pidOf(2), "SIGTERM");
    const left = (e: EventMessage) =>
      e.event === "DISCONNECT" && e.cause === "left" && e.changed.some((m) => m.node === 2);
    await until("DISCONNECT of node 2 at nodes 1 and 3", () => {
      const observers = eventsOf(json)
        .filter(left)
        .map((e) => e.node);
      return observers.includes(1) && observers.includes(3);
    });
    for (const e of eventsOf(json).filter(left)) {
      expect(e.view.members).toEqual([1, 3]);
      expect(e.incarnation).toBe(1);
      expect(e.changed).toEqual([{ node: 2, incarnation: 1 }]);
    }
    await text.waitFor(/node 1\/1\s+DISCONNECT\s+view \d+ \[1,3\]\s+changed 2\/1\s+cause: left/);

    process.kill(pidOf(3), "SIGKILL");
    await until("PARTITION of node 3 at node 1", () =>
      eventsOf(json).some(
        (e) => e.node === 1 && e.event === "PARTITION" && e.changed.some((m) => m.node === 3),
      ),
    );
    const partition = eventsOf(json).find((e) => e.event === "PARTITION");
    expect(partition?.view.members).toEqual([1]);

    json.child.kill("SIGINT");
    text.child.kill("SIGINT");
    expect(await json.exited()).toBe(0);
    expect(await text.exited()).toBe(0);
  });
});
