// The commands of the election model (fast-check `fc.commands`): crash or
// gracefully stop a node, start it again, cut/restore a node's link, cut/restore a route
// between two of the three servers, isolate one server, put an extra delay on
// one node's traffic (up to about the lease) or take it off, aim one of those
// faults at whoever is coordinator, have a client report FAILED, let time
// pass, and heal everything and wait for agreement. The model is only the topology the
// commands need to decide what applies; the harness checks the invariants.
import fc from "fast-check";
import type { NodeId } from "../../protocol/messages.js";
import { type ElectionHarness, MAX_EXTRA_DELAY_MS, NODE_IDS, SERVERS } from "./electionHarness.js";

export interface ElectionModel {
  readonly running: Set<NodeId>;
  readonly linkCut: Set<NodeId>;
  /** Cut routes as "a-b" with a < b. */
  readonly routeCut: Set<string>;
  readonly delayed: Set<NodeId>;
}

export type ElectionCommand = fc.AsyncCommand<ElectionModel, ElectionHarness>;

const ROUTES: readonly (readonly [number, number])[] = [
  [0, 1],
  [0, 2],
  [1, 2],
];
const key = ([a, b]: readonly [number, number]): string => `${a}-${b}`;

class Crash implements ElectionCommand {
  constructor(readonly node: NodeId) {}
  check = (m: Readonly<ElectionModel>) => m.running.has(this.node);
  async run(m: ElectionModel, h: ElectionHarness) {
    m.running.delete(this.node);
    await h.crash(this.node);
  }
  toString = () => `crash(${this.node})`;
}

class Stop implements ElectionCommand {
  constructor(readonly node: NodeId) {}
  check = (m: Readonly<ElectionModel>) => m.running.has(this.node);
  async run(m: ElectionModel, h: ElectionHarness) {
    m.running.delete(this.node);
    await h.stop(this.node);
  }
  toString = () => `stop(${this.node})`;
}

class Restart implements ElectionCommand {
  constructor(readonly node: NodeId) {}
  check = (m: Readonly<ElectionModel>) => !m.running.has(this.node);
  async run(m: ElectionModel, h: ElectionHarness) {
    m.running.add(this.node);
    await h.restart(this.node);
  }
  toString = () => `restart(${this.node})`;
}

class CutLink implements ElectionCommand {
  constructor(readonly node: NodeId) {}
  check = (m: Readonly<ElectionModel>) => !m.linkCut.has(this.node);
  async run(m: ElectionModel, h: ElectionHarness) {
    m.linkCut.add(this.node);
    await h.cutLink(this.node);
  }
  toString = () => `cutLink(${this.node})`;
}

class RestoreLink implements ElectionCommand {
  constructor(readonly node: NodeId) {}
  check = (m: Readonly<ElectionModel>) => m.linkCut.has(this.node);
  async run(m: ElectionModel, h: ElectionHarness) {
    m.linkCut.delete(this.node);
    await h.restoreLink(this.node);
  }
  toString = () => `restoreLink(${this.node})`;
}

class CutRoute implements ElectionCommand {
  constructor(readonly route: readonly [number, number]) {}
  check = (m: Readonly<ElectionModel>) => !m.routeCut.has(key(this.route));
  async run(m: ElectionModel, h: ElectionHarness) {
    m.routeCut.add(key(this.route));
    await h.cutRoute(...this.route);
  }
  toString = () => `cutRoute(${key(this.route)})`;
}

class RestoreRoute implements ElectionCommand {
  constructor(readonly route: readonly [number, number]) {}
  check = (m: Readonly<ElectionModel>) => m.routeCut.has(key(this.route));
  async run(m: ElectionModel, h: ElectionHarness) {
    m.routeCut.delete(key(this.route));
    await h.restoreRoute(...this.route);
  }
  toString = () => `restoreRoute(${key(this.route)})`;
}

class Isolate implements ElectionCommand {
  readonly routes: readonly string[];
  constructor(readonly server: number) {
    this.routes = ROUTES.filter((r) => r.includes(server)).map(key);
  }
  check = (m: Readonly<ElectionModel>) => this.routes.some((r) => !m.routeCut.has(r));
  async run(m: ElectionModel, h: ElectionHarness) {
    for (const r of this.routes) m.routeCut.add(r);
    await h.isolate(this.server);
  }
  toString = () => `isolate(s${this.server})`;
}

class Delay implements ElectionCommand {
  constructor(
    readonly node: NodeId,
    readonly ms: number,
  ) {}
  check = () => true;
  async run(m: ElectionModel, h: ElectionHarness) {
    m.delayed.add(this.node);
    await h.delay(this.node, this.ms);
  }
  toString = () => `delay(${this.node}, ${this.ms})`;
}

