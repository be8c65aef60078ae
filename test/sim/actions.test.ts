// The action log as nodes write it (SPEC 6.4), over the simulated network: the
// node a request comes in on records the request, each node's reply and the
// outcome before answering; requests passed on are not logged twice.
import { afterEach, describe, expect, it } from "vitest";
import { DvsClient } from "../../client/dvsClient.js";
import { type Rply, rcode } from "../../protocol/messages.js";
import { SimCluster } from "../../sim/cluster.js";
import { type ActionLog, type ActionRecord, MemoryActionLog } from "../../transport/actionLog.js";

let stopClock: (() => void) | undefined;
afterEach(() => {
  stopClock?.();
  stopClock = undefined;
});

async function cluster(seed: number, log: ActionLog) {
  const ids = [1, 2, 3];
  const c = new SimCluster({ seed, actionLog: log });
  for (const id of ids) c.start(id);
  await c.clock.runUntil(() => {
    const views = c.views();
    return ids.every((id) => views.get(id)?.members.length === ids.length);
  }, 5_000);
  const connect = (role: "admin" | "viewer") =>
    new DvsClient(c.network.connect(`tool-${role}`), {
      cluster: "dvs",
      clientId: role,
      role,
      timeoutMs: 10_000,
      ...(role === "admin" ? c.signing : {}),
    });
  stopClock = c.clock.autoRun();
  return { c, admin: connect("admin"), viewer: connect("viewer") };
}

const shape = (records: ActionRecord[]) =>
  records.map((r) => (r.kind === "reply" ? `reply.${r.node}:${r.rcode}` : `${r.kind}:${r.node}`));

/** A log whose writes fail, as JetStream does when it is unreachable. */
class BrokenLog extends MemoryActionLog {
  override async append(): Promise<void> {
    throw new Error("JetStream is not available");
  }
}

/** A log that takes request records but fails every reply and outcome for its first `failures` writes of them. */
class FlakyEndLog extends MemoryActionLog {
  constructor(public failures: number) {
    super();
  }
  override async append(record: ActionRecord): Promise<void> {
    if (record.kind !== "request" && this.failures > 0) {
      this.failures--;
      throw new Error("JetStream is electing a stream leader");
    }
    return super.append(record);
  }
}

