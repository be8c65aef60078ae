// The file store's bench cluster (SPEC 8), not a row itself: five `dvsd run`
// processes on the run's nats-server — nodes 1-3 active, 4-5 passive, default
// file settings (replication factor 3) — and an in-process FileClient
// connected as admin. Ready once every node agrees on one view, every registry
// names one coordinator, every server has broadcast an ALIVE since (so each
// knows the others) and a commit lands on both passive servers.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Committed, FileClient, type FileSource } from "../../client/fileClient.js";
import { agreedCoordinator, type Coordinator, RegistryClient } from "../../client/registryClient.js";
import { devNodeCredentials } from "../../daemon/credentials.js";
import { dvsdRunArgs } from "../../daemon/nodeFlags.js";
import { decode } from "../../protocol/codec.js";
import { FileStoreError } from "../../protocol/files.js";
import { type ServerMessage, serverMessageSchema } from "../../protocol/messages.js";
import { subjects } from "../../protocol/subjects.js";
import { sleep, systemClock } from "../../transport/clock.js";
import { UnexpectedReplyError } from "../errors.js";
import type { BenchContext } from "../row.js";
import { BENCH_NODE_CONFIG, DvsdCluster } from "./dvsdCluster.js";

const ACTIVE = [1, 2, 3] as const;
const PASSIVE = [4, 5] as const;
/** The default `files.replicationFactor`: every SUCCESS names this many holders. */
export const REPLICATION_FACTOR = 3;

/** Printed with each file row, so the setup behind the figures is never hidden. */
export const FILE_CLUSTER_NOTE = `${ACTIVE.length + PASSIVE.length} dvsd processes (nodes ${ACTIVE.join(",")} active, ${PASSIVE.join(",")} passive), default settings (replication factor ${REPLICATION_FACTOR}, fsync on every holder before DONE); client: FileClient in the bench process, admin user`;

/** How the cluster got ready to take commits, after every registry named the coordinator. */
export interface Warmup {
  /** From every server's ALIVE to the first SUCCESS held by both passive servers. */
  readonly ms: number;
  /** Commits answered ENOSPC meanwhile. */
  readonly refused: number;
  /** Commits answered SUCCESS meanwhile (the last one on both passives). */
  readonly commits: number;
}

export interface FileCluster {
  readonly client: FileClient;
  readonly coordinator: Coordinator;
  readonly cluster: DvsdCluster;
  readonly ready: Warmup;
}

/** One line for a row's notes: the coordinator and how the store got ready. */
export function describeReady(c: FileCluster): string {
  return `coordinator ${c.coordinator.coordinator}@${c.coordinator.epoch}; first commit on both passives ${Math.round(c.ready.ms)} ms after every server's ALIVE named it (${c.ready.refused} ENOSPC, ${c.ready.commits} SUCCESS before timing)`;
}

/**
 * Starts the cluster named `name` (its own subjects and registry bucket) and
 * returns once a COMMIT of `probe` succeeds with both passive servers among
 * its holders, which shows the active servers place replicas as SPEC 8 says.
 */
export async function startFileCluster(
  ctx: BenchContext,
  name: string,
  probe: { readonly name: string; readonly source: FileSource },
): Promise<FileCluster> {
  const cluster = await DvsdCluster.create(ctx, { nodes: ACTIVE.length, cluster: name });
  const alive = watchAlive(cluster, name);
  cluster.startAll();
  startPassives(ctx, name);
  const nodes = [...ACTIVE, ...PASSIVE];
  ctx.progress(`waiting for ${nodes.length} nodes to agree on one view`);
  await cluster.converged(nodes, 30_000);

  const transport = await ctx.connect(`bench-${name}-client`);
  const registry = new RegistryClient({ cluster: name, transport, clock: systemClock, timeoutMs: 250 });
  const coordinator = await agreedOnCoordinator(ctx, registry, nodes, 15_000);
  ctx.progress(`coordinator ${coordinator.coordinator}@${coordinator.epoch}; waiting for every ALIVE`);
  // A server learns of those started before it from their ALIVE, sent on the coordinator's STATUS
  // (every 1 s): until then an active server may place replicas on itself alone and answer ENOSPC.
  await ctx.within(5_000, "an ALIVE from every server naming the coordinator", alive(nodes, coordinator));

  let commits = 0;
  const client = new FileClient({
    transport,
    subjects: subjects(name),
    clock: systemClock,
    newCommitId: () => `bench-${++commits}`,
  });
  const ready = await onPassives(ctx, client, probe, 15_000);
  if (ready.refused > 0) ctx.progress(`${ready.refused} ENOSPC before the store knew enough servers`);
  return { client, coordinator, cluster, ready };
}

/**
 * Nodes 4 and 5 with `election.server: passive`, launched like DvsdCluster
 * launches its nodes (which takes one set of flags for every node).
 */
