// The file store's pure decisions (machines/filePlacement.ts): whom to delegate
// to, where replicas go, who holds a version, what repair and COMMITTED mean.
import { describe, expect, it } from "vitest";
import {
  activeOrder,
  discardVerdict,
  garbageOf,
  holderCandidates,
  holdersOf,
  liveServers,
  mayRecord,
  nextVersion,
  obsoleteBy,
  repairNeeded,
  type ServerView,
} from "../../machines/filePlacement.js";
import type { ServerRecord } from "../../machines/server.js";

const sha = (c: string) => c.repeat(64);
const view = (
  node: number,
  type: "active" | "passive",
  files: ServerView["files"] = [],
  seenAt = 0,
): ServerView => ({
  node,
  type,
  files,
  seenAt,
});

describe("placement", () => {
  it("lists the servers heard within the live window, and this node, by id", () => {
    const record = (type: "active" | "passive", seenAt: number): ServerRecord => ({
      type,
      incarnation: 1,
      files: [],
      seenAt,
    });
    const servers = {
      "3": record("passive", 2_500),
      "2": record("active", 100),
      "5": record("active", 5_000),
    };
    const live = liveServers(servers, { node: 1, type: "active", files: [] }, 5_000, 3_000);
    expect(live.map((s) => s.node)).toEqual([1, 3, 5]);
  });

  it("delegates to the active servers in turn, this node last, and to itself when there is no other", () => {
    const servers = [view(1, "active"), view(2, "active"), view(3, "passive"), view(4, "active")];
    expect(activeOrder(servers, 1, 0)).toEqual([2, 4, 1]);
    expect(activeOrder(servers, 1, 1)).toEqual([2, 4, 1]);
    expect(activeOrder(servers, 1, 2)).toEqual([4, 2, 1]);
    expect(activeOrder([view(3, "passive")], 3, 0)).toEqual([3]);
  });

  it("places replicas on passive servers first (fewest files first), then locally, then on other actives", () => {
    const f = { name: "x", version: 1, sha256: sha("a") };
    const servers = [
      view(1, "active"),
      view(2, "active"),
      view(3, "passive", [f]),
      view(4, "passive"),
      view(5, "active"),
    ];
    expect(holderCandidates(servers, 1)).toEqual([4, 3, 1, 2, 5]);
    expect(holderCandidates(servers, 1, new Set([4, 1]))).toEqual([3, 2, 5]);
  });

  it("counts as holders the servers whose ALIVE lists the version, and recorded holders not heard from since", () => {
    const file = { name: "x", version: 2, sha256: sha("b") };
    const other = { name: "x", version: 2, sha256: sha("c") };
    const servers = [
      view(1, "active", [file], 5_000),
      view(2, "passive", [other], 5_000), // heard after the record, lists other bytes: not a holder
      view(3, "passive", [], 1_200), // not heard since the record: still counted
    ];
    expect(holdersOf(file, { holders: [2, 3, 4], since: 1_000 }, servers, 1_000)).toEqual([1, 3]);
  });

  it("repairs up to the replication factor, but only from a version someone still holds", () => {
    expect(repairNeeded([1, 2, 3], 3)).toBe(0);
    expect(repairNeeded([1], 3)).toBe(2);
    expect(repairNeeded([], 3)).toBe(0);
  });

  it("numbers versions from 1 and lets a coordinator record only over its own or older terms", () => {
    expect(nextVersion(undefined)).toBe(1);
    expect(nextVersion({ version: 7 })).toBe(8);
    expect(mayRecord(undefined, 5)).toBe(true);
    expect(mayRecord({ epoch: 5 }, 5)).toBe(true);
    expect(mayRecord({ epoch: 9 }, 5)).toBe(false);
  });

  it("makes older versions, and other bytes under the committed version, obsolete", () => {
    const held = [
      { name: "x", version: 1, sha256: sha("a"), size: 1 },
      { name: "x", version: 2, sha256: sha("b"), size: 1 },
      { name: "x", version: 2, sha256: sha("c"), size: 1 },
      { name: "x", version: 3, sha256: sha("d"), size: 1 },
      { name: "y", version: 1, sha256: sha("e"), size: 1 },
    ];
    const obsolete = obsoleteBy(held, { name: "x", version: 2, sha256: sha("b") });
    expect(obsolete.map((h) => `${h.version}${h.sha256[0]}`)).toEqual(["1a", "2c"]);
  });

  it("calls garbage what no record will name: old versions, losing bytes, and unrecorded copies of files no commit is busy with", () => {
    const listed = [
      { name: "x", version: 1, sha256: sha("a") },
      { name: "x", version: 2, sha256: sha("b") },
      { name: "x", version: 2, sha256: sha("c") },
      { name: "x", version: 3, sha256: sha("d") },
      { name: "y", version: 1, sha256: sha("e") },
      { name: "z", version: 1, sha256: sha("f") },
    ];
    const recorded = new Map([["x", { version: 2, sha256: sha("b") }]]);
    const garbage = (busy: string[]) =>
      garbageOf(listed, recorded, new Set(busy)).map((f) => `${f.name}${f.version}${f.sha256[0]}`);
    expect(garbage([])).toEqual(["x1a", "x2c", "x3d", "y1e", "z1f"]);
    // A commit of x or z under way may still record version 3 or a first version: those wait.
    expect(garbage(["x", "z"])).toEqual(["x1a", "x2c", "y1e"]);
  });

  it("keeps a DISCARDed copy some catalog recorded when it is newer than the record or its file has none", () => {
    const record = { name: "x", version: 2, sha256: sha("b") };
    const copy = (version: number, c: string) => ({ name: "x", version, sha256: sha(c) });
    // The catalog is older than a recorded copy (restored from a backup): the copy stays.
    expect(discardVerdict(copy(3, "d"), record, true)).toBe("newer");
    expect(discardVerdict(copy(1, "a"), "absent", true)).toBe("newer");
    // A copy never recorded past the record, or of a file without one, is a failed commit's leftover.
    expect(discardVerdict(copy(3, "d"), record, false)).toBe("discard");
    expect(discardVerdict(copy(1, "a"), "absent", false)).toBe("discard");
    // Older versions and other bytes under the recorded version go, recorded once or not.
    expect(discardVerdict(copy(1, "a"), record, true)).toBe("discard");
    expect(discardVerdict(copy(2, "c"), record, true)).toBe("discard");
    // The copy the record names never goes.
    expect(discardVerdict(copy(2, "b"), record, false)).toBe("named");
    expect(discardVerdict(copy(2, "b"), record, true)).toBe("named");
  });
});
