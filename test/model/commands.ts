// The commands of the membership model (fast-check `fc.commands`): start,
// crash, restart, graceful stop, cut/restore a node's link, cut/restore the
// route between the two servers, and let time pass in small or large steps.
// The model is only the topology the commands need to decide what applies;
// the harness holds the rest and checks the invariants after each command.
import fc from "fast-check";
import { type MembershipHarness, NODE_IDS } from "./harness.js";

export interface TopologyModel {
  readonly servers: 1 | 2;
  readonly running: Set<number>;
  readonly linkCut: Set<number>;
  routeCut: boolean;
}

export type MembershipCommand = fc.AsyncCommand<TopologyModel, MembershipHarness>;

class Start implements MembershipCommand {
  constructor(readonly node: number) {}
  check = (m: Readonly<TopologyModel>) => !m.running.has(this.node);
  async run(m: TopologyModel, h: MembershipHarness) {
    m.running.add(this.node);
    await h.start(this.node);
  }
  toString = () => `start(${this.node})`;
}

class Crash implements MembershipCommand {
  constructor(readonly node: number) {}
  check = (m: Readonly<TopologyModel>) => m.running.has(this.node);
  async run(m: TopologyModel, h: MembershipHarness) {
    m.running.delete(this.node);
    await h.crash(this.node);
  }
  toString = () => `crash(${this.node})`;
}

class Restart implements MembershipCommand {
  constructor(readonly node: number) {}
  check = (m: Readonly<TopologyModel>) => m.running.has(this.node);
  async run(_m: TopologyModel, h: MembershipHarness) {
    await h.restart(this.node);
  }
  toString = () => `restart(${this.node})`;
}

class Stop implements MembershipCommand {
  constructor(readonly node: number) {}
  check = (m: Readonly<TopologyModel>) => m.running.has(this.node);
  async run(m: TopologyModel, h: MembershipHarness) {
    m.running.delete(this.node);
    await h.stop(this.node);
  }
  toString = () => `stop(${this.node})`;
}

class CutLink implements MembershipCommand {
  constructor(readonly node: number) {}
  check = (m: Readonly<TopologyModel>) => !m.linkCut.has(this.node);
  async run(m: TopologyModel, h: MembershipHarness) {
    m.linkCut.add(this.node);
    await h.cutLink(this.node);
  }
  toString = () => `cutLink(${this.node})`;
}

class RestoreLink implements MembershipCommand {
  constructor(readonly node: number) {}
  check = (m: Readonly<TopologyModel>) => m.linkCut.has(this.node);
  async run(m: TopologyModel, h: MembershipHarness) {
    m.linkCut.delete(this.node);
    await h.restoreLink(this.node);
  }
  toString = () => `restoreLink(${this.node})`;
}

class CutRoute implements MembershipCommand {
  check = (m: Readonly<TopologyModel>) => m.servers === 2 && !m.routeCut;
  async run(m: TopologyModel, h: MembershipHarness) {
    m.routeCut = true;
    await h.cutRoute();
  }
  toString = () => "cutRoute()";
}

class RestoreRoute implements MembershipCommand {
  check = (m: Readonly<TopologyModel>) => m.routeCut;
  async run(m: TopologyModel, h: MembershipHarness) {
    m.routeCut = false;
    await h.restoreRoute();
  }
  toString = () => "restoreRoute()";
}

class Advance implements MembershipCommand {
  constructor(readonly ms: number) {}
  check = () => true;
  async run(_m: TopologyModel, h: MembershipHarness) {
    await h.advance(this.ms);
  }
  toString = () => `advance(${this.ms})`;
}

const node = fc.constantFrom(...NODE_IDS);

/**
 * The command arbitraries. Time steps are listed twice so that about a third
 * of the commands let time pass: small steps (within a heartbeat or two, where
 * races live) and large ones (past suspicion, downAfter, or a whole
 * stabilisation bound, where quiet-partition checks happen).
 */
export const commandArbitraries: fc.Arbitrary<MembershipCommand>[] = [
  node.map((n) => new Start(n)),
  node.map((n) => new Crash(n)),
  node.map((n) => new Restart(n)),
  node.map((n) => new Stop(n)),
  node.map((n) => new CutLink(n)),
  node.map((n) => new RestoreLink(n)),
  fc.constant(new CutRoute()),
  fc.constant(new RestoreRoute()),
  fc.integer({ min: 1, max: 400 }).map((ms) => new Advance(ms)),
  fc.integer({ min: 1, max: 400 }).map((ms) => new Advance(ms)),
  fc.integer({ min: 1_000, max: 9_000 }).map((ms) => new Advance(ms)),
  fc.integer({ min: 1_000, max: 9_000 }).map((ms) => new Advance(ms)),
];
