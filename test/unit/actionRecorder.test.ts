// What the action recorder puts in the log (SPEC 6.4): a request refused before
// it runs is recorded without its params, params too large to keep are left
// out with their size, and the reply summaries of one action share a budget.
// Records are checked against the subject they are stored on.
import { describe, expect, it } from "vitest";
import { ActionRecorder, type ActionRqst } from "../../actors/actionRecorder.js";
import { silentLogger } from "../../actors/logger.js";
import { encode } from "../../protocol/codec.js";
import type { Rply } from "../../protocol/messages.js";
import {
  ACTION_DATA_BUDGET_BYTES,
  type ActionRecord,
  MAX_RECORD_BYTES,
  MemoryActionLog,
  REPLY_DATA_BYTES,
  type ReplyRecord,
  recordBytes,
  recordKey,
  recordOnKey,
  SUMMARY_BUDGET_CHARS,
} from "../../transport/actionLog.js";
import { SimClock } from "../../transport/sim/clock.js";

function recorder(log = new MemoryActionLog(), addr?: string) {
  const clock = new SimClock({ startMs: 1_700_000_000_000 });
  let n = 0;
  const r = new ActionRecorder({
    log,
    node: 2,
    clock,
    logger: silentLogger,
    newId: () => `ID${++n}`,
    ...(addr ? { addr } : {}),
  });
  return { r, log };
}

const repliesOf = async (log: MemoryActionLog, action = "A1") =>
  (await log.show(action)).filter((x): x is ReplyRecord => x.kind === "reply");

const rqst = (fields: Partial<ActionRqst> & Pick<ActionRqst, "type" | "params">): ActionRqst =>
  ({ v: 1, src: "tool", dst: 3, seq: 7, action: "A1", role: "admin", ...fields }) as ActionRqst;

const rply = (src: number, data: unknown, rcode = 0): Rply => ({
  v: 1,
  type: "PS",
  src,
  dst: "tool",
  seq: 7,
  rcode,
  count: 1,
  data,
});

describe("the action recorder", () => {
  it("records a viewer's refused mutating request without its params: type, requester, refusal, size, action id", async () => {
    const { r, log } = recorder();
    const input = "x".repeat(200_000);
    const spawn = rqst({
      type: "SPAWN",
      role: "viewer",
      src: "viewer-1",
      params: { dcid: 1, machine: "counter", input },
    });
    expect(await r.begin(spawn)).toBe("logged");
    const [record] = await log.show("A1");
    expect(record).toEqual({
      v: 1,
      kind: "request",
      action: "A1",
      at: 1_700_000_000_000,
      node: 2,
      role: "viewer",
      src: "viewer-1",
      type: "SPAWN",
      dst: 3,
      seq: 7,
      refused: "EPERM",
      paramsBytes: encode(spawn.params, "cbor").byteLength,
    });
    expect(JSON.stringify(record).length).toBeLessThan(400);
  });

  it("records an admin's params, but leaves out params past the cap and keeps their size", async () => {
    const { r, log } = recorder();
    await r.begin(rqst({ type: "DCINIT", action: "small", params: { dcid: 1, name: "web" } }));
    const big = { dcid: 1, machine: "counter", input: "y".repeat(100_000) };
    await r.begin(rqst({ type: "SPAWN", action: "big", params: big }));
    expect((await log.show("small"))[0]).toMatchObject({ params: { dcid: 1, name: "web" } });
    const [large] = await log.show("big");
    expect(large).not.toHaveProperty("params");
    expect(large).not.toHaveProperty("refused");
    expect(large).toMatchObject({ paramsBytes: encode(big, "cbor").byteLength });
  });

  it("lets the node say which other requests are refused before they run", async () => {
    const log = new MemoryActionLog();
    const clock = new SimClock();
    const r = new ActionRecorder({
      log,
      node: 1,
      clock,
      logger: silentLogger,
      newId: () => "X",
      refusal: (q) => (q.type === "KILL" ? "EACCES" : undefined),
    });
    await r.begin(rqst({ type: "KILL", params: { pid: 4 } }));
    expect((await log.show("A1"))[0]).toMatchObject({ refused: "EACCES", paramsBytes: expect.any(Number) });
  });

  it("keeps the reply summaries of one ALL action within one budget, and names itself on each reply", async () => {
    const { r, log } = recorder();
    const all = rqst({ type: "PS", dst: "ALL", params: {} });
    await r.begin(all);
    const members = Array.from({ length: 100 }, (_, i) => rply(i + 1, { rows: "z".repeat(10_000) }));
    expect(await r.end(all, { ...rply(2, members), count: members.length }, 1_700_000_000_000)).toBe(true);
    const replies = (await log.show("A1")).filter((x): x is ReplyRecord => x.kind === "reply");
    expect(replies).toHaveLength(100);
    expect(replies.every((x) => x.via === 2)).toBe(true);
    const chars = replies.reduce((sum, x) => sum + x.summary.length, 0);
    // Each cut summary ends with one extra character, the ellipsis.
    expect(chars).toBeLessThanOrEqual(SUMMARY_BUDGET_CHARS + replies.length);
    expect(replies[0]?.summary.length).toBeLessThan(256);
  });
});

