// `dvsd up`'s judgement of DVSINIT and the environment it gives its nodes.
import { describe, expect, it } from "vitest";
import { initOutcome, nodeEnvironment } from "../../daemon/launcher.js";
import { type Rply, rcode } from "../../protocol/messages.js";

function entry(src: number, code: number, error?: string): Rply {
  return {
    v: 1,
    type: "DVSINIT",
    src,
    dst: "dvsd-up",
    seq: 1,
    rcode: code,
    count: 1,
    data: error === undefined ? { name: "dvs" } : { error, message: error },
  };
}

function all(entries: Rply[], code = 0): Rply {
  return {
    v: 1,
    type: "DVSINIT",
    src: 1,
    dst: "dvsd-up",
    seq: 1,
    rcode: code,
    count: entries.length,
    data: entries,
  };
}

describe("DVSINIT as dvsd up judges it", () => {
  it("is a success when every node started took it or already had a DVS", () => {
    const outcome = initOutcome(
      "dvs",
      [1, 2, 3],
      all([entry(1, 1), entry(2, 2), entry(3, rcode("EEXIST"), "EEXIST")]),
    );
    expect(outcome.ok).toBe(true);
    expect(outcome.line).toBe('DVS "dvs" initialised on 2 node(s), already on 1');
  });

  it("is an error naming the nodes that did not answer, never a success line (0 of 3 included)", () => {
    const some = initOutcome("dvs", [1, 2, 3], all([entry(1, 1)]));
    expect(some).toMatchObject({ ok: false, missing: [2, 3], failed: [] });
    expect(some.line).toMatch(/^error: DVSINIT reached 1 of the 3 nodes started; no answer from node 2, 3/);
    const none = initOutcome("dvs", [1, 2, 3], all([]));
    expect(none).toMatchObject({ ok: false, missing: [1, 2, 3] });
    expect(none.line).not.toMatch(/initialised/);
  });

  it("is an error naming the nodes that refused it or timed out, with their error", () => {
    const outcome = initOutcome(
      "dvs",
      [1, 2, 3],
      all([entry(1, 1), entry(2, rcode("ETIMEDOUT"), "ETIMEDOUT"), entry(3, rcode("EPERM"), "EPERM")], -1),
    );
    expect(outcome).toMatchObject({ ok: false, missing: [], failed: [2, 3] });
    expect(outcome.line).toMatch(/failed on node 2: ETIMEDOUT, node 3: EPERM/);
  });

  it("does not count answers from nodes it did not start", () => {
    const outcome = initOutcome("dvs", [1, 2], all([entry(1, 1), entry(7, 7)]));
    expect(outcome).toMatchObject({ ok: false, missing: [2] });
  });
});

describe("a node's environment", () => {
  it("holds no credentials or keys that would override its config file", () => {
    const env = nodeEnvironment({
      PATH: "/bin",
      DVS_NATS_USER: "admin",
      DVS_NATS_PASS: "x",
      DVS_ADMIN_KEYS: "U",
    });
    expect(env).toEqual({ PATH: "/bin" });
  });
});
