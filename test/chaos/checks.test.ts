// The chaos run's schedule and checks, without processes: the same seed plans
// the same faults, and each check finds the violation planted in a history.
import { describe, expect, it } from "vitest";
import { rcode } from "../../protocol/messages.js";
import {
  type AllOp,
  type CommitOp,
  checkActions,
  checkAllReplies,
  checkCoordinators,
  checkFiles,
  checkSettles,
  crashLines,
  type Op,
  type UpdateOp,
  type ViewSeen,
  type WhoOp,
} from "./history.js";
import { FAULT_KINDS, fingerprint, planSchedule } from "./schedule.js";

const plan = (seed: number) => planSchedule({ seed, servers: 3, nodes: 6, durationMs: 600_000 });

describe("the chaos schedule", () => {
  it("is the same for the same seed and differs for another", () => {
    expect(plan(42)).toEqual(plan(42));
    expect(fingerprint(plan(42))).toBe(fingerprint(plan(42)));
    expect(fingerprint(plan(43))).not.toBe(fingerprint(plan(42)));
  });

  it("fills the duration with every kind of fault on servers and nodes that exist", () => {
    const episodes = plan(7);
    expect(episodes.length).toBeGreaterThan(30);
    expect(new Set(episodes.map((e) => e.fault.kind))).toEqual(new Set(FAULT_KINDS));
    for (const { fault } of episodes) {
      if (fault.kind === "cut-route") {
        expect(fault.a).toBeLessThan(fault.b);
        expect([fault.a, fault.b].every((s) => s >= 1 && s <= 3)).toBe(true);
      } else if ("server" in fault) expect(fault.server).toBeGreaterThanOrEqual(1);
      else expect(fault.node).toBeLessThanOrEqual(6);
    }
  });

  it("refuses route faults on a single server", () => {
    expect(() => planSchedule({ seed: 1, servers: 1, nodes: 3, durationMs: 10_000 })).toThrow(RangeError);
  });
});

const commit = (id: number, name: string, sha256: string, settledAt: number, version: number): CommitOp => ({
  kind: "commit",
  id,
  name,
  sha256,
  issuedAt: settledAt - 10,
  settledAt,
  outcome: { ok: true, value: { version, holders: [1, 2, 3] } },
});
const update = (id: number, name: string, issuedAt: number, version: number, sha256: string): UpdateOp => ({
  kind: "update",
  id,
  name,
  issuedAt,
  settledAt: issuedAt + 10,
  outcome: { ok: true, value: { version, sha256 } },
});
const attempted = new Map([["f", new Set(["aa", "bb", "cc"])]]);
const finalOf = (version: number, sha256: string) =>
  new Map([["f", { ok: true as const, value: { version, sha256 } }]]);

describe("the file checks", () => {
  const history: Op[] = [commit(1, "f", "aa", 100, 1), commit(2, "f", "bb", 200, 2)];

  it("pass a history where every read is at least the last acknowledged version", () => {
    const ops = [...history, update(3, "f", 150, 1, "aa"), update(4, "f", 250, 2, "bb")];
    expect(checkFiles(ops, finalOf(2, "bb"), attempted)).toEqual([]);
  });

  it("find an UPDATE that read back a version older than one acknowledged before it", () => {
    const ops = [...history, update(3, "f", 250, 1, "aa")];
    expect(checkFiles(ops, finalOf(2, "bb"), attempted).map((v) => v.check)).toEqual(["file-older"]);
  });

  it("find a final read that lost the newest acknowledged version", () => {
    expect(checkFiles(history, finalOf(1, "aa"), attempted).map((v) => v.check)).toEqual(["file-older"]);
  });

  it("find bytes that no commit of that version sent", () => {
    const ops = [...history, update(3, "f", 250, 2, "cc")];
    expect(checkFiles(ops, finalOf(2, "bb"), attempted).map((v) => v.check)).toEqual(["file-lost"]);
  });

  it("find one version acknowledged for two contents", () => {
    const ops = [...history, commit(3, "f", "cc", 300, 2)];
    expect(checkFiles(ops, finalOf(2, "cc"), attempted).map((v) => v.check)).toContain("file-order");
  });

  it("find a file whose final read failed", () => {
    const final = new Map([["f", { ok: false as const, error: "TimeoutError" }]]);
    expect(checkFiles(history, final, attempted).map((v) => v.check)).toEqual(["file-lost"]);
  });
});

const all = (id: number, src: number, members: number[], at: number, action?: string): AllOp => ({
  kind: "all",
  id,
  client: 0,
  type: "GETNODEINFO",
  issuedAt: at,
  settledAt: at + 20,
  outcome: {
    ok: true,
    value: {
      src,
      count: members.length,
      entries: members.map((m) => ({ src: m, rcode: 0 })),
      ...(action ? { action } : {}),
    },
  },
});
const view = (node: number, members: number[], at: number, incarnation = 1): ViewSeen => ({
  node,
  incarnation,
  members,
  at,
});

