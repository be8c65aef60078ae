// The chaos run on real processes (SPEC 9, 10): 3 nats-servers in one
// JetStream cluster whose routes pass through TCP proxies, 6 `dvsd run` nodes
// spread over them, a client workload on every server recording each
// operation, and the seeded fault schedule. After each heal the run waits for
// one view of every node and one coordinator (within the settle bound), and at
// the end it checks the recorded history.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { monotonicFactory } from "ulid";
import { agreeOnView, collectStatus } from "../../client/clusterStatus.js";
import { DEV_USERS } from "../../client/credentials.js";
import { DvsClient } from "../../client/dvsClient.js";
import { bytesSource, FileClient, memorySink } from "../../client/fileClient.js";
import { type Answer, agreedCoordinator, RegistryClient } from "../../client/registryClient.js";
import { type NatsCluster, startNatsCluster } from "../../daemon/natsCluster.js";
import { ALL, type Rply } from "../../protocol/messages.js";
import { subjects } from "../../protocol/subjects.js";
import { actionStreamName, isNotFound } from "../../transport/actionLogJetStream.js";
import { randomInt, seededRandom, systemClock } from "../../transport/clock.js";
import { coordinatorBucketName } from "../../transport/kvJetStream.js";
import { connectNats, type NatsTransport } from "../../transport/nats.js";
import { snapshotBuild } from "../support/cli.js";
import { DvsdNode } from "../support/dvsdProcess.js";
import { EventWatch } from "../support/eventWatch.js";
import { natsConf } from "../support/natsServer.js";
import {
  type ActionHeld,
  type AllOp,
  type CommitOp,
  checkActions,
  checkAllReplies,
  checkCoordinators,
  checkFiles,
  checkSettles,
  crashLines,
  type Op,
  type Outcome,
  type SettleCheck,
  type UpdateOp,
  type ViewSeen,
  type Violation,
  type WhoOp,
} from "./history.js";
import { startRouteProxies } from "./routes.js";
import { describeFault, type Episode, type Fault, fingerprint, planSchedule } from "./schedule.js";
import { watchStream } from "./streamWatch.js";

export interface ChaosOptions {
  readonly seed: number;
  readonly durationMs: number;
  readonly servers?: number;
  readonly nodes?: number;
  /** From a heal to one view and one coordinator, at most. */
  readonly settleBoundMs?: number;
  /** Keep the run's directory (logs, stores) instead of removing it. */
  readonly keep?: boolean;
  readonly log?: (line: string) => void;
}

export interface ChaosResult {
  readonly seed: number;
  readonly schedule: readonly Episode[];
  readonly fingerprint: string;
  readonly settles: readonly SettleCheck[];
  readonly ops: readonly Op[];
  /** What dvsd did wrong. */
  readonly violations: readonly Violation[];
  /**
   * What nats-server did wrong under dvsd (replica-desync: a JetStream replica
   * that kept another record at an acknowledged one's sequence), reported apart.
   */
  readonly serverDefects: readonly Violation[];
  readonly counts: Readonly<Record<string, { ok: number; failed: number }>>;
  readonly elapsedMs: number;
  readonly dir: string;
}

const CLUSTER = "dvs";
/**
 * From a heal to one view and one coordinator, at most. The view is back
 * within 1-2 s; the coordinator can take much longer: the registry's KV
 * stream may have no leader for many seconds after a server rejoins (it
 * brings a higher Raft term), and a lease cannot be renewed without one.
 */
export const SETTLE_BOUND_MS = 60_000;
const SERVER_DEFECTS = new Set<Violation["check"]>(["replica-desync"]);
/** What a heal-to-settled phase is planned at: about what runs here take (1–2 s, `npm run chaos` prints them). */
export const SETTLE_ESTIMATE_MS = 1_500;
const FILES = ["chaos/a", "chaos/b", "chaos/c"];
/** Nodes 1 and 5 are active servers (the file store's workers), the rest passive (replica holders). */
const ACTIVE = new Set([1, 5]);

/** The run's episodes: a pure function of the seed and the duration (`npm run chaos -- --plan` prints them). */
export function chaosSchedule(seed: number, durationMs: number, servers = 3, nodes = 6): Episode[] {
  return planSchedule({ seed, servers, nodes, durationMs, settleEstimateMs: SETTLE_ESTIMATE_MS });
}

