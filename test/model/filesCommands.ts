// The commands of the file store model (fast-check `fc.commands`): start a
// COMMIT of a small (now and then a multi-chunk) body or an UPDATE of one of a
// few files without waiting for it, crash a node, restart it on its disk, wipe
// a node's disk (a holder lost for good, at most MAX_WIPES per run), aim a
// crash at the coordinator or at the holders of a file's newest version, cut
// the power of a server (its nodes crash together), cut and
// restore a node's link, a route or a whole server, slow a node's traffic
// (the coordinator's: its writes land after its term), let time pass, heal
// the network. The model is only what the commands need to decide what applies;
// the harness checks the invariants.
import fc from "fast-check";
import type { NodeId } from "../../protocol/messages.js";
import { CLIENTS, FILE_NAMES, type FilesHarness, MAX_WIPES, NODE_IDS, SERVERS } from "./filesHarness.js";

export interface FilesModel {
  readonly running: Set<NodeId>;
  readonly linkCut: Set<NodeId>;
  /** Cut routes as "a-b" with a < b. */
  readonly routeCut: Set<string>;
  readonly delayed: Set<NodeId>;
  wipes: number;
}

export type FilesCommand = fc.AsyncCommand<FilesModel, FilesHarness>;

/** A delay aimed at a role: comparable to the 400 ms lease, so a slow coordinator's writes land after its term. */
const COORDINATOR_DELAY_MS = 300;

const ROUTES: readonly (readonly [number, number])[] = [
  [0, 1],
  [0, 2],
  [1, 2],
];
const key = ([a, b]: readonly [number, number]): string => `${a}-${b}`;

class Commit implements FilesCommand {
  constructor(
    readonly client: number,
    readonly name: string,
    readonly size: number,
    readonly seed: number,
  ) {}
  check = () => true;
  async run(_m: FilesModel, h: FilesHarness) {
    await h.commit(this.client, this.name, this.size, this.seed);
  }
  toString = () => `commit(c${this.client}, ${this.name}, ${this.size})`;
}

class Update implements FilesCommand {
  constructor(
    readonly client: number,
    readonly name: string,
  ) {}
  check = () => true;
  async run(_m: FilesModel, h: FilesHarness) {
    await h.update(this.client, this.name);
  }
  toString = () => `update(c${this.client}, ${this.name})`;
}

class Crash implements FilesCommand {
  constructor(readonly node: NodeId) {}
  check = (m: Readonly<FilesModel>) => m.running.has(this.node);
  async run(m: FilesModel, h: FilesHarness) {
    m.running.delete(this.node);
    await h.crash(this.node);
  }
  toString = () => `crash(${this.node})`;
}

class Restart implements FilesCommand {
  constructor(readonly node: NodeId) {}
  check = (m: Readonly<FilesModel>) => !m.running.has(this.node);
  async run(m: FilesModel, h: FilesHarness) {
    m.running.add(this.node);
    await h.restart(this.node);
  }
  toString = () => `restart(${this.node})`;
}

class Wipe implements FilesCommand {
  constructor(readonly node: NodeId) {}
  check = (m: Readonly<FilesModel>) => m.wipes < MAX_WIPES;
  async run(m: FilesModel, h: FilesHarness) {
    m.running.delete(this.node);
    m.wipes++;
    await h.wipe(this.node);
  }
  toString = () => `wipe(${this.node})`;
}

/**
 * A fault aimed at whoever plays a role when the command runs (nothing when
 * nobody does): the coordinator (a failover with commits in flight), or a
 * running holder of a file's newest recorded version (what repair must fix).
 */
class AtRole implements FilesCommand {
  constructor(
    readonly fault: "crash" | "wipe" | "cutLink" | "delay",
    readonly role: "coordinator" | (typeof FILE_NAMES)[number],
  ) {}
  check = (m: Readonly<FilesModel>) => this.fault !== "wipe" || m.wipes < MAX_WIPES;
  async run(m: FilesModel, h: FilesHarness) {
    const target = this.role === "coordinator" ? h.coordinator() : h.holdersOf(this.role)[0];
    if (target === undefined) return h.note(`${this} skipped: nobody`);
    switch (this.fault) {
      case "crash":
        m.running.delete(target);
        return h.crash(target);
      case "wipe":
        m.running.delete(target);
        m.wipes++;
        return h.wipe(target);
      case "cutLink":
        m.linkCut.add(target);
        return h.cutLink(target);
      case "delay":
        m.delayed.add(target);
        return h.delay(target, COORDINATOR_DELAY_MS);
    }
  }
  toString = () =>
    `${this.fault}(${this.role === "coordinator" ? "coordinator" : `holder of ${this.role}`}${
      this.fault === "delay" ? `, ${COORDINATOR_DELAY_MS}` : ""
    })`;
}