function startPassives(ctx: BenchContext, name: string): void {
  const dir = ctx.tempDir(`dvs-bench-${name}-passive-`);
  const config = join(dir, "passive.yaml");
  writeFileSync(config, `${BENCH_NODE_CONFIG}election:\n  server: passive\n`);
  for (const node of PASSIVE) {
    ctx.spawn(
      process.execPath,
      dvsdRunArgs({
        bin: join(ctx.repoRoot, "dist/bin/dvsd.js"),
        node,
        cluster: name,
        nats: ctx.url,
        config,
        state: join(dir, `node-${node}`),
        logLevel: "warn",
        flags: ctx.nodeFlags,
      }),
      {
        env: {
          ...process.env,
          DVS_PARENT_PID: String(process.pid),
          // Each node as itself (the bench's server has a user per node id, for any cluster).
          DVS_NATS_USER: devNodeCredentials(node).user,
          DVS_NATS_PASS: devNodeCredentials(node).pass,
        },
      },
    );
  }
}

/**
 * Watches the servers' broadcasts; the function it returns resolves once each
 * of `nodes` has broadcast an ALIVE naming `coordinator` since it was called.
 */
function watchAlive(
  cluster: DvsdCluster,
  name: string,
): (nodes: readonly number[], coordinator: Coordinator) => Promise<void> {
  const waiters = new Set<(m: ServerMessage) => void>();
  cluster.connection.subscribe(subjects(name).servers, {
    callback: (err, msg) => {
      if (err) return;
      const decoded = decode(msg.data, "cbor");
      const parsed = decoded.ok ? serverMessageSchema.safeParse(decoded.value) : undefined;
      if (parsed?.success) for (const w of waiters) w(parsed.data);
    },
  });
  return (nodes, coordinator) =>
    new Promise<void>((resolve) => {
      const missing = new Set(nodes);
      const waiter = (m: ServerMessage) => {
        if (m.type === "ALIVE" && m.coordinator === coordinator.coordinator) missing.delete(m.from);
        if (missing.size > 0) return;
        waiters.delete(waiter);
        resolve();
      };
      waiters.add(waiter);
    });
}

/** Resolves once every node's registry answers WHO with one coordinator and epoch. */
async function agreedOnCoordinator(
  ctx: BenchContext,
  registry: RegistryClient,
  nodes: readonly number[],
  timeoutMs: number,
): Promise<Coordinator> {
  let last: string[] = [];
  let gaveUp = false;
  const poll = async (): Promise<Coordinator> => {
    while (!gaveUp) {
      const answers = await Promise.all(nodes.map((n) => registry.who(n).catch((error: Error) => error)));
      last = answers.map(
        (a, i) =>
          `${nodes[i]}: ${a instanceof Error ? a.name : a.type === "OK" ? `${a.coordinator}@${a.epoch}` : a.type}`,
      );
      const agreed = agreedCoordinator(answers);
      if (agreed !== undefined) return agreed;
      await sleep(systemClock, 50);
    }
    throw new Error("gave up");
  };
  try {
    return await ctx.within(timeoutMs, "every registry naming one coordinator", poll());
  } catch (error) {
    throw Object.assign(error as Error, {
      message: `${(error as Error).message}; last answers: ${last.join("; ")}`,
    });
  } finally {
    gaveUp = true;
  }
}

/**
 * Commits `probe` until a SUCCESS names both passive servers among its
 * holders. ENOSPC ("only 1 of 3 servers hold …") is retried and counted: it
 * means an active server knew too few servers, which the ALIVE round before
 * should have ruled out.
 */
async function onPassives(
  ctx: BenchContext,
  client: FileClient,
  probe: { readonly name: string; readonly source: FileSource },
  timeoutMs: number,
): Promise<Warmup> {
  const started = performance.now();
  let holders: readonly number[] = [];
  let refused = 0;
  let commits = 0;
  let gaveUp = false;
  const attempt = async () => {
    while (!gaveUp) {
      let answer: Committed;
      try {
        answer = await client.commit(probe.name, probe.source);
      } catch (error) {
        if (!(error instanceof FileStoreError && error.code === "ENOSPC")) throw error;
        refused++;
        await sleep(systemClock, 50);
        continue;
      }
      commits++;
      holders = answer.holders;
      if (holders.length !== REPLICATION_FACTOR) {
        throw new UnexpectedReplyError(
          "COMMIT",
          `SUCCESS with ${holders.length} holders, not ${REPLICATION_FACTOR}`,
        );
      }
      if (PASSIVE.every((p) => holders.includes(p))) return;
      await sleep(systemClock, 50);
    }
  };
  try {
    await ctx.within(timeoutMs, "a commit held by both passive servers", attempt());
  } catch (error) {
    throw Object.assign(error as Error, {
      message: `${(error as Error).message}; last holders: ${holders.join(",")}`,
    });
  } finally {
    gaveUp = true;
  }
  return { ms: performance.now() - started, refused, commits };
}