export async function runChaos(options: ChaosOptions): Promise<ChaosResult> {
  const log = options.log ?? (() => {});
  const servers = options.servers ?? 3;
  const nodeCount = options.nodes ?? 6;
  const settleBoundMs = options.settleBoundMs ?? SETTLE_BOUND_MS;
  const schedule = chaosSchedule(options.seed, options.durationMs, servers, nodeCount);
  const print = fingerprint(schedule);
  log(`seed ${options.seed}: ${schedule.length} episodes, schedule ${print}`);
  const dir = mkdtempSync(join(tmpdir(), "dvs-chaos-"));
  log(
    `run directory ${dir} (node logs written as they come; removed at the end unless a check failed or --keep)`,
  );
  // Every incarnation of every node runs this copy, whatever is rebuilt while the run lasts.
  const bin = snapshotBuild(dir);
  const t0 = performance.now();
  const now = () => performance.now() - t0;
  const epoch0 = performance.timeOrigin + t0;
  const ids = Array.from({ length: nodeCount }, (_, i) => i + 1);
  const homeOf = (node: number) => 1 + ((node - 1) % servers);

  const routes = await startRouteProxies(servers);
  let cluster: NatsCluster | undefined;
  const nodes: DvsdNode[] = [];
  const clients: NatsTransport[] = [];
  const watches: EventWatch[] = [];
  const violations: Violation[] = [];
  const ops: Op[] = [];
  const settles: SettleCheck[] = [];
  /** Nodes and servers the run stopped on purpose: their exits are not crashes. */
  const expectedExit = new Set<number>();
  try {
    cluster = await startNatsCluster({
      config: natsConf,
      servers,
      storeDir: join(dir, "nats"),
      clusterPorts: routes.clusterPorts,
      routeUrl: (from, to) => routes.routeUrl(from, to),
      hideClusterAddress: true,
    });
    const urls = cluster.urls;
    for (const node of ids) {
      const n = new DvsdNode({
        node,
        bin,
        natsUrl: urls[homeOf(node) - 1] as string,
        dir,
        logFile: join(dir, `node-${node}.log`),
        config: {
          cluster: CLUSTER,
          // Each node keeps to its own server, as on a host with a local nats-server: faults of
          // that server are faults of its nodes, for the whole run.
          nats: { discover: false },
          log: { level: "warn" },
          actions: { replicas: 3 },
          election: { replicas: 3, server: ACTIVE.has(node) ? "active" : "passive" },
          files: { replicationFactor: 3 },
        },
      });
      nodes.push(n);
      startNode(n, { expectedExit, violations, now });
    }
    for (const url of urls) {
      // Clients and watchers keep to their server too: each server's side of a cut is watched and used.
      clients.push(
        await connectNats({
          servers: [url],
          name: "chaos-client",
          ...DEV_USERS.admin,
          reconnectWaitMs: 100,
          discover: false,
        }),
      );
      watches.push(await EventWatch.start(url, CLUSTER, { discover: false }));
    }
    const first = await settle(clients, ids, 60_000);
    if (first.settledMs === undefined) throw new Error(`the cluster never formed: ${first.last}`);
    log(`cluster formed in ${Math.round(now())} ms`);

    const workload = startWorkload({ clients, ops, now, seed: options.seed, nodeCount });
    try {
      for (const episode of schedule) {
        const label = describeFault(episode.fault);
        const since = now();
        await apply(episode.fault, { cluster, routes, nodes, expectedExit, violations, now });
        await sleepMs(episode.holdMs);
        const healedAt = now();
        await heal(episode.fault, { cluster, routes, nodes, expectedExit, violations, now });
        // A node that died on its own never comes back: every later episode would wait out
        // the settle bound. Stop the schedule there; the checks still run on what was recorded.
        const crashes = violations.filter((v) => v.check === "crash");
        if (crashes.length > 0) {
          log(
            `#${episode.index} ${label}: schedule stopped, ${crashes.map((v) => v.message).join("; ")} [t=${Math.round(since / 1000)} s]`,
          );
          break;
        }
        // The registry's stream, sampled from the same moment: the server's part of the settle time.
        const stream = watchStream(
          clients.map((c) => c.connection),
          `KV_${coordinatorBucketName(CLUSTER)}`,
        );
        const result = await settle(clients, ids, settleBoundMs);
        const ready = await stream.stop();
        // Both clocks start once the heal is done, as settle's own.
        const streamMs = ready.readyMs;
        settles.push({
          episode: episode.index,
          kind: episode.fault.kind,
          fault: label,
          appliedAt: since,
          healedAt,
          boundMs: settleBoundMs,
          ...result,
          streamMs,
          stream: ready.state,
        });
        log(
          `#${episode.index} ${label}, held ${episode.holdMs} ms: ${
            result.settledMs === undefined
              ? `NOT SETTLED (${result.last})`
              : `one view ${result.viewMs} ms and one coordinator ${result.settledMs} ms after the heal`
          }; registry stream ready ${streamMs ?? "?"} ms (${ready.state}) [t=${Math.round(since / 1000)} s]`,
        );
        await sleepMs(episode.gapMs);
      }
    } finally {
      await workload.stop();
    }

    // The last word on every file, read after the last heal.
    const final = new Map<string, Outcome<{ version: number; sha256: string }>>();
    const files = fileClient(clients[0] as NatsTransport, 30_000);
    for (const name of FILES) {
      try {
        const got = await files.update(name, () => memorySink());
        final.set(name, { ok: true, value: { version: got.version, sha256: got.sha256 } });
      } catch (error) {
        final.set(name, { ok: false, error: errorText(error) });
      }
    }
    const answered = ops.flatMap((o) =>
      o.kind === "all" && o.outcome.ok && o.outcome.value.action !== undefined
        ? [o.outcome.value.action]
        : [],
    );
    const logged = await readActionReplicas((clients[0] as NatsTransport).connection, answered, 3, log);
    const views: ViewSeen[] = watches.flatMap((w) =>
      w.events.map((e) => ({
        node: e.node,
        incarnation: e.incarnation,
        members: e.view.members,
        // When the node changed its view, on its own clock (wall time at its start plus elapsed,
        // like ours): an event re-sent after a cut still says when it happened.
        at: e.at - epoch0,
      })),
    );
    writeFileSync(
      join(dir, "history.json"),
      JSON.stringify({
        seed: options.seed,
        schedule,
        settles,
        ops,
        views,
        final: [...final],
        logged: logged.size,
      }),
    );
    violations.push(
      ...checkSettles(settles),
      ...checkFiles(ops, final, workload.attempted),
      ...checkAllReplies(ops, views, ids),
      ...checkActions(ops, logged, 3),
      ...checkCoordinators(ops),
    );
  } finally {
    for (const n of nodes) {
      expectedExit.add(n.node);
      if (n.running) n.signal("SIGCONT");
    }
    await Promise.all(nodes.map((n) => n.stop(10_000).catch(() => n.kill())));
    for (const n of nodes) {
      const lines = crashLines(n.output());
      for (const line of lines.slice(0, 5)) {
        violations.push({ check: "crash", message: `node ${n.node}: ${line.slice(0, 400)}` });
      }
    }
    await Promise.all(watches.map((w) => w.close().catch(() => {})));
    await Promise.all(clients.map((c) => c.close().catch(() => {})));
    await cluster?.stop();
    await routes.close();
    if (!options.keep && violations.length === 0) rmSync(dir, { recursive: true, force: true });
  }
  const counts: Record<string, { ok: number; failed: number }> = {};
  for (const op of ops) {
    const c = counts[op.kind] ?? { ok: 0, failed: 0 };
    counts[op.kind] = c;
    if (op.outcome.ok) c.ok++;
    else c.failed++;
  }
  return {
    seed: options.seed,
    schedule,
    fingerprint: print,
    settles,
    ops,
    violations: violations.filter((v) => !SERVER_DEFECTS.has(v.check)),
    serverDefects: violations.filter((v) => SERVER_DEFECTS.has(v.check)),
    counts,
    elapsedMs: Math.round(now()),
    dir,
  };
}

