// The commands of the cluster model (fast-check `fc.commands`): start,
// crash, restart, graceful stop, cut/restore a node's link, cut/restore the
// route between the two servers, send a request from a tool (ALL or to one
// node, left in flight while the next commands run), and let time pass in
// small or large steps. The model is only the topology the commands need to
// decide what applies; the harness holds the rest and checks the invariants
// after each command.
import fc from "fast-check";
import { ALL } from "../../protocol/messages.js";
import { type MembershipHarness, NODE_IDS } from "./harness.js";
import {
  describeSpec,
  MODEL_REQUEST_TYPES,
  type ModelRequestType,
  type RequestSpec,
} from "./requestInvariants.js";

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

class Request implements MembershipCommand {
  constructor(readonly spec: RequestSpec) {}
  check = () => true;
  async run(_m: TopologyModel, h: MembershipHarness) {
    await h.request(this.spec);
  }
  toString = () => `request(${describeSpec(this.spec)})`;
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
const dcid = fc.integer({ min: 1, max: 3 });

/** Small params for each request type: enough to hit EEXIST, ENOENT and forwarding, never an error of shape. */
const paramsOf: Record<ModelRequestType, fc.Arbitrary<Record<string, unknown>>> = {
  GETDVSINFO: fc.constant({}),
  GETNODEINFO: fc.option(node, { nil: undefined }).map((nodeid) => (nodeid === undefined ? {} : { nodeid })),
  DVSINIT: fc.constantFrom({}, { name: "lab" }, { name: "lab", nr_dcs: 4 }),
  DCINIT: fc.record({ dcid, nodes: fc.uniqueArray(node, { maxLength: 3 }) }),
  ADDNODE: fc.record({ dcid, nodeid: node }),
};

/**
 * The RQST timeout: mostly shorter than the second it takes to notice a
 * silent member (so a gather meets ETIMEDOUT), sometimes longer (so it meets
 * EHOSTDOWN), sometimes the node's default.
 */
const timeout: fc.Arbitrary<number | undefined> = fc.oneof(
  { weight: 1, arbitrary: fc.constant(undefined) },
  { weight: 3, arbitrary: fc.integer({ min: 50, max: 900 }) },
  { weight: 1, arbitrary: fc.integer({ min: 900, max: 2_500 }) },
);

/**
 * A request: a type and its params, a timeout, and `dst` ALL or one node,
 * directly or through the queue subject.
 */
const request = (dst: fc.Arbitrary<number | typeof ALL>): fc.Arbitrary<RequestSpec> =>
  fc
    .constantFrom(...MODEL_REQUEST_TYPES)
    .chain((type) =>
      fc.record({
        type: fc.constant(type),
        params: paramsOf[type],
        dst,
        viaAnyNode: fc.boolean(),
        timeoutMs: timeout,
      }),
    )
    .map(({ timeoutMs, ...spec }) => ({
      ...spec,
      viaAnyNode: spec.dst !== ALL && spec.viaAnyNode,
      ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    }));

/**
 * The command arbitraries. Time steps are listed twice so that about a third
 * of the commands let time pass: small steps (within a heartbeat or two, where
 * races live) and large ones (past suspicion, downAfter, or a whole
 * stabilisation bound, where quiet-partition checks happen). One command in
 * five is a request, two ALL for one unicast.
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
  request(fc.constant(ALL)).map((spec) => new Request(spec)),
  request(fc.constant(ALL)).map((spec) => new Request(spec)),
  request(node).map((spec) => new Request(spec)),
  fc.integer({ min: 1, max: 400 }).map((ms) => new Advance(ms)),
  fc.integer({ min: 1, max: 400 }).map((ms) => new Advance(ms)),
  fc.integer({ min: 1_000, max: 9_000 }).map((ms) => new Advance(ms)),
  fc.integer({ min: 1_000, max: 9_000 }).map((ms) => new Advance(ms)),
];
