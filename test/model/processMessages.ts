// Model of process message delivery (docs/processes.md, section 5): requesters
// SEND numbered messages to a recorder process through any of three nodes while
// the model cuts nodes' NATS links and the route between the two servers,
// crashes and restarts nodes (their snapshot stores survive), moves the
// recorder around (MIGRATE) and lets simulated time pass. At quiescence (faults
// healed, every reply in), the invariants: no SEND answered OK is lost, none is
// delivered twice, each sender's messages arrive in order, the recorder runs on
// exactly one node; then, under a lossy link (20%) from the recorder's host, every
// SEND is answered OK (the proxies resend what is lost).
import fc from "fast-check";
import { MemorySnapshotStore } from "../../actors/processes/processStore.js";
import type { ProcUsr } from "../../actors/processes/procInfo.js";
import type { ProcessRuntimeOptions } from "../../actors/processes/runtime.js";
import type { ProcessTimings } from "../../actors/processes/timings.js";
import { DvsClient } from "../../client/dvsClient.js";
import type { NodeId, Rply } from "../../protocol/messages.js";
import type { ProcessRecord } from "../../protocol/processes.js";
import { ProcessCluster } from "../support/processCluster.js";
import type { RecorderContext } from "../support/processMachines.js";

const NODES = [1, 2, 3] as const;
type Node = (typeof NODES)[number];
const RECORDER = 10;
const CLIENTS = ["tool-a", "tool-b"] as const;
const CLIENT_TIMEOUT_MS = 4_000;

/** Short, so that cuts outlast the give-up and scenarios stay quick. */
export const MODEL_TIMINGS: Partial<ProcessTimings> = {
  resendMs: 40,
  maxResendMs: 160,
  giveUpMs: 1_200,
  migrationTimeoutMs: 300,
  abortGiveUpMs: 60_000,
  persistDebounceMs: 50,
  durableDelayMs: 2,
  stopTimeoutMs: 500,
};

/** A planted bug: faulty parts swapped into every runtime. */
export type ProcessMutation = Pick<ProcessRuntimeOptions, "proxyMachine" | "mailboxes">;

/** What the commands track to keep their preconditions. */
export interface Model {
  crashed: Set<Node>;
  cutLinks: Set<Node>;
  routeCut: boolean;
}

interface SendRecord {
  readonly body: number;
  readonly label: string;
  readonly what: string;
  reply: Rply | "timeout" | undefined;
}

/** What one scenario did, for the CLI's coverage line. */
export interface ProcessCoverage {
  sends: number;
  ok: number;
  errors: number;
  timeouts: number;
  migrations: number;
  migrated: number;
  crashes: number;
  linkCuts: number;
  routeCuts: number;
  resent: number;
  gaveUp: number;
}

export const emptyProcessCoverage = (): ProcessCoverage => ({
  sends: 0,
  ok: 0,
  errors: 0,
  timeouts: 0,
  migrations: 0,
  migrated: 0,
  crashes: 0,
  linkCuts: 0,
  routeCuts: 0,
  resent: 0,
  gaveUp: 0,
});

/** The snapshot stores of the nodes, surviving crashes; each run of a node writes through a fence a crash closes. */
class Disks {
  readonly #stores = new Map<NodeId, MemorySnapshotStore>();
  readonly #fences = new Map<NodeId, { open: boolean }>();

  of(node: NodeId) {
    const store = this.#stores.get(node) ?? new MemorySnapshotStore();
    this.#stores.set(node, store);
    const fence = { open: true };
    this.#fences.set(node, fence);
    return {
      save: async (r: ProcessRecord) => (fence.open ? store.save(r) : undefined),
      remove: async (dcid: number, endpoint: number) =>
        fence.open ? store.remove(dcid, endpoint) : undefined,
      load: () => store.load(),
    };
  }

  /** What the crashed run of `node` had under way is never written. */
  crash(node: NodeId): void {
    const fence = this.#fences.get(node);
    if (fence) fence.open = false;
  }
}