interface Faultable {
  readonly cluster: NatsCluster;
  readonly routes: Awaited<ReturnType<typeof startRouteProxies>>;
  readonly nodes: readonly DvsdNode[];
  readonly expectedExit: Set<number>;
  readonly violations: Violation[];
  readonly now: () => number;
}

async function apply(fault: Fault, at: Faultable): Promise<void> {
  switch (fault.kind) {
    case "cut-route":
      at.routes.cut(fault.a, fault.b);
      return;
    case "isolate-server":
      at.routes.isolate(fault.server);
      return;
    case "kill-server":
      await at.cluster.kill(fault.server);
      return;
    case "kill-node": {
      const n = nodeAt(at, fault.node);
      at.expectedExit.add(n.node);
      await n.kill();
      return;
    }
    case "stop-node":
      nodeAt(at, fault.node).signal("SIGSTOP");
      return;
  }
}

async function heal(fault: Fault, at: Faultable): Promise<void> {
  switch (fault.kind) {
    case "cut-route":
    case "isolate-server":
      at.routes.restoreAll();
      return;
    case "kill-server":
      await at.cluster.start(fault.server);
      return;
    case "kill-node": {
      startNode(nodeAt(at, fault.node), at);
      return;
    }
    case "stop-node":
      nodeAt(at, fault.node).signal("SIGCONT");
      return;
  }
}