class Undelay implements ElectionCommand {
  constructor(readonly node: NodeId) {}
  check = (m: Readonly<ElectionModel>) => m.delayed.has(this.node);
  async run(m: ElectionModel, h: ElectionHarness) {
    m.delayed.delete(this.node);
    await h.delay(this.node, 0);
  }
  toString = () => `undelay(${this.node})`;
}

/**
 * A fault aimed at whoever is coordinator when the command runs (nothing when
 * there is none): random targets hit the coordinator one time in five, and
 * faults on workers rarely test a term.
 */
class AtCoordinator implements ElectionCommand {
  constructor(
    readonly fault: "crash" | "stop" | "cutLink" | "isolate" | "delay",
    readonly ms: number,
  ) {}
  check = () => true;
  async run(m: ElectionModel, h: ElectionHarness) {
    const target = h.coordinator();
    if (target === undefined) return h.note(`${this} skipped: no coordinator`);
    switch (this.fault) {
      case "crash":
        m.running.delete(target);
        return h.crash(target);
      case "stop":
        m.running.delete(target);
        return h.stop(target);
      case "cutLink":
        m.linkCut.add(target);
        return h.cutLink(target);
      case "isolate": {
        const server = h.serverOf(target);
        for (const r of ROUTES.filter((r) => r.includes(server))) m.routeCut.add(key(r));
        return h.isolate(server);
      }
      case "delay":
        m.delayed.add(target);
        return h.delay(target, this.ms);
    }
  }
  toString = () => (this.fault === "delay" ? `delay(coordinator, ${this.ms})` : `${this.fault}(coordinator)`);
}

class ReportFailed implements ElectionCommand {
  constructor(
    readonly server: number,
    readonly obsolete: boolean,
  ) {}
  check = () => true;
  async run(_m: ElectionModel, h: ElectionHarness) {
    await h.reportFailed(this.server, this.obsolete);
  }
  toString = () => `reportFailed(s${this.server}${this.obsolete ? ", obsolete" : ""})`;
}

class Advance implements ElectionCommand {
  constructor(readonly ms: number) {}
  check = () => true;
  async run(_m: ElectionModel, h: ElectionHarness) {
    await h.advance(this.ms);
  }
  toString = () => `advance(${this.ms})`;
}

class HealAndWait implements ElectionCommand {
  check = () => true;
  async run(m: ElectionModel, h: ElectionHarness) {
    m.linkCut.clear();
    m.routeCut.clear();
    m.delayed.clear();
    await h.healAndWait();
  }
  toString = () => "healAndWait()";
}

const node = fc.constantFrom(...NODE_IDS);
const route = fc.constantFrom(...ROUTES);
const server = fc.integer({ min: 0, max: SERVERS - 1 });

/**
 * The command arbitraries. About a third of the commands let time pass:
 * short steps (within a lease, where a renewal races a cut) and long ones
 * (past a lease and the retry backoff). Heals are rarer: each costs a whole
 * stabilisation bound, and every run ends with one anyway.
 */
export const commandArbitraries: fc.Arbitrary<ElectionCommand>[] = [
  node.map((n) => new Crash(n)),
  node.map((n) => new Stop(n)),
  node.map((n) => new Restart(n)),
  node.map((n) => new CutLink(n)),
  node.map((n) => new RestoreLink(n)),
  route.map((r) => new CutRoute(r)),
  route.map((r) => new RestoreRoute(r)),
  server.map((s) => new Isolate(s)),
  fc.tuple(node, fc.integer({ min: 10, max: MAX_EXTRA_DELAY_MS })).map(([n, ms]) => new Delay(n, ms)),
  node.map((n) => new Undelay(n)),
  fc.constantFrom("crash", "stop", "cutLink", "isolate").map((f) => new AtCoordinator(f, 0)),
  fc.integer({ min: 10, max: MAX_EXTRA_DELAY_MS }).map((ms) => new AtCoordinator("delay", ms)),
  fc.tuple(server, fc.boolean()).map(([s, obsolete]) => new ReportFailed(s, obsolete)),
  fc.integer({ min: 10, max: 400 }).map((ms) => new Advance(ms)),
  fc.integer({ min: 10, max: 400 }).map((ms) => new Advance(ms)),
  fc.integer({ min: 400, max: 1_500 }).map((ms) => new Advance(ms)),
  fc.integer({ min: 400, max: 1_500 }).map((ms) => new Advance(ms)),
  fc.constant(new HealAndWait()),
];

/** The model at time 0: the initial nodes running, no faults. */
export const initialModel = (initial: readonly NodeId[]): ElectionModel => ({
  running: new Set(initial),
  linkCut: new Set(),
  routeCut: new Set(),
  delayed: new Set(),
});