describe("the reply records (seed 001: responder, ipaddr, 0/1 result, data)", () => {
  it("names each responder's address as it stated it, its own for itself, and none that is not an address", async () => {
    const { r, log } = recorder(new MemoryActionLog(), "10.1.1.2");
    const all = rqst({ type: "GETDVSINFO", dst: "ALL", params: {} });
    await r.begin(all);
    const entries = [
      { ...rply(1, { n: 1 }), addr: "10.1.1.1" },
      rply(2, { n: 2 }),
      { ...rply(3, { n: 3 }), addr: "evil; rm -rf / #" },
      { ...rply(4, { n: 4 }), addr: "node4.example.org" },
      rply(5, { error: "ETIMEDOUT", message: "node 5 did not answer" }, -110),
    ];
    expect(await r.end(all, { ...rply(2, entries), count: entries.length }, 1_700_000_000_000)).toBe(true);
    const replies = await repliesOf(log);
    expect(replies.map((x) => [x.node, x.addr, x.ok, x.rcode])).toEqual([
      [1, "10.1.1.1", 1, 0],
      [2, "10.1.1.2", 1, 0],
      [3, undefined, 1, 0],
      [4, "node4.example.org", 1, 0],
      [5, undefined, 0, -110],
    ]);
    expect(replies[4]).toMatchObject({ error: "ETIMEDOUT", data: { error: "ETIMEDOUT" } });
  });

  it("keeps a reply's data whole up to 64 KiB, and cuts larger data to its start, flagged, with its size", async () => {
    const { r, log } = recorder();
    const small = { ps: "p".repeat(60_000) };
    const one = rqst({ type: "PS", action: "S", params: {} });
    await r.begin(one);
    await r.end(one, rply(3, small), 0);
    expect((await repliesOf(log, "S"))[0]).toMatchObject({ data: small, truncated: false });
    const big = { ps: "q".repeat(200_000) };
    const two = rqst({ type: "PS", action: "B", params: {} });
    await r.begin(two);
    await r.end(two, rply(3, big), 0);
    const [cut] = await repliesOf(log, "B");
    expect(cut).toMatchObject({ truncated: true, dataBytes: JSON.stringify(big).length });
    expect(cut).not.toHaveProperty("data");
    expect(JSON.stringify(big).startsWith(cut?.dataText ?? "x")).toBe(true);
    expect(cut?.dataText?.length).toBeGreaterThan(REPLY_DATA_BYTES - 100);
    expect(recordBytes(cut as ReplyRecord)).toBeLessThanOrEqual(MAX_RECORD_BYTES);
  });

  it("shares 1 MiB of data among the replies of one action, and every record fits the log", async () => {
    const { r, log } = recorder();
    const all = rqst({ type: "PS", dst: "ALL", params: {} });
    await r.begin(all);
    // Quotes double when cut data is stored as a string: the worst case for the record's size.
    const members = Array.from({ length: 40 }, (_, i) => rply(i + 1, { rows: '"'.repeat(60_000) }));
    expect(await r.end(all, { ...rply(2, members), count: members.length }, 0)).toBe(true);
    const replies = await repliesOf(log);
    expect(replies).toHaveLength(40);
    expect(replies.every((x) => x.truncated)).toBe(true);
    const stored = replies.reduce((sum, x) => sum + Buffer.byteLength(JSON.stringify(x.dataText)), 0);
    expect(stored).toBeLessThanOrEqual(ACTION_DATA_BUDGET_BYTES);
    expect(Math.max(...replies.map((x) => recordBytes(x)))).toBeLessThanOrEqual(MAX_RECORD_BYTES);
  });
});

describe("a stored record and its subject", () => {
  const reply: ActionRecord = {
    v: 1,
    kind: "reply",
    action: "A9",
    at: 1,
    node: 4,
    via: 2,
    rcode: 0,
    count: 0,
    summary: "",
  };
  const request: ActionRecord = {
    v: 1,
    kind: "request",
    action: "A9",
    at: 1,
    node: 2,
    role: "admin",
    src: "t",
    type: "KILL",
    dst: 4,
    seq: 1,
    params: { pid: 9 },
  };

  it("is believed on the subject its author writes it to", () => {
    expect(recordKey(request)).toBe("2.A9.request");
    expect(recordKey(reply)).toBe("2.A9.reply.4");
    expect(recordOnKey("2.A9.request", request)).toEqual(request);
    expect(recordOnKey("2.A9.reply.4", reply)).toEqual(reply);
  });

  it("is not believed when its subject names another author than its body, or another action, kind or replier", () => {
    expect(recordOnKey("3.A9.request", request)).toBe("author");
    expect(recordOnKey("4.A9.reply.4", reply)).toBe("author");
    expect(recordOnKey("2.A8.request", request)).toBe("subject");
    expect(recordOnKey("2.A9.outcome", request)).toBe("subject");
    expect(recordOnKey("2.A9.reply.5", reply)).toBe("subject");
    expect(recordOnKey("2.A9.reply", reply)).toBe("subject");
    expect(recordOnKey("2.A9.request.x", request)).toBe("subject");
    expect(recordOnKey("2.A9.request", { ...request, params: undefined, kind: "nope" })).toBe("invalid");
  });
});