export class World {
  readonly clients: Record<string, DvsClient>;
  readonly sends: SendRecord[] = [];
  readonly migrations: { what: string; reply: Promise<Rply | "timeout"> }[] = [];
  readonly pending: Promise<unknown>[] = [];
  readonly trace: string[] = [];
  readonly coverage = emptyProcessCoverage();
  #body = 0;

  constructor(
    readonly c: ProcessCluster,
    readonly disks: Disks,
  ) {
    const client = (id: string) =>
      new DvsClient(c.network.connect(id), { cluster: "dvs", clientId: id, timeoutMs: CLIENT_TIMEOUT_MS });
    this.clients = Object.fromEntries([...CLIENTS, "driver", "probe"].map((id) => [id, client(id)]));
  }

  /** A SEND of a new body to the recorder, through node `via`, recorded with its answer. */
  send(client: string, via: Node): SendRecord {
    const record: SendRecord = {
      body: ++this.#body,
      label: `${client} via ${via}`,
      what: "",
      reply: undefined,
    };
    Object.assign(record, { what: `send #${record.body} ${record.label}` });
    this.sends.push(record);
    this.trace.push(`${this.c.clock.now()}: ${record.what}`);
    const reply = this.clients[client]!.request(
      "SEND",
      { dcid: 1, endpoint: RECORDER, body: record.body },
      { dst: via },
    ).then(
      (r) => r,
      () => "timeout" as const,
    );
    this.pending.push(
      reply.then((r) => {
        record.reply = r;
        this.trace.push(`${this.c.clock.now()}: #${record.body} -> ${r === "timeout" ? r : r.rcode}`);
      }),
    );
    return record;
  }
}

class Send implements fc.AsyncCommand<Model, World> {
  constructor(
    readonly client: (typeof CLIENTS)[number],
    readonly via: Node,
  ) {}
  check = () => true;
  async run(_m: Model, w: World) {
    w.send(this.client, this.via);
  }
  toString = () => `send ${this.client} via ${this.via}`;
}

class Migrate implements fc.AsyncCommand<Model, World> {
  constructor(
    readonly to: Node,
    readonly via: Node,
  ) {}
  check = () => true;
  async run(_m: Model, w: World) {
    const reply = w.clients
      .driver!.request("MIGRATE", { dcid: 1, endpoint: RECORDER, to: this.to }, { dst: this.via })
      .then(
        (r) => r,
        () => "timeout" as const,
      );
    w.coverage.migrations++;
    w.migrations.push({ what: this.toString(), reply });
    w.pending.push(
      reply.then((r) => {
        if (r !== "timeout" && r.rcode === 0) w.coverage.migrated++;
        w.trace.push(`${w.c.clock.now()}: ${this} -> ${r === "timeout" ? r : r.rcode}`);
      }),
    );
    w.trace.push(`${w.c.clock.now()}: ${this}`);
  }
  toString = () => `migrate to ${this.to} via ${this.via}`;
}

class CutLink implements fc.AsyncCommand<Model, World> {
  constructor(readonly node: Node) {}
  check = (m: Readonly<Model>) => !m.cutLinks.has(this.node) && !m.crashed.has(this.node);
  async run(m: Model, w: World) {
    m.cutLinks.add(this.node);
    w.coverage.linkCuts++;
    w.c.network.cutLink(w.c.at(this.node).name);
    w.trace.push(`${w.c.clock.now()}: ${this}`);
  }
  toString = () => `cut link of ${this.node}`;
}

class RestoreLink implements fc.AsyncCommand<Model, World> {
  constructor(readonly node: Node) {}
  check = (m: Readonly<Model>) => m.cutLinks.has(this.node);
  async run(m: Model, w: World) {
    m.cutLinks.delete(this.node);
    w.c.network.restoreLink(w.c.at(this.node).name);
    rejoinSoon(w, [this.node]);
    w.trace.push(`${w.c.clock.now()}: ${this}`);
  }
  toString = () => `restore link of ${this.node}`;
}