describe("the ALL reply check", () => {
  const views = [view(1, [1, 2], 5_000), view(1, [1, 2, 3], 10_000)];

  it("accepts entries that are a view the gatherer held while the request was in flight", () => {
    const ops = [all(1, 1, [1, 2, 3], 2_000), all(2, 1, [1, 2], 7_000), all(3, 1, [1, 2, 3], 12_000)];
    expect(checkAllReplies(ops, views, [1, 2, 3])).toEqual([]);
  });

  it("accepts a known node out of the view named EHOSTDOWN, and nothing else beyond the view", () => {
    const withDown = (rcodeOf3: number): AllOp => {
      const op = all(1, 1, [1, 2, 3], 7_000);
      const value = op.outcome.ok ? op.outcome.value : undefined;
      const entries = [
        { src: 1, rcode: 0 },
        { src: 2, rcode: 0 },
        { src: 3, rcode: rcodeOf3 },
      ];
      return { ...op, outcome: { ok: true, value: { ...(value as NonNullable<typeof value>), entries } } };
    };
    expect(checkAllReplies([withDown(rcode("EHOSTDOWN"))], views, [1, 2, 3])).toEqual([]);
    expect(checkAllReplies([withDown(0)], views, [1, 2, 3]).map((v) => v.check)).toEqual(["all-view"]);
  });

  it("finds entries that match no view of the gatherer", () => {
    const ops = [all(1, 1, [1, 3], 7_000)];
    expect(checkAllReplies(ops, views, [1, 2, 3]).map((v) => v.check)).toEqual(["all-view"]);
  });

  it("finds a member counted twice and a gatherer missing from its own reply", () => {
    const twice: AllOp = { ...all(1, 1, [1, 2], 7_000) };
    const value = twice.outcome.ok ? twice.outcome.value : undefined;
    const doubled: AllOp = {
      ...twice,
      outcome: {
        ok: true,
        value: {
          ...(value as NonNullable<typeof value>),
          count: 3,
          entries: [...(value?.entries ?? []), { src: 2, rcode: 0 }],
        },
      },
    };
    const messages = checkAllReplies([doubled, all(2, 3, [1, 2], 7_000)], views, [1, 2, 3]).map(
      (v) => v.message,
    );
    expect(messages.some((m) => m.includes("answered twice"))).toBe(true);
    expect(messages.some((m) => m.includes("gatherer is not among"))).toBe(true);
  });

  it("accepts a new incarnation's reply from itself alone", () => {
    const rejoined = [...views, view(1, [1, 2, 3], 20_000, 2)];
    expect(checkAllReplies([all(1, 1, [1], 19_900)], rejoined, [1, 2, 3])).toEqual([]);
    expect(checkAllReplies([all(1, 1, [1], 15_000)], rejoined, [1, 2, 3]).map((v) => v.check)).toEqual([
      "all-view",
    ]);
  });
});

describe("the other checks", () => {
  it("find an answered action missing from a majority of replicas, and one a replica diverged from", () => {
    const ops = [
      all(1, 1, [1], 0, "A1"),
      all(2, 1, [1], 0, "A2"),
      all(3, 1, [1], 0, "A3"),
      all(4, 1, [1], 0),
    ];
    const held = new Map([
      ["A1", { request: 3, outcome: 3 }],
      ["A2", { request: 3, outcome: 1 }],
      ["A3", { request: 2, outcome: 2 }],
    ]);
    const found = checkActions(ops, held, 3);
    expect(found.map((v) => v.check)).toEqual(["action-lost", "replica-desync"]);
    expect(found[0]?.message).toMatch(/A2.*outcome on 1/);
    expect(found[1]?.message).toMatch(/A3/);
    // Not read at all: lost.
    expect(checkActions([all(5, 1, [1], 0, "A5")], held, 3).map((v) => v.check)).toEqual(["action-lost"]);
  });

  it("find two coordinators named for one epoch", () => {
    const who = (id: number, coordinator: number, epoch: number): WhoOp => ({
      kind: "who",
      id,
      node: 1,
      issuedAt: id,
      settledAt: id + 1,
      outcome: { ok: true, value: { coordinator, epoch } },
    });
    expect(checkCoordinators([who(1, 2, 5), who(2, 2, 5), who(3, 3, 6)])).toEqual([]);
    expect(checkCoordinators([who(1, 2, 5), who(2, 3, 5)]).map((v) => v.check)).toEqual(["coordinator"]);
  });

  it("find an episode that did not settle within its bound", () => {
    const settle = {
      kind: "kill-node",
      fault: "SIGKILL node 2",
      appliedAt: 0,
      healedAt: 1,
      boundMs: 30_000,
      viewMs: 900,
      last: "",
    };
    expect(checkSettles([{ episode: 0, ...settle, settledMs: 1_200 }])).toEqual([]);
    expect(checkSettles([{ episode: 1, ...settle, settledMs: undefined }]).map((v) => v.check)).toEqual([
      "settle",
    ]);
  });

  it("find an uncaught exception or a fatal line in a daemon's output, and nothing in plain logs", () => {
    const info = JSON.stringify({ level: 30, msg: "node starting" });
    const warn = JSON.stringify({ level: 40, msg: "rejoining as a new incarnation" });
    expect(crashLines(`${info}\n${warn}\n`)).toEqual([]);
    const fatal = JSON.stringify({ level: 60, msg: "boom" });
    expect(crashLines(`${info}\n${fatal}\nTypeError: x is undefined\n    at y (z.js:1:1)\n`)).toHaveLength(3);
  });
});
