// Model-based property of migration: any interleaving of sends from several
// requesters and processes on several nodes, moves of the target (and of the
// sending processes) back and forth — node 3 lacks the agents' machine, so
// moving an agent there fails and it resumes — and simulated-time advances. Invariant:
// the recorder got, per sender, exactly the sequence that sender sent —
// nothing lost, nothing repeated, order kept — and its endpoint never changed.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MachineRegistry } from "../../actors/machineRegistry.js";
import type { ProcUsr } from "../../actors/processes/procInfo.js";
import { DvsClient } from "../../client/dvsClient.js";
import { type Rply, rcode } from "../../protocol/messages.js";
import { sleep } from "../../transport/clock.js";
import { ProcessCluster } from "../support/processCluster.js";
import {
  type AgentContext,
  type RecorderContext,
  recorderMachine,
  testRegistry,
} from "../support/processMachines.js";

const NODES = [1, 2, 3] as const;
const RECORDER = 10;
const AGENTS = [20, 21] as const;
const CLIENTS = ["tool-a", "tool-b"] as const;

type Node = (typeof NODES)[number];

interface Model {
  /** Sends issued so far (the real system is checked at the end). */
  sends: number;
}

class World {
  readonly clients: Record<string, DvsClient>;
  readonly driver: DvsClient;
  /** Per sender label, the bodies it sent, in order. */
  readonly sent = new Map<string, number[]>();
  readonly sends: { what: string; reply: Promise<Rply> }[] = [];
  readonly migrations: { what: string; endpoint: number; to: number; reply: Promise<Rply> }[] = [];
  readonly trace: string[] = [];

  constructor(readonly c: ProcessCluster) {
    const client = (id: string) =>
      new DvsClient(c.network.connect(id), { cluster: "dvs", clientId: id, timeoutMs: 10_000 });
    this.clients = Object.fromEntries(CLIENTS.map((id) => [id, client(id)]));
    this.driver = client("driver");
  }

  next(label: string): number {
    const list = this.sent.get(label) ?? [];
    this.sent.set(label, list);
    list.push(list.length + 1);
    return list.length;
  }
}

class ClientSend implements fc.AsyncCommand<Model, World> {
  constructor(
    readonly client: (typeof CLIENTS)[number],
    readonly via: Node,
  ) {}
  check = () => true;
  async run(m: Model, w: World) {
    m.sends++;
    const n = w.next(`client:${this.via}:${this.client}`);
    const reply = w.clients[this.client]!.request(
      "SEND",
      { dcid: 1, endpoint: RECORDER, body: n },
      { dst: this.via },
    );
    w.sends.push({ what: this.toString(), reply });
    w.trace.push(`${this} #${n}`);
  }
  toString = () => `send ${this.client} via ${this.via}`;
}

class ProcessSend implements fc.AsyncCommand<Model, World> {
  constructor(readonly agent: (typeof AGENTS)[number]) {}
  check = () => true;
  async run(m: Model, w: World) {
    m.sends++;
    const n = w.next(`process:${this.agent}`);
    // The driver always goes through node 1: its commands reach the agent in order, so the agent sends in order.
    const reply = w.driver.request(
      "SEND",
      { dcid: 1, endpoint: this.agent, body: { type: "agent.send", endpoint: RECORDER, body: n } },
      { dst: 1 },
    );
    w.sends.push({ what: this.toString(), reply });
    w.trace.push(`${this} #${n}`);
  }
  toString = () => `agent ${this.agent} sends`;
}

class Migrate implements fc.AsyncCommand<Model, World> {
  constructor(
    readonly endpoint: number,
    readonly to: Node,
    readonly via: Node,
  ) {}
  check = () => true;
  async run(_m: Model, w: World) {
    const reply = w.driver.request(
      "MIGRATE",
      { dcid: 1, endpoint: this.endpoint, to: this.to },
      { dst: this.via },
    );
    w.migrations.push({ what: this.toString(), endpoint: this.endpoint, to: this.to, reply });
    w.trace.push(this.toString());
  }
  toString = () => `migrate ${this.endpoint} to ${this.to} via ${this.via}`;
}

class Advance implements fc.AsyncCommand<Model, World> {
  constructor(readonly ms: number) {}
  check = () => true;
  async run(_m: Model, w: World) {
    await w.c.clock.advance(this.ms);
    w.trace.push(this.toString());
  }
  toString = () => `advance ${this.ms}`;
}

