// The pure parts of DC membership: the DC machine's departures and returns,
// and the process limits SPAWN checks.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createActor } from "xstate";
import { checkRoom } from "../../actors/processes/dcDirectory.js";
import { type DcRecord, dcMachine, depart, returnNodes } from "../../machines/dc.js";

const record = (nodes: number[]): DcRecord => ({
  dc: {
    dcid: 1,
    flags: 0,
    nr_procs: 4,
    nr_tasks: 2,
    nr_sysprocs: 1,
    nr_nodes: nodes.length,
    nodes,
    warn2proc: -1,
    warnmsg: 0,
    name: "dc1",
  },
  ended: false,
  departed: [],
  rev: 1,
  origin: 1,
});

describe("DC machine", () => {
  it("moves departed members out of the node list and back, without a new revision", () => {
    const actor = createActor(dcMachine, { input: record([1, 2, 3]) }).start();
    actor.send({ type: "dc.depart", nodeids: [3, 9], cause: "left", at: 7 });
    expect(actor.getSnapshot().context).toMatchObject({
      dc: { nodes: [1, 2], nr_nodes: 2 },
      departed: [{ nodeid: 3, cause: "left", at: 7 }],
      rev: 1,
    });
    actor.send({ type: "dc.return", nodeids: [3] });
    expect(actor.getSnapshot().context).toMatchObject({
      dc: { nodes: [1, 2, 3], nr_nodes: 3 },
      departed: [],
    });
  });

  it("forgets a departure on ADDNODE, DELNODE and a new DCINIT", () => {
    const actor = createActor(dcMachine, { input: record([1, 2, 3]) }).start();
    actor.send({ type: "dc.depart", nodeids: [2, 3], cause: "left", at: 1 });
    actor.send({ type: "dc.addNode", nodeid: 2, rev: 2, origin: 1 });
    actor.send({ type: "dc.delNode", nodeid: 3, rev: 3, origin: 1 });
    expect(actor.getSnapshot().context).toMatchObject({ dc: { nodes: [1, 2] }, departed: [], rev: 3 });
    actor.send({ type: "dc.depart", nodeids: [2], cause: "left", at: 2 });
    actor.send({ type: "dc.end", rev: 4, origin: 1 });
    actor.send({ type: "dc.init", dc: record([1, 2]).dc, rev: 5, origin: 1 });
    expect(actor.getSnapshot().context).toMatchObject({ dc: { nodes: [1, 2] }, departed: [], ended: false });
  });

  it("leaves and returns to the same node list, whatever nodes go and come back", () => {
    const nodes = fc.uniqueArray(fc.integer({ min: 0, max: 20 }), { minLength: 1, maxLength: 8 });
    fc.assert(
      fc.property(nodes, fc.array(fc.integer({ min: 0, max: 20 })), (members, leaving) => {
        const start = record([...members].sort((a, b) => a - b));
        const away = depart(start, leaving, "left", 0);
        expect(away.dc.nodes.some((n) => leaving.includes(n))).toBe(false);
        expect(away.dc.nodes.length + away.departed.length).toBe(start.dc.nodes.length);
        expect(returnNodes(away, leaving)).toEqual(start);
      }),
    );
  });
});

describe("DC process limits", () => {
  const dcs = { nodesOf: () => [1], limitsOf: () => ({ nr_procs: 2, nr_tasks: 1 }) };

  it("counts tasks (negative endpoints) against nr_tasks and the others against nr_procs", () => {
    expect(checkRoom(dcs, 1, 5, [{ endpoint: 0 }, { endpoint: -1 }])).toBeUndefined();
    expect(checkRoom(dcs, 1, 5, [{ endpoint: 0 }, { endpoint: 3 }])).toMatchObject({ error: "ENOSPC" });
    expect(checkRoom(dcs, 1, -2, [{ endpoint: 0 }])).toBeUndefined();
    expect(checkRoom(dcs, 1, -2, [{ endpoint: -1 }])).toMatchObject({ error: "ENOSPC" });
    expect(checkRoom({ nodesOf: () => [1] }, 1, 5, [{ endpoint: 0 }, { endpoint: 3 }])).toBeUndefined();
  });
});