function nodeAt(at: Faultable, node: number): DvsdNode {
  const n = at.nodes[node - 1];
  if (!n) throw new RangeError(`no node ${node}`);
  return n;
}

/** Starts (or restarts) a node; an exit the run did not cause is a crash. */
function startNode(n: DvsdNode, at: Pick<Faultable, "expectedExit" | "violations" | "now">): void {
  at.expectedExit.delete(n.node);
  const child = n.start().child;
  child.once("exit", (code, signal) => {
    if (at.expectedExit.has(n.node)) return;
    at.violations.push({
      check: "crash",
      message: `node ${n.node} exited on its own (${signal ?? `code ${code}`}) at t=${Math.round(at.now())} ms`,
    });
  });
}

/**
 * Polls until every node, asked through every server, reports one view of
 * all of them, and every node's registry names one coordinator.
 */
async function settle(
  clients: readonly NatsTransport[],
  ids: readonly number[],
  boundMs: number,
): Promise<{
  settledMs: number | undefined;
  viewMs: number | undefined;
  last: string;
  whoTrail: string[];
}> {
  const started = performance.now();
  let last = "nothing asked yet";
  let viewMs: number | undefined;
  const whoTrail: string[] = [];
  let lastWho = "";
  while (performance.now() - started < boundMs) {
    const views = await Promise.all(
      clients.map((c) => collectStatus(c, { cluster: CLUSTER, timeoutMs: 600 }).catch(() => undefined)),
    );
    const agreed = views.every((s) => s !== undefined && agreeOnView(s.nodes, ids));
    if (agreed) viewMs ??= Math.round(performance.now() - started);
    if (!agreed) {
      last = views
        .map((s, i) =>
          s === undefined
            ? `s${i + 1}: no answer`
            : `s${i + 1}: ${s.nodes.map((n) => `${n.node}[${n.view.members.join(",")}]`).join(" ")}`,
        )
        .join("; ");
    } else {
      const registry = new RegistryClient({
        cluster: CLUSTER,
        transport: clients[0] as NatsTransport,
        clock: systemClock,
        timeoutMs: 600,
      });
      const answers = await Promise.all(
        ids.map((n) =>
          registry.who(n).catch((e: unknown) => (e instanceof Error ? e : new Error(String(e)))),
        ),
      );
      const one = agreedCoordinator(answers);
      if (one) return { settledMs: Math.round(performance.now() - started), viewMs, last: "", whoTrail };
      const who = answers.map((a, i) => `${ids[i]}→${describeAnswer(a)}`).join(" ");
      // What held the coordinator back, each change once (the trail stays short).
      if (who !== lastWho && whoTrail.length < 20)
        whoTrail.push(`${Math.round(performance.now() - started)} ms: ${who}`);
      lastWho = who;
      last = `one view; WHO answers: ${who}`;
    }
    await sleepMs(200);
  }
  return { settledMs: undefined, viewMs, last, whoTrail };
}