class CutRoute implements fc.AsyncCommand<Model, World> {
  check = (m: Readonly<Model>) => !m.routeCut;
  async run(m: Model, w: World) {
    m.routeCut = true;
    w.coverage.routeCuts++;
    w.c.network.cutRoute(0, 1);
    w.trace.push(`${w.c.clock.now()}: ${this}`);
  }
  toString = () => "cut route 0-1";
}

class RestoreRoute implements fc.AsyncCommand<Model, World> {
  check = (m: Readonly<Model>) => m.routeCut;
  async run(m: Model, w: World) {
    m.routeCut = false;
    w.c.network.restoreRoute(0, 1);
    rejoinSoon(w, [2]);
    w.trace.push(`${w.c.clock.now()}: ${this}`);
  }
  toString = () => "restore route 0-1";
}

class Crash implements fc.AsyncCommand<Model, World> {
  constructor(readonly node: Node) {}
  check = (m: Readonly<Model>) => m.crashed.size === 0 && !m.cutLinks.has(this.node);
  async run(m: Model, w: World) {
    m.crashed.add(this.node);
    w.coverage.crashes++;
    w.disks.crash(this.node);
    w.c.crash(this.node);
    w.trace.push(`${w.c.clock.now()}: ${this}`);
  }
  toString = () => `crash ${this.node}`;
}

class Restart implements fc.AsyncCommand<Model, World> {
  constructor(readonly node: Node) {}
  check = (m: Readonly<Model>) => m.crashed.has(this.node);
  async run(m: Model, w: World) {
    m.crashed.delete(this.node);
    await restart(w, this.node);
    w.trace.push(`${w.c.clock.now()}: ${this}`);
  }
  toString = () => `restart ${this.node}`;
}

class Advance implements fc.AsyncCommand<Model, World> {
  constructor(readonly ms: number) {}
  check = () => true;
  async run(_m: Model, w: World) {
    await w.c.clock.advance(this.ms);
  }
  toString = () => `advance ${this.ms}`;
}

/** A crashed node's new run: restores from its store, and rejoins. */
async function restart(w: World, node: Node): Promise<void> {
  await w.c.restartCrashed(node);
  rejoinSoon(w, [node]);
}

/**
 * What membership does once `nodes` are reachable again (a restart, a healed
 * cut): each side sees the other leave and join, and re-announces the
 * processes it hosts. After the reconnect wait, as a real view change comes.
 */
function rejoinSoon(w: World, nodes: readonly Node[]): void {
  w.c.clock.setTimeout(() => {
    for (const node of nodes) {
      for (const other of NODES) {
        if (other === node) continue;
        w.c.setView(
          other,
          NODES.filter((n) => n !== node),
        );
        w.c.setView(other, [...NODES]);
      }
      w.c.setView(node, [node]);
      w.c.setView(node, [...NODES]);
    }
  }, 400);
}

const node = fc.constantFrom<Node>(...NODES);
const send = fc.tuple(fc.constantFrom(...CLIENTS), node).map(([c, v]) => new Send(c, v));
/** Sends are listed more than once: fc.commands picks among the entries evenly. */
export const processCommands = [
  send,
  send,
  send,
  send,
  fc.tuple(node, node).map(([t, v]) => new Migrate(t, v)),
  node.map((n) => new CutLink(n)),
  node.map((n) => new RestoreLink(n)),
  fc.constant(new CutRoute()),
  fc.constant(new RestoreRoute()),
  node.map((n) => new Crash(n)),
  node.map((n) => new Restart(n)),
  fc.integer({ min: 0, max: 400 }).map((ms) => new Advance(ms)),
  fc.integer({ min: 500, max: 1_500 }).map((ms) => new Advance(ms)),
];

/** Advances simulated time until `promise` settles. */
async function drive<T>(c: ProcessCluster, promise: Promise<T>): Promise<T> {
  let settled = false;
  const done = promise.finally(() => {
    settled = true;
  });
  for (let i = 0; i < 2_000 && !settled; i++) await c.clock.advance(10);
  return done;
}

