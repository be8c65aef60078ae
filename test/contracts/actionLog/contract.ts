// The contract every ActionLog keeps (SPEC 6.4), run unchanged against the
// in-memory log (test/unit/actionLog.test.ts) and the JetStream stream
// (test/integration/actionLog.test.ts).
import { describe, expect, it } from "vitest";
import {
  type ActionLogReader,
  type ActionRecord,
  capData,
  type EventRecord,
  REPLY_DATA_BYTES,
} from "../../../transport/actionLog.js";
import { ActionExistsError, ActionRecordTooLargeError } from "../../../transport/errors.js";

export interface ActionLogFixture {
  readonly log: ActionLogReader;
  /** Ids unique to this run, so suites sharing a server never see each other's actions. */
  readonly id: (n: number) => string;
}

function request(action: string, type: string, dst: number | "ALL", at: number, node = 1): ActionRecord {
  return {
    v: 1,
    kind: "request",
    action,
    at,
    node,
    role: "admin",
    src: "t",
    type,
    dst,
    seq: at,
    params: {},
  };
}

function reply(action: string, node: number, rcode: number): ActionRecord {
  return { v: 1, kind: "reply", action, at: 2, node, via: 1, rcode, count: 1, summary: "{}" };
}

function outcome(action: string, type: string, dst: number | "ALL", rcode: number): ActionRecord {
  return { v: 1, kind: "outcome", action, at: 3, node: 1, type, dst, rcode, ok: 1, failed: 0, durationMs: 1 };
}

function fullReply(action: string, node: number, data: unknown, maxBytes = REPLY_DATA_BYTES): ActionRecord {
  return {
    v: 1,
    kind: "reply",
    action,
    at: 2,
    node,
    via: 1,
    addr: `10.0.0.${node}`,
    rcode: 0,
    ok: 1,
    count: 1,
    summary: "{}",
    ...capData(data, maxBytes),
  };
}

function event(action: string, type: EventRecord["type"], node = 1): ActionRecord {
  return type === "COORDINATOR"
    ? { v: 1, kind: "event", action, at: 5, node, type, ok: 1, coordinator: node, epoch: 7 }
    : {
        v: 1,
        kind: "event",
        action,
        at: 5,
        node,
        type,
        ok: 1,
        view: { id: 3, members: [1, 2] },
        changed: [2],
      };
}