/**
 * Every running holder of a file's newest recorded version crashes at once (a
 * correlated failure): a SUCCESS promised the bytes are on their disks, so
 * they must be there when the holders come back.
 */
class CrashHolders implements FilesCommand {
  constructor(readonly name: (typeof FILE_NAMES)[number]) {}
  check = () => true;
  async run(m: FilesModel, h: FilesHarness) {
    const holders = h.holdersOf(this.name);
    if (holders.length === 0) return h.note(`${this} skipped: nobody`);
    for (const id of holders) m.running.delete(id);
    await h.crashAll(holders, `holders of ${this.name}`);
  }
  toString = () => `crashHolders(${this.name})`;
}

/** Every node on one server crashes at once (its power is cut); their disks survive. */
class PowerCut implements FilesCommand {
  constructor(readonly server: number) {}
  check = () => true;
  async run(m: FilesModel, h: FilesHarness) {
    const nodes = NODE_IDS.filter((id) => m.running.has(id) && h.serverOf(id) === this.server);
    if (nodes.length === 0) return h.note(`${this} skipped: nobody`);
    for (const id of nodes) m.running.delete(id);
    await h.crashAll(nodes, `power cut on s${this.server}`);
  }
  toString = () => `powerCut(s${this.server})`;
}

class CutLink implements FilesCommand {
  constructor(readonly node: NodeId) {}
  check = (m: Readonly<FilesModel>) => !m.linkCut.has(this.node);
  async run(m: FilesModel, h: FilesHarness) {
    m.linkCut.add(this.node);
    await h.cutLink(this.node);
  }
  toString = () => `cutLink(${this.node})`;
}

class RestoreLink implements FilesCommand {
  constructor(readonly node: NodeId) {}
  check = (m: Readonly<FilesModel>) => m.linkCut.has(this.node);
  async run(m: FilesModel, h: FilesHarness) {
    m.linkCut.delete(this.node);
    await h.restoreLink(this.node);
  }
  toString = () => `restoreLink(${this.node})`;
}

class CutRoute implements FilesCommand {
  constructor(readonly route: readonly [number, number]) {}
  check = (m: Readonly<FilesModel>) => !m.routeCut.has(key(this.route));
  async run(m: FilesModel, h: FilesHarness) {
    m.routeCut.add(key(this.route));
    await h.cutRoute(...this.route);
  }
  toString = () => `cutRoute(${key(this.route)})`;
}

class RestoreRoute implements FilesCommand {
  constructor(readonly route: readonly [number, number]) {}
  check = (m: Readonly<FilesModel>) => m.routeCut.has(key(this.route));
  async run(m: FilesModel, h: FilesHarness) {
    m.routeCut.delete(key(this.route));
    await h.restoreRoute(...this.route);
  }
  toString = () => `restoreRoute(${key(this.route)})`;
}

class Isolate implements FilesCommand {
  readonly routes: readonly string[];
  constructor(readonly server: number) {
    this.routes = ROUTES.filter((r) => r.includes(server)).map(key);
  }
  check = (m: Readonly<FilesModel>) => this.routes.some((r) => !m.routeCut.has(r));
  async run(m: FilesModel, h: FilesHarness) {
    for (const r of this.routes) m.routeCut.add(r);
    await h.isolate(this.server);
  }
  toString = () => `isolate(s${this.server})`;
}

class Delay implements FilesCommand {
  constructor(
    readonly node: NodeId,
    readonly ms: number,
  ) {}
  check = () => true;
  async run(m: FilesModel, h: FilesHarness) {
    m.delayed.add(this.node);
    await h.delay(this.node, this.ms);
  }
  toString = () => `delay(${this.node}, ${this.ms})`;
}