function describeAnswer(a: Answer | Error): string {
  if (a instanceof Error) return a.name;
  return a.type === "OK" ? `${a.coordinator}@${a.epoch}` : a.type;
}

function fileClient(transport: NatsTransport, deadlineMs: number): FileClient {
  const ulid = monotonicFactory();
  return new FileClient({
    transport,
    subjects: subjects(CLUSTER),
    clock: systemClock,
    newCommitId: () => ulid(),
    requestTimeoutMs: 3_000,
    deadlineMs,
  });
}

interface Workload {
  /** Every content's SHA-256 a commit sent, per file. */
  readonly attempted: Map<string, Set<string>>;
  stop(): Promise<void>;
}

/**
 * The clients: ALL requests with action ids, COMMITs and UPDATEs of a few
 * files, WHO to each node's registry, spread over the servers' connections;
 * each operation is recorded with its outcome.
 */
function startWorkload(o: {
  clients: readonly NatsTransport[];
  ops: Op[];
  now: () => number;
  seed: number;
  nodeCount: number;
}): Workload {
  const random = seededRandom(o.seed ^ 0x5eed);
  const pick = <T>(xs: readonly T[]): T => xs[randomInt(random, xs.length)] as T;
  const ulid = monotonicFactory();
  const attempted = new Map<string, Set<string>>();
  let nextId = 0;
  let stopping = false;
  let commits = 0;
  const loop = async (everyMs: number, step: () => Promise<void>) => {
    while (!stopping) {
      await step().catch(() => {});
      await sleepMs(everyMs);
    }
  };
  const record = async <T>(
    make: (id: number, issuedAt: number, settledAt: number, outcome: Outcome<T>) => Op,
    run: () => Promise<T>,
  ) => {
    const id = nextId++;
    const issuedAt = o.now();
    let outcome: Outcome<T>;
    try {
      outcome = { ok: true, value: await run() };
    } catch (error) {
      outcome = { ok: false, error: errorText(error) };
    }
    o.ops.push(make(id, issuedAt, o.now(), outcome));
  };

  const all = async () => {
    const client = randomInt(random, o.clients.length);
    const type = pick(["GETNODEINFO", "GETDVSINFO"]);
    const dvs = new DvsClient(o.clients[client] as NatsTransport, {
      cluster: CLUSTER,
      clientId: "chaos",
      timeoutMs: 5_000,
    });
    await record<NonNullable<Extract<AllOp["outcome"], { ok: true }>["value"]>>(
      (id, issuedAt, settledAt, outcome) => ({ kind: "all", id, client, type, issuedAt, settledAt, outcome }),
      async () => {
        const rply = await dvs.request(type, {}, { dst: ALL, action: ulid(), gatherTimeoutMs: 1_500 });
        const entries = Array.isArray(rply.data) ? (rply.data as Rply[]) : [];
        return {
          src: Number(rply.src),
          count: rply.count,
          entries: entries.map((e) => ({ src: e.src, rcode: e.rcode })),
          ...(rply.action !== undefined ? { action: rply.action } : {}),
        };
      },
    );
  };
  const commit = async () => {
    const name = pick(FILES);
    const n = ++commits;
    const bytes = new TextEncoder().encode(`${name} commit ${n} of seed ${o.seed}\n`.repeat(64));
    const source = bytesSource(bytes);
    const seen = attempted.get(name) ?? new Set<string>();
    attempted.set(name, seen);
    seen.add(source.sha256);
    const files = fileClient(pick(o.clients), 10_000);
    await record<{ version: number; holders: readonly number[] }>(
      (id, issuedAt, settledAt, outcome) =>
        ({
          kind: "commit",
          id,
          name,
          sha256: source.sha256,
          issuedAt,
          settledAt,
          outcome,
        }) satisfies CommitOp,
      async () => {
        const done = await files.commit(name, source);
        return { version: done.version, holders: done.holders };
      },
    );
  };
  const update = async () => {
    const name = pick(FILES);
    const files = fileClient(pick(o.clients), 6_000);
    await record<{ version: number; sha256: string }>(
      (id, issuedAt, settledAt, outcome) =>
        ({ kind: "update", id, name, issuedAt, settledAt, outcome }) satisfies UpdateOp,
      async () => {
        const got = await files.update(name, () => memorySink());
        return { version: got.version, sha256: got.sha256 };
      },
    );
  };
  const who = async () => {
    const node = 1 + randomInt(random, o.nodeCount);
    const registry = new RegistryClient({
      cluster: CLUSTER,
      transport: pick(o.clients),
      clock: systemClock,
      timeoutMs: 1_000,
    });
    await record<{ coordinator: number; epoch: number } | "NOTHING">(
      (id, issuedAt, settledAt, outcome) =>
        ({ kind: "who", id, node, issuedAt, settledAt, outcome }) satisfies WhoOp,
      async () => {
        const a = await registry.who(node);
        return a.type === "OK" ? { coordinator: a.coordinator, epoch: a.epoch } : "NOTHING";
      },
    );
  };
  const loops = [loop(400, all), loop(900, commit), loop(700, update), loop(300, who)];
  return {
    attempted,
    async stop() {
      stopping = true;
      await Promise.all(loops);
    },
  };
}

