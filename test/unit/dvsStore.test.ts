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

  it("answers ENOENT, EEXIST and the DC limit as the seed does", () => {
    const s = store(1);
    s.init({ nr_dcs: 1 });
    expect(s.dcInit({ dcid: 5, nodes: [2, 1, 2] })).toMatchObject({
      rcode: 5,
      data: { nodes: [1, 2], nr_nodes: 2 },
    });
    expect(s.dcInit({ dcid: 5 })).toMatchObject({ error: "EEXIST" });
    expect(s.dcInit({ dcid: 6 })).toMatchObject({ error: "EINVAL" });
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
});
