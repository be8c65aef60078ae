import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { DVS_STATE_FILE, DvsStore } from "../../actors/dvsStore.js";
import { silentLogger } from "../../actors/logger.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), "dvs-store-"));
  dirs.push(d);
  return d;
};
const store = (node: number, stateDir?: string) =>
  new DvsStore({ node, logger: silentLogger, ...(stateDir ? { stateDir } : {}) });

describe("DVS store", () => {
  it("initialises once, with defaults for what DVSINIT leaves out, and ends", () => {
    const s = store(3);
    expect(s.init({ name: "lab", nr_dcs: 4 })).toMatchObject({
      rcode: 3,
      data: { name: "lab", nr_dcs: 4, nr_procs: 256 },
    });
    expect(s.init({})).toMatchObject({ error: "EEXIST" });
    expect(s.end()).toEqual({ rcode: 0 });
    expect(s.initialized).toBe(false);
    expect(s.end()).toMatchObject({ error: "ENOTINIT" });
  });

  it("answers ENOENT, EEXIST, and ENOSPC past nr_dcs", () => {
    const s = store(1);
    s.init({ nr_dcs: 1 });
    expect(s.dcInit({ dcid: 5, nodes: [2, 1, 2] })).toMatchObject({
      rcode: 5,
      data: { nodes: [1, 2], nr_nodes: 2 },
    });
    expect(s.dcInit({ dcid: 5 })).toMatchObject({ error: "EEXIST" });
    expect(s.dcInit({ dcid: 6 })).toMatchObject({ error: "ENOSPC" });
    expect(s.addNode(9, 1)).toMatchObject({ error: "ENOENT" });
    expect(s.addNode(5, 1)).toMatchObject({ error: "EEXIST" });
    expect(s.delNode(5, 7)).toMatchObject({ error: "ENOENT" });
    expect(s.addNode(5, 7)).toMatchObject({ rcode: 0, data: { nodes: [1, 2, 7] } });
    expect(s.delNode(5, 1)).toMatchObject({ rcode: 0, data: { nodes: [2, 7] } });
    expect(s.dcEnd(5)).toEqual({ rcode: 0 });
    expect(s.dc(5)).toBeUndefined();
    expect(s.dcEnd(5)).toMatchObject({ error: "ENOENT" });
  });

  it("keeps its tables across a restart", () => {
    const dir = tempDir();
    const a = store(2, dir);
    a.init({ name: "kept" });
    a.dcInit({ dcid: 1, nodes: [1, 2] });
    a.addNode(1, 3);
    const b = store(2, dir);
    expect(b.dvs?.name).toBe("kept");
    expect(b.dc(1)?.nodes).toEqual([1, 2, 3]);
  });

  it("starts empty and keeps running when its file is damaged", () => {
    const dir = tempDir();
    writeFileSync(join(dir, DVS_STATE_FILE), "{not json");
    const s = store(1, dir);
    expect(s.initialized).toBe(false);
    expect(s.dcs()).toEqual([]);
  });

  it("merges the newer version of each DC, and an end is not undone by an older copy", () => {
    const a = store(1);
    const b = store(2);
    a.dcInit({ dcid: 1, nodes: [1] });
    b.merge(a.records());
    expect(b.dc(1)?.nodes).toEqual([1]);
    const stale = a.records();
    a.addNode(1, 2);
    a.dcEnd(1);
    b.merge(a.records());
    expect(b.dc(1)).toBeUndefined();
    expect(b.merge(stale)).toBe(false);
    expect(b.dc(1)).toBeUndefined();
    // A later DCINIT on b wins over a's ended copy, both ways.
    b.dcInit({ dcid: 1, name: "again" });
    expect(a.merge(b.records())).toBe(true);
    expect(a.dc(1)?.name).toBe("again");
  });

  it("refuses more nodes in a DC than nr_nodes, counting the departed ones", () => {
    const s = store(1);
    s.init({ nr_nodes: 3 });
    expect(s.dcInit({ dcid: 1, nodes: [1, 2, 3, 4] })).toMatchObject({ error: "ENOSPC" });
    expect(s.dcInit({ dcid: 1, nodes: [1, 2] })).toMatchObject({ rcode: 1 });
    s.depart([2], "left", 10);
    expect(s.addNode(1, 3)).toMatchObject({ rcode: 0, data: { nodes: [1, 3] } });
    // Node 2 still holds its place while away.
    expect(s.addNode(1, 4)).toMatchObject({ error: "ENOSPC" });
    // Adding a departed node back does not take another place.
    expect(s.addNode(1, 2)).toMatchObject({ rcode: 0, data: { nodes: [1, 2, 3] } });
    expect(s.dcView(1)?.departed).toEqual([]);
  });

  it("takes a member that left the view out of every DC, records it, and puts it back when it rejoins", () => {
    const s = store(1);
    s.dcInit({ dcid: 1, nodes: [1, 2, 3] });
    s.dcInit({ dcid: 2, nodes: [1, 3] });
    s.dcInit({ dcid: 3, nodes: [1, 2] });
    s.dcEnd(3);
    expect(s.depart([3], "left", 500)).toEqual([
      { dcid: 1, nodeids: [3] },
      { dcid: 2, nodeids: [3] },
    ]);
    expect(s.dcView(1)).toMatchObject({
      nodes: [1, 2],
      nr_nodes: 2,
      departed: [{ nodeid: 3, cause: "left", at: 500 }],
    });
    expect(s.dc(2)?.nodes).toEqual([1]);
    // Leaving twice changes nothing more.
    expect(s.depart([3], "unreachable longer than downAfter", 600)).toEqual([]);
    expect(s.rejoin([2, 3])).toEqual([
      { dcid: 1, nodeids: [3] },
      { dcid: 2, nodeids: [3] },
    ]);
    expect(s.dcView(1)).toMatchObject({ nodes: [1, 2, 3], departed: [] });
    expect(s.dc(2)?.nodes).toEqual([1, 3]);
  });

  it("does not bring back a departed node that DELNODE removed meanwhile", () => {
    const s = store(1);
    s.dcInit({ dcid: 1, nodes: [1, 2, 3] });
    s.depart([2], "left", 1);
    expect(s.delNode(1, 2)).toMatchObject({ rcode: 0, data: { nodes: [1, 3] } });
    expect(s.rejoin([2])).toEqual([]);
    expect(s.dcView(1)).toMatchObject({ nodes: [1, 3], departed: [] });
    expect(s.delNode(1, 2)).toMatchObject({ error: "ENOENT" });
  });

  it("keeps departures across a restart, and reads tables written before departures were recorded", () => {
    const dir = tempDir();
    const a = store(2, dir);
    a.dcInit({ dcid: 1, nodes: [1, 2] });
    a.depart([1], "left", 42);
    expect(store(2, dir).dcView(1)).toMatchObject({ nodes: [2], departed: [{ nodeid: 1, at: 42 }] });
    const old = {
      v: 1,
      dvs: null,
      lamport: 1,
      dcs: [
        {
          dc: {
            dcid: 4,
            flags: 0,
            nr_procs: 1,
            nr_tasks: 1,
            nr_sysprocs: 1,
            nr_nodes: 1,
            nodes: [2],
            warn2proc: -1,
            warnmsg: 0,
            name: "old",
          },
          ended: false,
          rev: 1,
          origin: 2,
        },
      ],
    };
    writeFileSync(join(dir, DVS_STATE_FILE), JSON.stringify(old));
    expect(store(2, dir).dcView(4)).toMatchObject({ name: "old", departed: [] });
  });

  it("knows an ended DC apart from an unknown one, and gives a DC's process limits", () => {
    const s = store(1);
    s.init({ nr_procs: 5, nr_tasks: 2 });
    s.dcInit({ dcid: 1, nr_procs: 3 });
    expect(s.limitsOf(1)).toEqual({ nr_procs: 3, nr_tasks: 2 });
    expect(s.ended(1)).toBe(false);
    s.dcEnd(1);
    expect(s.ended(1)).toBe(true);
    expect(s.limitsOf(1)).toBeUndefined();
    expect(s.ended(9)).toBe(false);
  });
});
