// dvsctl against a real `dvsd up` cluster of its own (a free port, a temporary
// data directory), one cluster per describe: the request commands (init, info,
// dc, node, rqst) with their tables, --json and exit statuses; then `members`
// and `watch` with the membership events when a node leaves gracefully and
// when one is killed.
import { connect, headers } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEV_USERS } from "../../client/credentials.js";
import { decode } from "../../protocol/codec.js";
import { type EventMessage, type NodeStatus, type Rply, rcode } from "../../protocol/messages.js";
import { dvsctlBin, type Spawned, spawnNode, startLocalCluster } from "../support/cli.js";
import { adminKeyEnv, dvsctlRunner } from "../support/dvsctl.js";

let up: Spawned;
let env: NodeJS.ProcessEnv;
const watchers: Spawned[] = [];

/** Starts a cluster for the enclosing describe and stops it after its tests. */
function useCluster(): void {
  beforeAll(async () => {
    const cluster = await startLocalCluster();
    up = cluster.up;
    env = { DVS_NATS: cluster.url, ...adminKeyEnv(cluster.data) };
  }, 40_000);

  afterAll(async () => {
    for (const w of watchers.splice(0)) if (w.child.exitCode === null) w.child.kill("SIGKILL");
    if (up && up.child.exitCode === null) {
      up.child.kill("SIGINT");
      await up.exited(20_000).catch(() => up.child.kill("SIGKILL"));
    }
  });
}

const { dvsctl, dvsctlJson } = dvsctlRunner(() => env);

/** The per-node entries of an aggregated (ALL) reply, by node id. */
function entries(rply: Rply): Rply[] {
  expect(Array.isArray(rply.data)).toBe(true);
  return [...(rply.data as Rply[])].sort((a, b) => Number(a.src) - Number(b.src));
}

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