export function actionLogContract(name: string, setup: () => Promise<ActionLogFixture>): void {
  describe(`${name} action log contract`, () => {
    it("shows an action's request, replies and outcome in the order they were written", async () => {
      const { log, id } = await setup();
      const a = id(1);
      await log.append(request(a, "DCINIT", "ALL", 1));
      await log.append(reply(a, 1, 7));
      await log.append(reply(a, 2, 7));
      await log.append(outcome(a, "DCINIT", "ALL", 0));
      const records = await log.show(a);
      expect(records.map((r) => (r.kind === "reply" ? `reply.${r.node}` : r.kind))).toEqual([
        "request",
        "reply.1",
        "reply.2",
        "outcome",
      ]);
    });

    it("stores a reply or outcome written twice once", async () => {
      const { log, id } = await setup();
      const a = id(2);
      await log.append(request(a, "KILL", 1, 1));
      await log.append(reply(a, 1, 0));
      await log.append(reply(a, 1, 0));
      await log.append(outcome(a, "KILL", 1, 0));
      await log.append(outcome(a, "KILL", 1, 0));
      expect(await log.show(a)).toHaveLength(3);
    });

    it("refuses a second request under one action id, and keeps the first", async () => {
      const { log, id } = await setup();
      const a = id(3);
      await log.append(request(a, "GETDVSINFO", 1, 1));
      await expect(log.append(request(a, "DCINIT", 1, 2))).rejects.toBeInstanceOf(ActionExistsError);
      const records = await log.show(a);
      expect(records.map((r) => (r.kind === "request" ? r.type : r.kind))).toEqual(["GETDVSINFO"]);
    });

    it("lists the newest actions oldest first, with their outcome when there is one", async () => {
      const { log, id } = await setup();
      const type = `T${id(0).slice(-6)}`;
      for (let n = 10; n < 15; n++) await log.append(request(id(n), type, 2, n));
      for (const n of [10, 11, 12, 13]) await log.append(outcome(id(n), type, 2, -1));
      const listed = await log.list({ limit: 3, type });
      expect(listed.map((s) => s.request.action)).toEqual([id(12), id(13), id(14)]);
      expect(listed.map((s) => s.outcome?.rcode)).toEqual([-1, -1, undefined]);
    });

    it("filters by request type and by node (requests to that node or to ALL)", async () => {
      const { log, id } = await setup();
      const type = `F${id(0).slice(-6)}`;
      await log.append(request(id(20), type, 1, 1));
      await log.append(request(id(21), type, 2, 2));
      await log.append(request(id(22), type, "ALL", 3));
      await log.append(request(id(23), `${type}X`, 2, 4));
      const toTwo = await log.list({ limit: 10, type, node: 2 });
      expect(toTwo.map((s) => s.request.action)).toEqual([id(21), id(22)]);
    });

    it("refuses a request under an action id another node already logged", async () => {
      const { log, id } = await setup();
      const a = id(4);
      await log.append(request(a, "DCINIT", 1, 1, 1));
      await expect(log.append(request(a, "DCEND", 2, 2, 2))).rejects.toBeInstanceOf(ActionExistsError);
      const records = await log.show(a);
      expect(records.map((r) => (r.kind === "request" ? `${r.type}@${r.node}` : r.kind))).toEqual([
        "DCINIT@1",
      ]);
    });

    it("keeps a refused request's record as written: the refusal and the size of its params, no params", async () => {
      const { log, id } = await setup();
      const a = id(5);
      const { params: _, ...rest } = request(a, "KILL", 3, 1) as Extract<ActionRecord, { kind: "request" }>;
      const refused: ActionRecord = { ...rest, role: "viewer", refused: "EPERM", paramsBytes: 200_000 };
      await log.append(refused);
      const [stored] = await log.show(a);
      expect(stored).toEqual(refused);
      expect(stored).not.toHaveProperty("params");
    });

    it("reads one action's records by subject, from a start sequence, a page at a time", async () => {
      const { log, id } = await setup();
      const a = id(30);
      const b = id(31);
      const from = (await log.reach()).lastSeq + 1;
      await log.append(request(a, "PS", "ALL", 1));
      await log.append(request(b, "PS", 2, 1));
      for (const node of [1, 2, 3]) await log.append(reply(a, node, 0));
      await log.append(reply(b, 2, 0));
      await log.append(outcome(a, "PS", "ALL", 0));
      const all = await log.read({ action: a, fromSeq: from, limit: 100 });
      expect(
        all.records.map((s) => (s.record.kind === "reply" ? `reply.${s.record.node}` : s.record.kind)),
      ).toEqual(["request", "reply.1", "reply.2", "reply.3", "outcome"]);
      expect(all.records.every((s) => s.record.action === a)).toBe(true);
      // Two pages, the second resumed where the first stopped: the same records, none twice.
      const first = await log.read({ action: a, fromSeq: from, limit: 2 });
      const second = await log.read({ action: a, fromSeq: first.next, limit: 100 });
      expect([...first.records, ...second.records].map((s) => s.seq)).toEqual(all.records.map((s) => s.seq));
      // By kind: only the replies, of both actions, from the start sequence on.
      const replies = await log.read({ kind: "reply", fromSeq: from, limit: 100 });
      expect(replies.records.map((s) => `${s.record.action}.${s.record.node}`)).toEqual([
        `${a}.1`,
        `${a}.2`,
        `${a}.3`,
        `${b}.2`,
      ]);
      // A start past the action's records finds none.
      const past = all.records.at(-1)?.seq ?? 0;
      expect((await log.read({ action: a, fromSeq: past + 1, limit: 10 })).records).toEqual([]);
    });

    it("keeps a reply's data whole up to the cap and its address and 0/1 result", async () => {
      const { log, id } = await setup();
      const a = id(40);
      // Just under 64 KiB of JSON: kept whole.
      const data = { ps: "x".repeat(REPLY_DATA_BYTES - 20) };
      const stored = fullReply(a, 2, data);
      expect(stored).toMatchObject({ truncated: false });
      await log.append(request(a, "PS", 2, 1));
      await log.append(stored);
      const [, got] = await log.show(a);
      expect(got).toEqual(stored);
      expect(got).toMatchObject({ addr: "10.0.0.2", ok: 1, data });
    });

    it("keeps a reply cut to the cap as written: its start, its whole size, truncated", async () => {
      const { log, id } = await setup();
      const a = id(41);
      // Quotes double when the cut JSON is stored as a string: the cap holds on the stored form.
      const data = { rows: Array.from({ length: 20_000 }, (_, i) => `"row ${i}"`) };
      const cut = fullReply(a, 3, data, 4096);
      expect(cut).toMatchObject({ truncated: true, dataBytes: Buffer.byteLength(JSON.stringify(data)) });
      expect(Buffer.byteLength(JSON.stringify((cut as { dataText: string }).dataText))).toBeLessThanOrEqual(
        4096,
      );
      await log.append(request(a, "PS", 3, 1));
      await log.append(cut);
      const [, got] = await log.show(a);
      expect(got).toEqual(cut);
      expect(got).not.toHaveProperty("data");
      expect(JSON.stringify(data).startsWith((got as { dataText: string }).dataText)).toBe(true);
    });

    it("refuses a record over its size limit and stores nothing of it", async () => {
      const { log, id } = await setup();
      const a = id(42);
      await log.append(request(a, "PS", 2, 1));
      const huge: ActionRecord = {
        ...(fullReply(a, 2, null) as object),
        data: "y".repeat(400_000),
      } as ActionRecord;
      await expect(log.append(huge)).rejects.toBeInstanceOf(ActionRecordTooLargeError);
      expect(await log.show(a)).toHaveLength(1);
    });

    it("lists the newest events oldest first, by type, apart from the requests", async () => {
      const { log, id } = await setup();
      await log.append(event(id(50), "JOIN"));
      await log.append(event(id(51), "COORDINATOR", 2));
      await log.append(event(id(52), "DISCONNECT"));
      const newest = await log.events({ limit: 2 });
      expect(newest.map((e) => e.action)).toEqual([id(51), id(52)]);
      const terms = await log.events({ limit: 10, type: "COORDINATOR" });
      expect(terms.at(-1)).toMatchObject({ action: id(51), node: 2, coordinator: 2, epoch: 7 });
      expect(await log.show(id(52))).toEqual([event(id(52), "DISCONNECT")]);
      expect((await log.list({ limit: 1000 })).some((s) => s.request.action === id(50))).toBe(false);
    });

    it("says how far back it reaches", async () => {
      const { log, id } = await setup();
      await log.append(request(id(60), "PS", 1, 1));
      const reach = await log.reach();
      expect(reach.records).toBeGreaterThan(0);
      expect(reach.firstSeq).toBeGreaterThanOrEqual(1);
      expect(reach.lastSeq).toBeGreaterThanOrEqual(reach.firstSeq ?? 0);
      expect(reach.firstAt).toEqual(expect.any(Number));
    });

    it("shows nothing for an unknown action or an id that is not one", async () => {
      const { log, id } = await setup();
      expect(await log.show(id(99))).toEqual([]);
      expect(await log.show("a.b.>")).toEqual([]);
    });
  });
}
