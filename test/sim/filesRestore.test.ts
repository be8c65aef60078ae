// A catalog older than what the holders keep (the registry's bucket restored
// from a backup, protocol.md 11.8): the copies some catalog recorded that it
// no longer names are kept and reported, while the leftovers of commits never
// recorded are still collected.
import { createHash } from "node:crypto";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { catalogKey } from "../../actors/files/catalog.js";
import { bytesSource, FileClient, memorySink } from "../../client/fileClient.js";
import type { FileIdentity } from "../../protocol/files.js";
import { subjects } from "../../protocol/subjects.js";
import { SimCluster } from "../../sim/cluster.js";

interface LogLine {
  readonly node: number;
  readonly msg: string;
  readonly name?: string;
  readonly version?: number;
  readonly recorded?: number | null;
}

const NODES = [1, 2, 3, 4, 5];

function setup(seed: number) {
  const logs: LogLine[] = [];
  const cluster = new SimCluster({
    seed,
    election: {},
    files: {},
    logger: (node) =>
      pino({ level: "warn" }, { write: (line: string) => void logs.push({ ...JSON.parse(line), node }) }),
  });
  for (const id of NODES) cluster.start(id);
  const transport = cluster.network.connect("client", { server: 0 });
  let n = 0;
  const client = new FileClient({
    transport,
    subjects: subjects("dvs"),
    clock: cluster.network.hostClock("client"),
    newCommitId: () => `c${seed}-${++n}`,
  });
  return { cluster, client, logs };
}

const text = (s: string) => new TextEncoder().encode(s);
const identity = (name: string, version: number, body: string): FileIdentity => ({
  name,
  version,
  sha256: createHash("sha256").update(text(body)).digest("hex"),
  size: text(body).length,
});

/** The nodes whose disk holds exactly this version. */
const holding = (cluster: SimCluster, copy: Pick<FileIdentity, "name" | "version" | "sha256">) =>
  NODES.filter((id) =>
    cluster
      .disk(id)
      .list()
      .some((f) => f.name === copy.name && f.version === copy.version && f.sha256 === copy.sha256),
  );

describe("a registry bucket restored from an older backup", () => {
  it("leaves holders their newer committed copies and files the backup lacks, reported, and still collects unrecorded leftovers", async () => {
    const { cluster, client, logs } = setup(41);
    const kv = cluster.kv as NonNullable<SimCluster["kv"]>;
    await cluster.advance(2_000);
    await cluster.settle(client.commit("a.txt", bytesSource(text("one"))));
    // The backup: the catalog as it was after version 1 of a.txt, before b.txt existed.
    const backup = kv.peek(catalogKey("a.txt"));
    const two = await cluster.settle(client.commit("a.txt", bytesSource(text("two"))));
    const bee = await cluster.settle(client.commit("b.txt", bytesSource(text("bee"))));
    expect(two.version).toBe(2);
    await cluster.advance(1_000);
    expect(holding(cluster, two).sort()).toEqual([...two.holders].sort());
    expect(holding(cluster, bee).sort()).toEqual([...bee.holders].sort());

    // The documented restore: every node stopped, the stream restored, the nodes started again.
    for (const id of NODES) cluster.crash(id);
    kv.rewind(catalogKey("a.txt"), backup);
    kv.rewind(catalogKey("b.txt"), undefined);
    // Copies of commits that were never recorded, on disks the nodes find when they start.
    const unrecordedThree = identity("a.txt", 3, "three, never recorded");
    const unrecordedC = identity("c.txt", 1, "c, never recorded");
    cluster.disk(1).store(unrecordedThree, text("three, never recorded"));
    cluster.disk(2).store(unrecordedC, text("c, never recorded"));
    for (const id of NODES) cluster.start(id);
    // Election, the term's settling time and many repair sweeps (every 5 s), each sending DISCARDs.
    await cluster.advance(40_000);

    expect(holding(cluster, two).sort()).toEqual([...two.holders].sort());
    expect(holding(cluster, bee).sort()).toEqual([...bee.holders].sort());
    expect(holding(cluster, unrecordedThree)).toEqual([]);
    expect(holding(cluster, unrecordedC)).toEqual([]);
    const kept = logs.filter((l) => l.msg.includes("the catalog is older than this copy"));
    expect(kept).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ node: two.holders[0], name: "a.txt", version: 2, recorded: 1 }),
        expect.objectContaining({ node: bee.holders[0], name: "b.txt", version: 1, recorded: null }),
      ]),
    );

    // The way out: commit the kept bytes again, and the record names the kept copies.
    const again = await cluster.settle(client.commit("a.txt", bytesSource(text("two"))));
    expect(again).toMatchObject({ version: 2, sha256: two.sha256 });
    const sink = memorySink();
    await cluster.settle(client.update("a.txt", () => sink));
    expect(new TextDecoder().decode(sink.bytes())).toBe("two");
    await cluster.advance(20_000);
    expect(holding(cluster, two).length).toBeGreaterThanOrEqual(3);
  });

  it("marks a copy committed once its holder learns it was recorded: by COMMITTED, or as a repair's copy", async () => {
    const { cluster, client } = setup(42);
    await cluster.advance(2_000);
    const c = await cluster.settle(client.commit("r.txt", bytesSource(text("repair me"))));
    await cluster.advance(500);
    const marked = () => NODES.filter((id) => cluster.nodes.has(id) && cluster.disk(id).marked(c));
    expect(marked().sort()).toEqual([...c.holders].sort());
    const coordinator = [...cluster.nodes].find(([, n]) => n.election?.state().term)?.[0];
    const victim = c.holders.find((h) => h !== coordinator) as number;
    cluster.crash(victim);
    await cluster.advance(15_000);
    const repaired = holding(cluster, c).filter((id) => !c.holders.includes(id));
    expect(repaired.length).toBeGreaterThan(0);
    expect(marked()).toEqual(expect.arrayContaining(repaired));
  });
});
