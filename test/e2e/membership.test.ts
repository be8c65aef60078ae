// Membership (SPEC 4) with real processes: four `dvsd run` daemons on a
// nats-server owned by the test, node 4 through a TCP proxy the test can cut.
// Crashes, stops, restarts and cuts are real signals and sockets; the test
// watches `dvs.dvs.events` as any tool would and waits for events, with
// deadlines, instead of sleeping.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EventMessage } from "../../protocol/messages.js";
import { requireBuild } from "../support/cli.js";
import { DvsdNode } from "../support/dvsdProcess.js";
import { about, aboutLater, both, EventWatch, named } from "../support/eventWatch.js";
import { repoRoot, startTestNatsServer, type TestNatsServer } from "../support/natsServer.js";
import { startTcpProxy, type TcpProxy } from "../support/tcpProxy.js";

/** Short, so DISCONNECT by timeout comes quickly, yet long enough for a SIGSTOP/SIGCONT or a cut/restore. */
const DOWN_AFTER_MS = 2_500;
const ALL = [1, 2, 3, 4] as const;
/** Node 4 reaches NATS through the proxy. */
const PROXIED = 4;
const SCRIPT = join(repoRoot, "test/support/membershipScript.mjs");

const dir = mkdtempSync(join(tmpdir(), "dvs-membership-"));
const nodes = new Map<number, DvsdNode>();
const scriptOutput = (node: number) => join(dir, `scripts-${node}.jsonl`);
let server: TestNatsServer;
let proxy: TcpProxy;
let watch: EventWatch;

const others = (node: number) => ALL.filter((n) => n !== node);
const nodeOf = (node: number): DvsdNode => {
  const n = nodes.get(node);
  if (!n) throw new Error(`no node ${node}`);
  return n;
};

/** Each node's current incarnation, once all four agree on one view of all four. */
async function converged(timeoutMs = 15_000): Promise<Map<number, number>> {
  const statuses = await watch.converged(ALL, timeoutMs);
  return new Map(statuses.map((s) => [s.node, s.incarnation]));
}

async function incarnationOf(node: number): Promise<number> {
  const incarnation = (await converged()).get(node);
  if (incarnation === undefined) throw new Error(`node ${node} did not answer`);
  return incarnation;
}

/** One run of the event script: the DVS_* environment it saw and the event it read on stdin. */
interface ScriptRun {
  readonly env: Record<string, string | undefined>;
  readonly stdin: EventMessage;
}

function scriptRuns(node: number): ScriptRun[] {
  let text = "";
  try {
    text = readFileSync(scriptOutput(node), "utf8");
  } catch {
    return [];
  }
  return text
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as ScriptRun);
}

/** The events `node` published whose script has not run yet. */
function scriptsPending(node: number): string[] {
  const key = (e: EventMessage) => `${e.incarnation}/${e.view.id}/${e.event}`;
  const ran = new Set(scriptRuns(node).map((r) => key(r.stdin)));
  return watch
    .select((e) => e.node === node)
    .map(key)
    .filter((k) => !ran.has(k))
    .map((k) => `${node}@${k}`);
}

/**
 * Scripts run one at a time, after the event is published. A graceful stop
 * discards the queued runs and kills the running one (runDaemon calls
 * ScriptRunner.stop), so a node's scripts must have caught up before the test
 * stops it if every event is to have its run.
 */
function scriptsCaughtUp(of: readonly number[], timeoutMs = 15_000): Promise<void> {
  return watch.until(
    () => of.every((node) => scriptsPending(node).length === 0),
    () => `every published event to have run its script (pending: ${of.flatMap(scriptsPending).join(" ")})`,
    { timeoutMs, pollMs: 50 },
  );
}