/**
 * Which replicas of the action log hold each action's request and outcome:
 * every replica is read in turn while it leads the stream (a leader answers
 * message reads from its own copy), stepping the leader down between reads.
 */
async function readActionReplicas(
  nc: NatsConnection,
  actions: readonly string[],
  replicas: number,
  log: (line: string) => void,
): Promise<Map<string, ActionHeld>> {
  const deadline = performance.now() + 90_000;
  // Right after a server's kill the JetStream API waits for a new meta leader (Raft: 4–9 s on 2.9.10).
  let jsm: Awaited<ReturnType<typeof jetstreamManager>> | undefined;
  while (jsm === undefined) {
    jsm = await jetstreamManager(nc, { timeout: 5_000 }).catch((error: unknown) => {
      if (performance.now() >= deadline) throw error;
      return undefined;
    });
    if (jsm === undefined) await sleepMs(500);
  }
  const stream = actionStreamName(CLUSTER);
  const held = new Map<string, { request: number; outcome: number }>(
    actions.map((a) => [a, { request: 0, outcome: 0 }]),
  );
  const leader = async (): Promise<string | undefined> =>
    jsm.streams.info(stream).then(
      (i) => i.cluster?.leader,
      () => undefined,
    );
  const has = (subject: string) =>
    jsm.streams.getMessage(stream, { last_by_subj: subject }).then(
      (m) => m !== null,
      (error: unknown) => {
        if (isNotFound(error)) return false;
        throw error;
      },
    );
  const visited: string[] = [];
  while (visited.length < replicas && performance.now() < deadline) {
    const at = await leader();
    if (at !== undefined && !visited.includes(at)) {
      const counts = new Map<string, { request: boolean; outcome: boolean }>();
      try {
        await inBatches(actions, 16, async (a) => {
          // Any author: each record names the node that wrote it (`actions.<node>.<action>…`).
          const base = `dvs.${CLUSTER}.actions.*.${a}`;
          counts.set(a, { request: await has(`${base}.request`), outcome: await has(`${base}.outcome`) });
        });
      } catch {
        continue; // leadership moved while reading: read this replica again
      }
      if ((await leader()) === at) {
        visited.push(at);
        for (const [a, c] of counts) {
          const h = held.get(a) as { request: number; outcome: number };
          if (c.request) h.request++;
          if (c.outcome) h.outcome++;
        }
      }
    }
    if (visited.length >= replicas) break;
    await nc.request(`$JS.API.STREAM.LEADER.STEPDOWN.${stream}`, "", { timeout: 5_000 }).catch(() => {});
    const from = at;
    const until = performance.now() + 10_000;
    while (performance.now() < until && (await leader()) === from) await sleepMs(200);
  }
  log(`action log: ${actions.length} answered actions read on replicas ${visited.join(", ")}`);
  if (visited.length < replicas)
    throw new Error(`read only ${visited.length} of ${replicas} action log replicas`);
  return held;
}

async function inBatches<T>(
  items: readonly T[],
  width: number,
  each: (item: T) => Promise<void>,
): Promise<void> {
  for (let i = 0; i < items.length; i += width) await Promise.all(items.slice(i, i + width).map(each));
}

function errorText(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`.slice(0, 300);
  return String(error).slice(0, 300);
}

function sleepMs(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
