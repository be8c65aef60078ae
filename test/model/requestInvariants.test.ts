// The request invariants as pure checks: settled requests built by hand, each
// breaking one invariant, must be blamed on that invariant; a well-formed one
// passes. (Planted bugs in mutations.test.ts show the model reaches them.)
import { describe, expect, it } from "vitest";
import { errorRply, makeRply } from "../../protocol/codec.js";
import { ALL, type Rply } from "../../protocol/messages.js";
import { TimeoutError } from "../../transport/errors.js";
import { InvariantViolation } from "./invariants.js";
import { checkSettled, type SettledRequest } from "./requestInvariants.js";

const client = "model-tool-1";
const rqst = { type: "GETDVSINFO", src: client, seq: 1 };
const answer = (node: number): Rply => makeRply(rqst, node, 0, { name: "dvs" });
const timedOut = (node: number): Rply => errorRply(rqst, node, "ETIMEDOUT", `node ${node} did not answer`);
const down = (node: number): Rply => errorRply(rqst, node, "EHOSTDOWN", `node ${node} is not in the view`);
const aggregate = (taker: number, entries: Rply[]): Rply =>
  makeRply(rqst, taker, entries.find((e) => e.rcode < 0)?.rcode ?? 0, entries);

/** An ALL request gathered by node 1 at t=101 with view [1,2,3] (and no other node known), answered at t=110. */
function settled(rply: Rply, over: Partial<SettledRequest> = {}): SettledRequest {
  return {
    seq: 1,
    spec: { type: "GETDVSINFO", params: {}, dst: ALL, viaAnyNode: false, timeoutMs: 500 },
    timeoutMs: 500,
    issuedAt: 100,
    settledAt: 110,
    outcome: { kind: "reply", rply },
    takes: [{ node: 1, at: 101, view: [1, 2, 3], known: [1, 2, 3] }],
    forwards: [],
    ran: new Set([1, 2, 3]),
    lostExcuse: undefined,
    quietComponents: undefined,
    ...over,
  };
}

function blamed(r: SettledRequest): string {
  try {
    checkSettled(r, client);
  } catch (error) {
    expect(error).toBeInstanceOf(InvariantViolation);
    return (error as InvariantViolation).invariant;
  }
  throw new Error("no invariant was blamed");
}

describe("request invariants", () => {
  it("accept an ALL reply with one answer per member of the gathering node's view", () => {
    expect(() =>
      checkSettled(settled(aggregate(1, [answer(1), answer(2), answer(3)])), client),
    ).not.toThrow();
  });

  it("blame an ALL reply that leaves out a member of the view", () => {
    expect(blamed(settled(aggregate(1, [answer(1), answer(3)])))).toBe(
      "an ALL reply has exactly one entry per member of the gathering node's view and per node it knows",
    );
  });

  it("blame an ALL reply that leaves out a known node out of the view, and accept it named EHOSTDOWN", () => {
    const takes = [{ node: 1, at: 101, view: [1, 2], known: [1, 2, 3] }];
    expect(blamed(settled(aggregate(1, [answer(1), answer(2)]), { takes }))).toBe(
      "an ALL reply has exactly one entry per member of the gathering node's view and per node it knows",
    );
    expect(() =>
      checkSettled(settled(aggregate(1, [answer(1), answer(2), down(3)]), { takes }), client),
    ).not.toThrow();
  });

  it("blame an answer or a timeout for a known node out of the view", () => {
    const takes = [{ node: 1, at: 101, view: [1, 2], known: [1, 2, 3] }];
    expect(blamed(settled(aggregate(1, [answer(1), answer(2), answer(3)]), { takes }))).toBe(
      "a known node out of the gathering node's view is named EHOSTDOWN",
    );
    expect(
      blamed(settled(aggregate(1, [answer(1), answer(2), timedOut(3)]), { takes, settledAt: 603 })),
    ).toBe("a known node out of the gathering node's view is named EHOSTDOWN");
  });

  it("accept a quiet cluster's reply that names a node of another component EHOSTDOWN at once", () => {
    const takes = [{ node: 1, at: 101, view: [1, 2], known: [1, 2, 3] }];
    const reply = aggregate(1, [answer(1), answer(2), down(3)]);
    expect(() =>
      checkSettled(settled(reply, { takes, quietComponents: [[1, 2], [3]] }), client),
    ).not.toThrow();
    expect(
      blamed(settled(aggregate(1, [answer(1), down(2), down(3)]), { takes, quietComponents: [[1, 2], [3]] })),
    ).toBe("in a quiet cluster no member leaves the view during a gather");
  });

  it("blame an ALL reply that names a member twice", () => {
    expect(blamed(settled(aggregate(1, [answer(1), answer(2), answer(2), answer(3)])))).toBe(
      "an ALL reply has one entry per member, in view order",
    );
  });

  it("blame an entry that answers another request", () => {
    const stale = { ...answer(2), seq: 7 };
    expect(blamed(settled(aggregate(1, [answer(1), stale, answer(3)])))).toBe(
      "every entry of an ALL reply answers the request",
    );
  });

  it("blame an ETIMEDOUT entry that comes before the timeout, and accept it after", () => {
    const reply = aggregate(1, [answer(1), answer(2), timedOut(3)]);
    expect(blamed(settled(reply, { settledAt: 300 }))).toBe("an ETIMEDOUT entry only after the timeout");
    expect(() => checkSettled(settled(reply, { settledAt: 603 }), client)).not.toThrow();
  });

  it("blame an answer from a node that never ran", () => {
    expect(blamed(settled(aggregate(1, [answer(1), answer(2), answer(3)]), { ran: new Set([1, 2]) }))).toBe(
      "an answer in an ALL reply comes from a running node",
    );
  });

  it("blame a lost reply nothing excuses, and accept one a crash excuses", () => {
    const lost = settled(answer(1), {
      outcome: { kind: "error", error: new TimeoutError("dvs.dvs.rqst", 600) },
    });
    expect(blamed(lost)).toBe("every request gets a reply within its timeout and slack");
    expect(() =>
      checkSettled({ ...lost, lostExcuse: "crash(1) while it was in flight" }, client),
    ).not.toThrow();
  });

  it("blame a quiet cluster's reply that waited for the timeout", () => {
    const reply = aggregate(1, [answer(1), answer(2), timedOut(3)]);
    expect(blamed(settled(reply, { settledAt: 603, quietComponents: [[1, 2, 3]] }))).toBe(
      "in a quiet cluster every member answers before the timeout",
    );
  });
});