describe("the action log, as nodes write it", () => {
  it("retries an outcome the log could not take, and names the action once it is in", async () => {
    const log = new FlakyEndLog(3);
    const { admin } = await cluster(65, log);
    const rply = await admin.request("GETDVSINFO", {}, { dst: 2, action: "F1" });
    expect(rply.action).toBe("F1");
    expect(shape(await log.show("F1"))).toEqual(["request:2", "reply.2:-300", "outcome:2"]);
  });

  it("answers without an action id when the outcome never reaches the log", async () => {
    const log = new FlakyEndLog(Number.POSITIVE_INFINITY);
    const { admin } = await cluster(66, log);
    const rply = await admin.request("GETDVSINFO", {}, { dst: 2, action: "F2" });
    // Served, but the requester is not told the action is in the log: only its request record is.
    expect(rply.rcode).toBe(rcode("ENOTINIT"));
    expect(rply.action).toBeUndefined();
    expect(shape(await log.show("F2"))).toEqual(["request:2"]);
  });

  it("records an ALL request, each member's reply and the outcome under the requester's action id", async () => {
    const log = new MemoryActionLog();
    const { admin } = await cluster(61, log);
    const rply = await admin.request("DVSINIT", { name: "lab" }, { action: "A1" });
    expect(rply.action).toBe("A1");
    const records = await log.show("A1");
    // The node that took the request from the queue logged it, and no one else did.
    const entry = records[0]?.node;
    expect(shape(records)).toEqual([
      `request:${entry}`,
      "reply.1:1",
      "reply.2:2",
      "reply.3:3",
      `outcome:${entry}`,
    ]);
    expect(records[0]).toMatchObject({ role: "admin", src: "admin", type: "DVSINIT", dst: "ALL" });
    expect(records.at(-1)).toMatchObject({ rcode: 0, ok: 3, failed: 0 });
  });

  it("keeps each member's whole data and 0/1 result of an ALL request, as the requester was answered", async () => {
    const log = new MemoryActionLog();
    const { admin } = await cluster(67, log);
    await admin.request("DVSINIT", { name: "lab" }, { action: "I1" });
    const rply = await admin.request("GETNODEINFO", {}, { action: "G1" });
    const entries = rply.data as Rply[];
    const replies = (await log.show("G1")).filter((r) => r.kind === "reply");
    expect(replies).toHaveLength(3);
    for (const r of replies) {
      const entry = entries.find((e) => e.src === r.node);
      // The whole node_usr, not a 256-character summary of it.
      expect(r).toMatchObject({ ok: 1, truncated: false, data: entry?.data });
      expect(JSON.stringify(entry?.data).length).toBeGreaterThan(100);
    }
  });

  it("gives a mutating request without an action id one, and logs no read that names none", async () => {
    const log = new MemoryActionLog();
    const { admin } = await cluster(62, log);
    await admin.request("DVSINIT", {});
    const forwarded = await admin.request("DCINIT", { dcid: 4, name: "web" }, { dst: 2, viaAnyNode: true });
    expect(forwarded.rcode).toBe(4);
    expect(forwarded.action).toMatch(/^[0-9A-Z]{26}$/);
    const read = await admin.request("GETDCINFO", { dcid: 4 }, { dst: 2 });
    expect(read.action).toBeUndefined();
    const listed = await log.list({ limit: 10 });
    expect(listed.map((s) => s.request.type)).toEqual(["DVSINIT", "DCINIT"]);
    // Forwarded to node 2: one reply record, node 2's.
    const records = await log.show(forwarded.action as string);
    expect(records.filter((r) => r.kind === "reply").map((r) => r.node)).toEqual([2]);
  });

  it("records a viewer's refused KILL with the viewer's role and EPERM", async () => {
    const log = new MemoryActionLog();
    const { viewer } = await cluster(63, log);
    const rply = await viewer.request("KILL", { pid: 999_999 }, { dst: 3, action: "V1" });
    expect(rply.rcode).toBe(rcode("EPERM"));
    const [summary] = await log.list({ limit: 1 });
    expect(summary?.request).toMatchObject({ action: "V1", role: "viewer", type: "KILL", dst: 3 });
    expect(summary?.outcome).toMatchObject({ rcode: rcode("EPERM"), error: "EPERM" });
  });

  it("logs a viewer's refused SPAWN without its params: a short record with their size and the refusal", async () => {
    const log = new MemoryActionLog();
    const { viewer } = await cluster(67, log);
    const input = "x".repeat(200_000);
    const rply = await viewer.request(
      "SPAWN",
      { dcid: 1, machine: "counter", input },
      { dst: 2, action: "V2" },
    );
    expect(rply.rcode).toBe(rcode("EPERM"));
    const [request, ...rest] = await log.show("V2");
    expect(request).toMatchObject({
      kind: "request",
      type: "SPAWN",
      src: "viewer",
      role: "viewer",
      refused: "EPERM",
    });
    expect(request).not.toHaveProperty("params");
    expect((request as { paramsBytes: number }).paramsBytes).toBeGreaterThan(200_000);
    // The whole action, reply and outcome included, stays small.
    expect(JSON.stringify([request, ...rest]).length).toBeLessThan(2_000);
  });

  it("refuses a request that reuses an action id with EEXIST, and the change is not made", async () => {
    const log = new MemoryActionLog();
    const { admin } = await cluster(65, log);
    await admin.request("DVSINIT", {}, { action: "I1" });
    const read = await admin.request("GETDVSINFO", {}, { dst: 1, action: "REUSED1" });
    expect(read.rcode).toBe(0);
    const reused = await admin.request("DCINIT", { dcid: 7, name: "seven" }, { dst: 1, action: "REUSED1" });
    expect(reused.rcode).toBe(rcode("EEXIST"));
    expect((await admin.request("GETDCINFO", { dcid: 7 }, { dst: 1 })).rcode).toBe(rcode("ENOENT"));
    const records = await log.show("REUSED1");
    expect(records.map((r) => (r.kind === "request" ? r.type : r.kind))).toEqual([
      "GETDVSINFO",
      "reply",
      "outcome",
    ]);
  });

  it("refuses a change it cannot log with EAGAIN and changes nothing, but still answers reads", async () => {
    const { admin } = await cluster(64, new BrokenLog());
    const refused = await admin.request("DVSINIT", {}, { dst: 1 });
    expect(refused.rcode).toBe(rcode("EAGAIN"));
    const read = await admin.request("GETDVSINFO", {}, { dst: 1, action: "R1" });
    // Served (and still not initialised: the refused DVSINIT did nothing).
    expect(read.rcode).toBe(rcode("ENOTINIT"));
    const all = (await admin.request("GETDVSINFO", {}, { action: "R2" })).data as Rply[];
    expect(all.map((e) => e.rcode)).toEqual([rcode("ENOTINIT"), rcode("ENOTINIT"), rcode("ENOTINIT")]);
  });
});