beforeAll(async () => {
  requireBuild();
  server = await startTestNatsServer();
  proxy = await startTcpProxy(server.port);
  watch = await EventWatch.start(server.url);
  for (const node of ALL) {
    const script: [string, ...string[]] = [process.execPath, SCRIPT, scriptOutput(node)];
    const n = new DvsdNode({
      node,
      dir,
      natsUrl: node === PROXIED ? proxy.url : server.url,
      // One node reads JSON, the others YAML: the daemon takes either.
      format: node === PROXIED ? "json" : "yaml",
      config: {
        membership: { downAfterMs: DOWN_AFTER_MS },
        scripts: { JOIN: script, DISCONNECT: script, PARTITION: script, MERGE: script, timeoutMs: 5_000 },
        shutdown: { graceMs: 3_000 },
      },
    });
    nodes.set(node, n);
    n.start();
  }
  await converged(20_000);
}, 30_000);

afterAll(async () => {
  await Promise.all([...nodes.values()].map((n) => n.kill()));
  await watch?.close();
  await proxy?.close();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("membership across real dvsd processes", () => {
  it("reports a SIGKILLed node as PARTITION at every survivor, then DISCONNECT after downAfter", async () => {
    const victim = nodeOf(3);
    const incarnation = await incarnationOf(3);
    await scriptsCaughtUp([3]);
    const from = watch.mark();
    victim.signal("SIGKILL");

    const partitions = await watch.fromEach(
      others(3),
      both(named("PARTITION"), about(3, incarnation)),
      "PARTITION of node 3",
      { from },
    );
    const disconnects = await watch.fromEach(
      others(3),
      both(named("DISCONNECT"), about(3, incarnation)),
      "DISCONNECT of node 3",
      { from, timeoutMs: DOWN_AFTER_MS + 10_000 },
    );
    for (const survivor of others(3)) {
      const partition = partitions.get(survivor) as EventMessage;
      const disconnect = disconnects.get(survivor) as EventMessage;
      expect(partition.view.members).toEqual(others(3));
      expect(disconnect.cause).toBe("unreachable longer than downAfter");
      // Same observer, same clock: it waited downAfter between the two.
      expect(disconnect.at - partition.at).toBeGreaterThanOrEqual(DOWN_AFTER_MS);
    }

    await victim.process.exited();
    victim.start();
    await watch.fromEach(others(3), both(named("JOIN"), aboutLater(3, incarnation)), "JOIN of node 3", {
      from,
    });
    await converged();
  }, 30_000);

  it("reports a SIGSTOPped node as PARTITION and merges it back after SIGCONT; the stopped node declares nobody gone", async () => {
    const stopped = nodeOf(2);
    const incarnation = await incarnationOf(2);
    const from = watch.mark();
    stopped.signal("SIGSTOP");
    try {
      await watch.fromEach(
        others(2),
        both(named("PARTITION"), about(2, incarnation)),
        "PARTITION of node 2",
        {
          from,
        },
      );
    } finally {
      stopped.signal("SIGCONT");
    }
    await watch.fromEach(others(2), both(named("MERGE"), about(2, incarnation)), "MERGE of node 2", {
      from,
    });
    expect((await converged()).get(2)).toBe(incarnation);
    expect(watch.select(about(2), from).filter(named("DISCONNECT", "JOIN"))).toEqual([]);
    const lostByStopped = watch.select(
      both((e) => e.node === 2, named("PARTITION", "DISCONNECT")),
      from,
    );
    expect(lostByStopped, watch.describe(from)).toEqual([]);
  }, 30_000);

  it("sees a restarted node leave and come back as a higher incarnation", async () => {
    const restarted = nodeOf(1);
    const incarnation = await incarnationOf(1);
    await scriptsCaughtUp([1]);
    const from = watch.mark();
    expect(await restarted.stop()).toBe(0);
    const left = await watch.fromEach(
      others(1),
      both(named("DISCONNECT"), about(1, incarnation)),
      "DISCONNECT of node 1",
      { from },
    );
    for (const e of left.values()) expect(e.cause).toBe("left");

    restarted.start();
    await watch.fromEach(others(1), both(named("JOIN"), aboutLater(1, incarnation)), "JOIN of node 1", {
      from,
    });
    const own = await watch.fromEach(
      [1],
      (e) => e.incarnation > incarnation,
      "the first event of node 1's new incarnation",
      { from },
    );
    expect(own.get(1)).toMatchObject({ event: "JOIN", cause: "started" });
    expect((await converged()).get(1)).toBeGreaterThan(incarnation);
  }, 30_000);

  it("partitions both sides when a node's NATS link is cut, and merges them when it is restored", async () => {
    const incarnations = await converged();
    const incarnation = incarnations.get(PROXIED) as number;
    const from = watch.mark();
    proxy.cut();
    let restoredAt = Number.POSITIVE_INFINITY;
    try {
      // nats-server drops the cut node's subscriptions at once: the others' probes get "no responders".
      await watch.fromEach(
        others(PROXIED),
        both(named("PARTITION"), about(PROXIED, incarnation)),
        "PARTITION of node 4",
        { from },
      );
    } finally {
      proxy.restore();
      restoredAt = performance.now();
    }
    // The cut node saw it too; it could only tell the others once its link was back.
    const own = (
      await watch.fromEach(
        [PROXIED],
        both(named("PARTITION"), (e) => e.cause === "lost own NATS link"),
        "node 4's own PARTITION",
        { from },
      )
    ).get(PROXIED);
    expect(own?.view.members).toEqual([PROXIED]);
    expect(own?.changed.map((m) => m.node)).toEqual(others(PROXIED));
    expect(own?.receivedAt).toBeGreaterThanOrEqual(restoredAt);

    await watch.fromEach(
      others(PROXIED),
      both(named("MERGE"), about(PROXIED, incarnation)),
      "MERGE of node 4",
      { from },
    );
    const mergedAtCut = () =>
      new Set(
        watch
          .select((e) => e.node === PROXIED && e.event === "MERGE", from)
          .flatMap((e) => e.changed.map((m) => m.node)),
      );
    await watch.until(
      () => others(PROXIED).every((n) => mergedAtCut().has(n)),
      () => `MERGE of nodes ${others(PROXIED).join(", ")} at node 4 (merged so far: ${[...mergedAtCut()]})`,
      { from },
    );
    expect(await converged()).toEqual(incarnations);
  }, 30_000);

  it("sees a gracefully stopped node leave at once: DISCONNECT 'left', no PARTITION first", async () => {
    const leaving = nodeOf(3);
    const incarnation = await incarnationOf(3);
    await scriptsCaughtUp([3]);
    const from = watch.mark();
    expect(await leaving.stop()).toBe(0);
    const left = await watch.fromEach(
      others(3),
      both(named("DISCONNECT"), about(3, incarnation)),
      "DISCONNECT of node 3",
      { from },
    );
    for (const e of left.values()) expect(e.cause).toBe("left");
    expect(watch.select(both(named("PARTITION"), about(3)), from)).toEqual([]);

    leaving.start();
    await converged();
  }, 30_000);

  it("ran the configured script for every event, with the DVS_* environment and the event on stdin", async () => {
    await scriptsCaughtUp(ALL);

    const ranEvents = new Set<string>();
    for (const node of ALL) {
      const runs = scriptRuns(node);
      for (const { env, stdin } of runs) {
        ranEvents.add(stdin.event);
        expect(stdin.node).toBe(node);
        expect(env).toEqual({
          DVS_EVENT: stdin.event,
          DVS_NODE: String(node),
          DVS_INCARNATION: String(stdin.incarnation),
          DVS_VIEW_ID: String(stdin.view.id),
          DVS_MEMBERS: stdin.view.members.join(","),
          DVS_CHANGED: stdin.changed.map((m) => `${m.node}:${m.incarnation}`).join(","),
        });
      }
      // The script saw exactly what the bus carried.
      for (const event of watch.select((e) => e.node === node)) {
        const { receivedAt: _, ...onWire } = event;
        expect(runs.map((r) => r.stdin)).toContainEqual(onWire);
      }
    }
    expect([...ranEvents].sort()).toEqual(["DISCONNECT", "JOIN", "MERGE", "PARTITION"]);
    expect(watch.malformed).toEqual([]);
  }, 30_000);
});