/** A broken invariant, with what the scenario did. */
export class ProcessModelViolation extends Error {
  override readonly name = "ProcessModelViolation";
  constructor(
    readonly invariant: string,
    readonly trace: readonly string[],
  ) {
    super(`${invariant}\n--- trace ---\n${trace.join("\n")}`);
  }
}

export interface ScenarioOptions {
  readonly seed: number;
  readonly mutation?: ProcessMutation;
  readonly onCoverage?: (coverage: ProcessCoverage) => void;
}

export async function runProcessScenario(
  o: ScenarioOptions,
  cmds: Iterable<fc.AsyncCommand<Model, World>>,
): Promise<void> {
  const disks = new Disks();
  const c = new ProcessCluster({
    seed: o.seed,
    nodes: NODES,
    servers: 2,
    dcs: { 1: NODES },
    latencyMs: { min: 1, max: 5 },
    timings: MODEL_TIMINGS,
    snapshots: (n) => disks.of(n),
    ...(o.mutation ? { runtime: o.mutation } : {}),
  });
  await c.start();
  const w = new World(c, disks);
  const spawned = await drive(c, c.request(1, "SPAWN", { dcid: 1, endpoint: RECORDER, machine: "recorder" }));
  if (spawned.rcode !== RECORDER) throw new Error(`spawn answered ${spawned.rcode}`);
  await c.clock.advance(100);
  const model: Model = { crashed: new Set(), cutLinks: new Set(), routeCut: false };
  await fc.asyncModelRun(() => ({ model, real: w }), cmds);

  // Quiescence: every fault healed, every answer in, every gap a give-up left past its timeout.
  for (const n of model.cutLinks) c.network.restoreLink(c.at(n).name);
  if (model.routeCut) c.network.restoreRoute(0, 1);
  for (const n of model.crashed) await c.restartCrashed(n);
  rejoinSoon(w, [...new Set([...model.cutLinks, ...model.crashed, ...(model.routeCut ? [2 as const] : [])])]);
  w.trace.push(`${c.clock.now()}: healed`);
  await drive(c, Promise.all(w.pending));
  await c.clock.advance((MODEL_TIMINGS.giveUpMs ?? 0) + 5_000 + 1_000);
  const fail = (invariant: string): never => {
    const state = NODES.flatMap((n) =>
      c
        .at(n)
        .runtime.processes()
        .map((p) => {
          const { context: _context, ...rest } = p;
          return `node ${n}: ${JSON.stringify(rest)}`;
        }),
    );
    const pairs = NODES.flatMap((n) =>
      c
        .at(n)
        .runtime.proxyStats()
        .map(
          (p) =>
            `node ${n} → ${p.peer}: sent ${JSON.stringify(p.sent)} received ${JSON.stringify(p.received)}`,
        ),
    );
    throw new ProcessModelViolation(invariant, [
      ...w.trace,
      "--- processes ---",
      ...state,
      "--- proxies ---",
      ...pairs,
    ]);
  };
  checkDelivered(w, recorderLog(w, fail), fail);

  // Liveness: with the recorder's host losing 20% of what it says (acknowledgements), SENDs still succeed
  // (each is resent about nine times before the give-up: all its acknowledgements lost is a 1-in-10⁶ event).
  const host = hostOf(w, fail);
  const via = NODES.find((n) => n !== host.node)!;
  c.network.setFaults({ dropRate: 0.2 }, c.at(host.node).name);
  const probes = Array.from({ length: 8 }, () => w.send("probe", via));
  await drive(c, Promise.all(w.pending));
  c.network.setFaults({ dropRate: 0 }, c.at(host.node).name);
  await c.clock.advance(500);
  for (const p of probes) {
    if (p.reply === "timeout" || p.reply?.rcode !== 0) {
      fail(`under a lossy link, ${p.what} was answered ${p.reply === "timeout" ? p.reply : p.reply?.rcode}`);
    }
  }
  checkDelivered(w, recorderLog(w, fail), fail);
  tally(w);
  o.onCoverage?.(w.coverage);
}