const node = fc.constantFrom<Node>(...NODES);
const clientSend = fc.tuple(fc.constantFrom(...CLIENTS), node).map(([c, v]) => new ClientSend(c, v));
const processSend = fc.constantFrom(...AGENTS).map((a) => new ProcessSend(a));
// Sends are listed more than once: fc.commands picks among the entries evenly.
const commands = [
  clientSend,
  clientSend,
  clientSend,
  processSend,
  processSend,
  fc
    .tuple(fc.constantFrom(RECORDER, RECORDER, ...AGENTS), node, node)
    .map(([e, t, v]) => new Migrate(e, t, v)),
  fc.integer({ min: 0, max: 40 }).map((ms) => new Advance(ms)),
];

/** Advances simulated time until `promise` settles (a request cannot be answered while time stands still). */
async function drive<T>(c: ProcessCluster, promise: Promise<T>): Promise<T> {
  let settled = false;
  const done = promise.finally(() => {
    settled = true;
  });
  for (let i = 0; i < 1_000 && !settled; i++) await c.clock.advance(10);
  return done;
}

async function runScenario(seed: number, cmds: Iterable<fc.AsyncCommand<Model, World>>): Promise<void> {
  const c = new ProcessCluster({
    seed,
    nodes: NODES,
    dcs: { 1: NODES },
    latencyMs: { min: 1, max: 5 },
    registry: (n) => (n === 3 ? new MachineRegistry().register("recorder", recorderMachine) : testRegistry()),
  });
  await c.start();
  const w = new World(c);
  const spawn = async (at: Node, endpoint: number, machine: string) => {
    const reply = await drive(c, c.request(at, "SPAWN", { dcid: 1, endpoint, machine }));
    expect(reply.rcode).toBe(endpoint);
    // Let the announcement reach every node before anyone sends.
    await c.clock.advance(100);
  };
  await spawn(1, RECORDER, "recorder");
  await spawn(2, AGENTS[0], "agent");
  await spawn(1, AGENTS[1], "agent");

  await fc.asyncModelRun(() => ({ model: { sends: 0 }, real: w }), cmds);

  const stop = c.clock.autoRun();
  try {
    for (const s of w.sends) expect((await s.reply).rcode, s.what).toBe(0);
    for (const m of w.migrations) {
      const refused = m.to === 3 && m.endpoint !== RECORDER;
      expect(refused ? [rcode("EINVAL"), rcode("EBUSY")] : [0, rcode("EBUSY")], m.what).toContain(
        (await m.reply).rcode,
      );
    }
    await sleep(c.clock, 200);
    const info = async (endpoint: number) => {
      const r = await c.request(1, "GETPROCINFO", { dcid: 1, endpoint });
      expect(r.rcode).toBe(0);
      return r.data as ProcUsr;
    };
    const rec = await info(RECORDER);
    expect(rec).toMatchObject({ endpoint: RECORDER, dcid: 1, gaps: 0, pending: 0, state: "running" });
    const got = new Map<string, unknown[]>();
    for (const e of (rec.context as RecorderContext).log) {
      const label =
        e.from.kind === "client" ? `client:${e.from.node}:${e.from.src}` : `process:${e.from.endpoint}`;
      got.set(label, [...(got.get(label) ?? []), e.body]);
    }
    expect(Object.fromEntries(got), w.trace.join("\n")).toEqual(Object.fromEntries(w.sent));
    for (const agent of AGENTS) {
      const a = await info(agent);
      expect(a.endpoint).toBe(agent);
      expect((a.context as AgentContext).errors).toEqual([]);
    }
    // Every node agrees on where the recorder is.
    const hosts = NODES.map((n) => c.at(n).runtime.locate(1, RECORDER)?.node);
    expect(new Set(hosts)).toEqual(new Set([rec.nodeid]));
  } finally {
    stop();
  }
}

describe("migration model", () => {
  it("keeps every sender's messages to a moving process complete, unrepeated and in order", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 0x7fffffff }),
        fc.commands(commands, { maxCommands: 60, size: "max" }),
        (seed, cmds) => runScenario(seed, cmds),
      ),
      { numRuns: 50 },
    );
  });
});
