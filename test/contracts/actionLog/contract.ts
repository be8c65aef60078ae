// The contract every ActionLog keeps (SPEC 6.4), run unchanged against the
// in-memory log (test/unit/actionLog.test.ts) and the JetStream stream
// (test/integration/actionLog.test.ts).
import { describe, expect, it } from "vitest";
import type { ActionLog, ActionRecord } from "../../../transport/actionLog.js";
import { ActionExistsError } from "../../../transport/errors.js";

export interface ActionLogFixture {
  readonly log: ActionLog;
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

    it("shows nothing for an unknown action or an id that is not one", async () => {
      const { log, id } = await setup();
      expect(await log.show(id(99))).toEqual([]);
      expect(await log.show("a.b.>")).toEqual([]);
    });
  });
}