/** The one node that hosts the recorder (a second copy is a violation). */
function hostOf(w: World, fail: (invariant: string) => never): { node: Node; proc: ProcUsr } {
  const hosts = NODES.flatMap((n) =>
    w.c
      .at(n)
      .runtime.processes()
      .filter((p) => p.endpoint === RECORDER)
      .map((proc) => ({ node: n, proc })),
  );
  if (hosts.length !== 1) fail(`the recorder runs on ${hosts.length} nodes (${hosts.map((h) => h.node)})`);
  return hosts[0]!;
}

function recorderLog(w: World, fail: (invariant: string) => never): RecorderContext["log"] {
  const { proc } = hostOf(w, fail);
  if (proc.state !== "running") fail(`the recorder is ${proc.state}`);
  return (proc.context as RecorderContext).log;
}

/** No SEND answered OK lost, none delivered twice, each sender key's messages in order. */
function checkDelivered(w: World, log: RecorderContext["log"], fail: (invariant: string) => never): void {
  const seen = new Map<number, number>();
  const lastOf = new Map<string, number>();
  for (const e of log) {
    const body = e.body as number;
    seen.set(body, (seen.get(body) ?? 0) + 1);
    const last = lastOf.get(e.from.key) ?? 0;
    if (e.seq <= last) fail(`sender ${e.from.key}: seq ${e.seq} delivered after ${last}`);
    lastOf.set(e.from.key, e.seq);
  }
  for (const [body, times] of seen) if (times > 1) fail(`#${body} was delivered ${times} times`);
  for (const s of w.sends) {
    if (s.reply === undefined) fail(`${s.what} was never answered`);
    if (s.reply !== "timeout" && s.reply.rcode === 0 && !seen.has(s.body)) {
      fail(`${s.what} was answered OK and never delivered`);
    }
  }
}

function tally(w: World): void {
  const cov = w.coverage;
  for (const s of w.sends) {
    cov.sends++;
    if (s.reply === "timeout") cov.timeouts++;
    else if (s.reply?.rcode === 0) cov.ok++;
    else cov.errors++;
  }
  for (const n of NODES) {
    // Only the current run of each node: a crashed run's counters went with it.
    for (const s of w.c.at(n).runtime.proxyStats()) {
      cov.resent += s.sent.resent;
      cov.gaveUp += s.sent.gaveUp;
    }
  }
}

export interface CheckOptions {
  readonly seed: number;
  readonly numRuns: number;
  readonly maxCommands: number;
  readonly mutation?: ProcessMutation;
  readonly path?: string;
  /** The commands' replay path fast-check printed with a counterexample (with `path`). */
  readonly replayPath?: string;
  readonly onRun?: (passed: boolean, coverage: ProcessCoverage | undefined) => void;
}

/** Runs the property; fast-check's details (failed, counterexample, error) come back. */
export async function checkProcessMessages(o: CheckOptions) {
  return fc.check(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 0x7fffffff }),
      fc.commands(processCommands, {
        maxCommands: o.maxCommands,
        size: "max",
        ...(o.replayPath !== undefined ? { replayPath: o.replayPath } : {}),
      }),
      async (seed, cmds) => {
        let coverage: ProcessCoverage | undefined;
        try {
          await runProcessScenario(
            {
              seed,
              ...(o.mutation ? { mutation: o.mutation } : {}),
              onCoverage: (cov) => {
                coverage = cov;
              },
            },
            cmds,
          );
          o.onRun?.(true, coverage);
        } catch (error) {
          o.onRun?.(false, undefined);
          throw error;
        }
      },
    ),
    {
      seed: o.seed,
      numRuns: o.numRuns,
      ...(o.path !== undefined ? { path: o.path } : {}),
      endOnFailure: o.path !== undefined,
    },
  );
}