/** Polls `check` until it holds, failing after `timeoutMs`. */
async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("dvsctl request commands", () => {
  useCluster();

  it("init --node all initialises every member of the view, or finds it initialised already", async () => {
    // `dvsd up` may have sent DVSINIT itself: then every node answers EEXIST.
    const { code, rply } = await dvsctlJson("init", "--node", "all", "--name", "e2e");
    const all = entries(rply);
    expect(all.map((e) => e.src)).toEqual([1, 2, 3]);
    for (const e of all) expect([e.src, rcode("EEXIST")]).toContain(e.rcode);
    expect(code).toBe(all.some((e) => e.rcode < 0) ? 1 : 0);

    const info = await dvsctlJson("info");
    expect(info.code).toBe(0);
    const dvs = entries(info.rply).map((e) => e.data);
    expect(dvs).toHaveLength(3);
    for (const d of dvs) expect(d).toEqual(dvs[0]);

    const again = await dvsctl("init");
    expect(again.code).toBe(1);
    expect(again.output).toMatch(/^node\s+rcode\s+name\s+nr_dcs\s.*\serror$/m);
    expect(again.output).toMatch(/^2\s+EEXIST \(-17\)\s+node 2 is already initialised$/m);
  });

  it("dc init goes to every node, and dc info on each node shows the same configuration", async () => {
    const created = await dvsctlJson(
      "dc",
      "init",
      "7",
      "--name",
      "e2e",
      "--nodes",
      "3,1,2",
      "--nr-procs",
      "32",
    );
    expect(created.code).toBe(0);
    expect(entries(created.rply).map((e) => [e.src, e.rcode])).toEqual([
      [1, 7],
      [2, 7],
      [3, 7],
    ]);

    const answers = await Promise.all(
      [1, 2, 3].map((n) => dvsctlJson("dc", "info", "7", "--node", String(n))),
    );
    const configs = answers.map(({ code, rply }, i) => {
      expect(code).toBe(0);
      expect(rply.src).toBe(i + 1);
      return rply.data;
    });
    expect(configs[0]).toMatchObject({ dcid: 7, name: "e2e", nodes: [1, 2, 3], nr_nodes: 3, nr_procs: 32 });
    expect(configs[1]).toEqual(configs[0]);
    expect(configs[2]).toEqual(configs[0]);

    const table = await dvsctl("dc", "info", "7");
    expect(table.code).toBe(0);
    expect(table.output).toMatch(/^node\s+rcode\s+dcid\s+name\s+nodes\s+nr_nodes\s+nr_procs\s/m);
    for (const node of [1, 2, 3])
      expect(table.output).toMatch(new RegExp(`^${node}\\s+0\\s+7\\s+e2e\\s+1,2,3\\s+3\\s+32\\s`, "m"));
  });

  it("dc add-node and del-node change every node's table", async () => {
    const added = await dvsctlJson("dc", "add-node", "7", "4");
    expect(added.code).toBe(0);
    for (const e of entries(added.rply)) expect(e.data).toMatchObject({ nodes: [1, 2, 3, 4], nr_nodes: 4 });
    const removed = await dvsctlJson("dc", "del-node", "7", "4");
    expect(removed.code).toBe(0);
    for (const e of entries(removed.rply)) expect(e.data).toMatchObject({ nodes: [1, 2, 3], nr_nodes: 3 });
  });

  it("exits 1 when a node answers an error, and shows the error in the table", async () => {
    const { code, output } = await dvsctl("dc", "info", "99");
    expect(code).toBe(1);
    for (const node of [1, 2, 3])
      expect(output).toMatch(new RegExp(`^${node}\\s+ENOENT \\(-2\\)\\s+no DC 99$`, "m"));

    const one = await dvsctlJson("dc", "info", "99", "--node", "2");
    expect(one.code).toBe(1);
    expect(one.rply).toMatchObject({ src: 2, rcode: rcode("ENOENT"), data: { error: "ENOENT" } });

    const ended = await dvsctlJson("dc", "end", "7");
    expect(ended.code).toBe(0);
    expect(entries(ended.rply).map((e) => e.rcode)).toEqual([0, 0, 0]);
    expect((await dvsctl("dc", "info", "7", "--node", "3")).code).toBe(1);
  });

  it("node info describes every node, and a node forwards a question about another one", async () => {
    const all = await dvsctlJson("node", "info");
    expect(all.code).toBe(0);
    const nodes = entries(all.rply);
    expect(nodes.map((e) => (e.data as { nodeid: number }).nodeid)).toEqual([1, 2, 3]);
    for (const e of nodes) expect(e.data).toMatchObject({ state: "member", view: [1, 2, 3], flags: 3 });

    const forwarded = await dvsctlJson("node", "info", "3", "--node", "1");
    expect(forwarded.code).toBe(0);
    expect(forwarded.rply.src).toBe(1);
    expect(forwarded.rply.data).toMatchObject({ nodeid: 3, name: "node3", view: [1, 2, 3] });

    const table = await dvsctl("node", "info", "2");
    expect(table.code).toBe(0);
    expect(table.output).toMatch(/^node\s+rcode\s+nodeid\s+name\s+incarnation\s+state\s+flags\s+view\s/m);
    expect(table.output).toMatch(/^2\s+0\s+2\s+node2\s+\d+\s+member\s+3 \(initialized,inView\)\s+1,2,3\s/m);
  });

  it("an ALL request carries a gather timeout a little below dvsctl's own --timeout", async () => {
    const nc = await connect({ servers: env.DVS_NATS ?? "", ...DEV_USERS.admin });
    const seen: unknown[] = [];
    // A plain subscription sees every request on the queue subject, beside the nodes' queue group.
    nc.subscribe("dvs.dvs.rqst", {
      callback: (_err, msg) => {
        const decoded = decode(msg.data, "cbor");
        if (decoded.ok) seen.push(decoded.value);
      },
    });
    await nc.flush();
    try {
      expect((await dvsctl("info", "--timeout", "3000")).code).toBe(0);
      await nc.flush();
      expect(seen).toEqual([expect.objectContaining({ type: "GETDVSINFO", dst: "ALL", timeout: 2_700 })]);
    } finally {
      await nc.close();
    }
  });

  it("rqst sends any type and shows the raw reply", async () => {
    const bad = await dvsctl("rqst", "DCINIT", "--node", "2", "--param", "dcid=x");
    expect(bad.code).toBe(1);
    expect(bad.output).toMatch(/^node\s+type\s+seq\s+rcode\s+count\s+data$/m);
    expect(bad.output).toMatch(/^2\s+DCINIT\s+1\s+EBADMSG \(-74\)\s+1\s+\{"error":"EBADMSG"/m);
    const ok = await dvsctlJson("rqst", "getdvsinfo", "--node", "all");
    expect(ok.code).toBe(0);
    expect(entries(ok.rply).map((e) => e.rcode)).toEqual([0, 0, 0]);
  });

  it("bad usage exits 2 before anything is sent", async () => {
    const usages = [
      ["dc", "info", "x"],
      ["dc", "init", "1", "--nodes", "1,a"],
      ["end"],
      ["end", "--node", "all"],
      ["proc", "send", "1", "2"],
      ["proc", "send", "1", "2", "--body-json", "{oops"],
      ["rqst", "GETDCINFO", "--params-json", "[1]"],
      ["dc"],
    ];
    const results = await Promise.all(usages.map((args) => dvsctl(...args)));
    results.forEach(({ code, output }, i) => {
      expect({ args: usages[i], code }).toEqual({ args: usages[i], code: 2 });
      expect(output).toMatch(/error|dvsctl:|Usage/);
    });
  });

  it("proc commands spawn, message, inspect, restrict, migrate and end a process", async () => {
    const served = await dvsctlJson("rqst", "GETPROXYSTS", "--node", "1");
    expect(served.rply.rcode).toBe(0);

    expect((await dvsctl("dc", "init", "8", "--nodes", "1,2")).code).toBe(0);
    // Without --node, dvsctl asks the lowest node of the DC: node 1.
    const spawned = await dvsctlJson(
      "proc",
      "spawn",
      "8",
      "counter",
      "--endpoint",
      "3",
      "--input-json",
      '{"count":5}',
    );
    expect(spawned.code).toBe(0);
    expect(spawned.rply).toMatchObject({
      src: 1,
      rcode: 3,
      data: { nodeid: 1, endpoint: 3, context: { count: 5 } },
    });

    const sent = await dvsctlJson("proc", "send", "8", "3", "--body-json", '{"type":"inc","by":2}');
    expect(sent.code).toBe(0);
    expect(sent.rply.data).toMatchObject({ seq: 1, nodeid: 1 });
    await eventually("the message delivered", async () => {
      const info = await dvsctlJson("proc", "info", "8", "3", "--node", "3");
      return info.code === 0 && (info.rply.data as { context: { count: number } }).context.count === 7;
    });

    const priv = await dvsctlJson(
      "proc",
      "priv",
      "8",
      "3",
      "--set-json",
      '{"rqsts":["RQST_GETDCINFO"],"endpoints":[4]}',
    );
    expect(priv.code).toBe(0);
    expect(priv.rply.data).toEqual({ rqsts: ["GETDCINFO"], endpoints: [4] });
    expect((await dvsctlJson("proc", "priv", "8", "3")).rply.data).toEqual(priv.rply.data);

    const moved = await dvsctlJson("proc", "migrate", "8", "3", "2");
    expect(moved.code).toBe(0);
    expect(moved.rply.data).toMatchObject({ nodeid: 2, epoch: 2, context: { count: 7 } });
    const refused = await dvsctlJson("proc", "migrate", "8", "3", "3");
    expect(refused.code).toBe(1);
    expect(refused.rply.rcode).toBe(rcode("EINVAL"));

    const stats = await dvsctl("proxy", "stats", "--node", "1");
    expect(stats.code).toBe(0);
    expect(stats.output).toMatch(/^node\s+rcode\s+peer\s+state\s+downs\s/m);
    const pair = await dvsctlJson("proxy", "info", "2", "--node", "1");
    expect(pair.code).toBe(0);
    expect((pair.rply.data as { role: string }[]).map((e) => e.role)).toEqual(["sender", "receiver"]);

    const table = await dvsctl("proc", "info", "8", "3");
    expect(table.output).toMatch(/^node\s+rcode\s+dcid\s+endpoint\s+host\s+name\s+machine\s+state\s/m);
    expect(table.output).toMatch(/^1\s+0\s+8\s+3\s+2\s+counter-3\s+counter\s+running\s/m);
    expect((await dvsctl("proc", "end", "8", "3")).code).toBe(0);
    expect((await dvsctl("proc", "info", "8", "3")).code).toBe(1);
  });

  it("end makes a node leave the view; it answers ENOTINIT until init brings it back as a new incarnation", async () => {
    const before = (await members()).find((n) => n.node === 3)?.incarnation ?? Number.POSITIVE_INFINITY;
    const ended = await dvsctlJson("end", "--node", "3");
    expect(ended.code).toBe(0);
    expect(ended.rply).toMatchObject({ src: 3, rcode: 0 });
    await eventually("nodes 1 and 2 without node 3", async () =>
      (await members()).every((n) => n.node === 3 || n.view.members.join() === "1,2"),
    );

    const info = await dvsctlJson("info", "--node", "3");
    expect(info.code).toBe(1);
    expect(info.rply.rcode).toBe(rcode("ENOTINIT"));

    const back = await dvsctlJson("init", "--node", "3");
    expect(back.code).toBe(0);
    expect(back.rply.rcode).toBe(3);
    await eventually("one view of 1, 2 and 3 again", async () => {
      const nodes = await members();
      return nodes.length === 3 && nodes.every((n) => n.view.members.join() === "1,2,3");
    });
    const node3 = (await members()).find((n) => n.node === 3);
    expect(node3?.incarnation).toBeGreaterThan(before);
  });
});

describe("dvsctl members and watch", () => {
  useCluster();

  it("dvsd up waited for one view of all three nodes and printed it", () => {
    expect(up.output()).toMatch(/node\s+incarnation\s+state\s+view\s+members\s+pid/);
    expect(up.output()).toMatch(/^1\s+\d+\s+member\s+\d+\s+1,2,3\s+\d+$/m);
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
    expect(table.output()).toMatch(/^3\s+\d+\s+member\s+\d+\s+1,2,3\s+\d+$/m);
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
    const nc = await connect({ servers: env.DVS_NATS ?? "", ...DEV_USERS.admin });
    nc.publish("dvs.dvs.events.9", "not cbor at all");
    // A well-formed event of node 2 on node 9's subject: the subject, not the body, says who saw it.
    const forged = {
      v: 1,
      node: 2,
      incarnation: 1,
      event: "DISCONNECT",
      view: { id: 99, members: [2] },
      changed: [{ node: 1, incarnation: 1 }],
      cause: "forged",
      at: 0,
    };
    const jsonType = headers();
    jsonType.set("Content-Type", "application/json");
    nc.publish("dvs.dvs.events.9", JSON.stringify(forged), { headers: jsonType });
    await nc.flush();
    await nc.close();
    await json.waitFor(/skipped a malformed message/);
    await json.waitFor(/skipped an event of node 2 that arrived on dvs\.dvs\.events\.9/);
    expect(json.output()).not.toContain('"cause":"forged"');

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
    const incarnationOf = (id: number) => nodes.find((n) => n.node === id)?.incarnation;
    for (const e of eventsOf(json).filter(left)) {
      expect(e.view.members).toEqual([1, 3]);
      expect(e.incarnation).toBe(incarnationOf(e.node));
      expect(e.changed).toEqual([{ node: 2, incarnation: incarnationOf(2) }]);
    }
    await text.waitFor(
      new RegExp(
        `node 1/${incarnationOf(1)}\\s+DISCONNECT\\s+view \\d+ \\[1,3\\]\\s+changed 2/${incarnationOf(2)}\\s+cause: left`,
      ),
    );

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