class Undelay implements FilesCommand {
  constructor(readonly node: NodeId) {}
  check = (m: Readonly<FilesModel>) => m.delayed.has(this.node);
  async run(m: FilesModel, h: FilesHarness) {
    m.delayed.delete(this.node);
    await h.delay(this.node, 0);
  }
  toString = () => `undelay(${this.node})`;
}

class Advance implements FilesCommand {
  constructor(readonly ms: number) {}
  check = () => true;
  async run(_m: FilesModel, h: FilesHarness) {
    await h.advance(this.ms);
  }
  toString = () => `advance(${this.ms})`;
}

class Heal implements FilesCommand {
  constructor(readonly ms: number) {}
  check = (m: Readonly<FilesModel>) => m.linkCut.size > 0 || m.routeCut.size > 0 || m.delayed.size > 0;
  async run(m: FilesModel, h: FilesHarness) {
    m.linkCut.clear();
    m.routeCut.clear();
    m.delayed.clear();
    await h.heal(this.ms);
  }
  toString = () => `heal(${this.ms})`;
}

/**
 * Isolates the server holding the most running nodes. With three of five
 * there, the other two servers keep the store's majority (and so a
 * coordinator) while their nodes hold a minority of the view: the case where
 * only the minority mark stops a COMMIT. Otherwise a plain isolated server.
 */
class IsolateMostNodes implements FilesCommand {
  check = () => true;
  async run(m: FilesModel, h: FilesHarness) {
    const count = [0, 1, 2].map((s) => [...m.running].filter((id) => h.serverOf(id) === s).length);
    const server = count.indexOf(Math.max(...count));
    for (const r of ["0-1", "0-2", "1-2"]) if (r.includes(String(server))) m.routeCut.add(r);
    h.note(`isolate the server with the most nodes: s${server} (${count[server]} of ${m.running.size})`);
    await h.isolate(server);
  }
  toString = () => "isolateMostNodes()";
}

const node = fc.constantFrom(...NODE_IDS);
const route = fc.constantFrom(...ROUTES);
const server = fc.integer({ min: 0, max: SERVERS - 1 });
const client = fc.integer({ min: 0, max: CLIENTS - 1 });
const name = fc.constantFrom(...FILE_NAMES);
/** Mostly a few hundred bytes; one commit in eight spans two chunks (CHUNK_BYTES is 192 KiB). */
const size = fc.oneof(
  { weight: 7, arbitrary: fc.integer({ min: 0, max: 2_000 }) },
  { weight: 1, arbitrary: fc.integer({ min: 200 * 1024, max: 300 * 1024 }) },
);
const commit = fc
  .tuple(client, name, size, fc.integer({ min: 1, max: 0x7fffffff }))
  .map(([c, n, s, seed]) => new Commit(c, n, s, seed));

const update = fc.tuple(client, name).map(([c, n]) => new Update(c, n));

/**
 * The command arbitraries. Commits and updates are about a third of all
 * commands (they start calls that run on while the faults come); time steps
 * are short (a call's round trips, a lease) or long (a failover, a repair
 * round); wipes are rarer than crashes, and bounded by the model.
 */
export const commandArbitraries: fc.Arbitrary<FilesCommand>[] = [
  ...Array.from({ length: 8 }, () => commit),
  ...Array.from({ length: 5 }, () => update),
  node.map((n) => new Crash(n)),
  node.map((n) => new Restart(n)),
  node.map((n) => new Restart(n)),
  node.map((n) => new Wipe(n)),
  fc
    .tuple(
      fc.constantFrom<AtRole["fault"]>("crash", "wipe", "cutLink"),
      fc.constantFrom<AtRole["role"]>("coordinator", ...FILE_NAMES),
    )
    .map(([fault, role]) => new AtRole(fault, role)),
  fc.constantFrom(...FILE_NAMES).map((n) => new AtRole("crash", n)),
  fc.constantFrom(...FILE_NAMES).map((n) => new CrashHolders(n)),
  server.map((s) => new PowerCut(s)),
  fc.constant(new AtRole("crash", "coordinator")),
  node.map((n) => new CutLink(n)),
  node.map((n) => new RestoreLink(n)),
  route.map((r) => new CutRoute(r)),
  route.map((r) => new RestoreRoute(r)),
  server.map((s) => new Isolate(s)),
  fc.tuple(node, fc.integer({ min: 10, max: 300 })).map(([n, ms]) => new Delay(n, ms)),
  node.map((n) => new Undelay(n)),
  fc.constant(new AtRole("delay", "coordinator")),
  fc.integer({ min: 10, max: 500 }).map((ms) => new Advance(ms)),
  fc.integer({ min: 10, max: 500 }).map((ms) => new Advance(ms)),
  fc.integer({ min: 500, max: 4_000 }).map((ms) => new Advance(ms)),
  fc.integer({ min: 500, max: 4_000 }).map((ms) => new Advance(ms)),
  fc.integer({ min: 1_000, max: 5_000 }).map((ms) => new Heal(ms)),
];

/**
 * Commits of the files while their holders crash: each crash makes the
 * coordinator repair a version (its sweep every repairEveryMs) while the
 * next commits of that file run.
 */
export const repairArbitraries: fc.Arbitrary<FilesCommand>[] = [
  ...Array.from({ length: 6 }, () => commit),
  fc.constantFrom(...FILE_NAMES).map((n) => new AtRole("crash", n)),
  node.map((n) => new Restart(n)),
  fc.integer({ min: 10, max: 300 }).map((ms) => new Advance(ms)),
  fc.integer({ min: 500, max: 2_000 }).map((ms) => new Advance(ms)),
];

/** The model at time 0: every node running, no faults. */
export const initialModel = (): FilesModel => ({
  running: new Set(NODE_IDS),
  linkCut: new Set(),
  routeCut: new Set(),
  delayed: new Set(),
  wipes: 0,
});

/** Only calls and time: concurrent commits and updates of the same files on a healthy cluster. */
export const callArbitraries: fc.Arbitrary<FilesCommand>[] = [
  ...Array.from({ length: 3 }, () => commit),
  ...Array.from({ length: 3 }, () => update),
  fc.integer({ min: 10, max: 500 }).map((ms) => new Advance(ms)),
  fc.integer({ min: 500, max: 4_000 }).map((ms) => new Advance(ms)),
];

/**
 * Many commits while holders and coordinators crash and come back: a repair
 * of a version (a few seconds after a holder crashed, or when a new
 * coordinator takes over; slow when it asks a crashed node not yet known to
 * be down) races a commit of the next one, a new coordinator races the
 * commits the old one left in flight.
 */
export const failoverArbitraries: fc.Arbitrary<FilesCommand>[] = [
  ...Array.from({ length: 6 }, () => commit),
  fc.constantFrom(...FILE_NAMES).map((n) => new AtRole("crash", n)),
  fc.constant(new AtRole("crash", "coordinator")),
  node.map((n) => new Crash(n)),
  node.map((n) => new Restart(n)),
  fc.integer({ min: 10, max: 300 }).map((ms) => new Advance(ms)),
  fc.integer({ min: 10, max: 300 }).map((ms) => new Advance(ms)),
  fc.integer({ min: 500, max: 3_000 }).map((ms) => new Advance(ms)),
];

/** The commands of the quorum model: all of the above, and the split that leaves a minority holding the store. */
export const quorumArbitraries: fc.Arbitrary<FilesCommand>[] = [
  ...commandArbitraries,
  fc.constant(new IsolateMostNodes()),
  fc.constant(new IsolateMostNodes()),
];

/** Calls across a split that leaves a minority holding the store, and its heal: what a node ignoring its minority mark gets wrong. */
export const minorityArbitraries: fc.Arbitrary<FilesCommand>[] = [
  ...Array.from({ length: 3 }, () => commit),
  update,
  fc.constant(new IsolateMostNodes()),
  node.map((n) => new Crash(n)),
  node.map((n) => new Restart(n)),
  fc.integer({ min: 10, max: 500 }).map((ms) => new Advance(ms)),
  fc.integer({ min: 1_000, max: 4_000 }).map((ms) => new Advance(ms)),
  fc.integer({ min: 1_000, max: 5_000 }).map((ms) => new Heal(ms)),
];
