// Hedged "any node" requests over the simulated network: a member that still
// takes its share of the queue subject but never answers (frozen: every
// message it sends is lost) must not swallow a request. A hedging client
// resends the same request to a live node after the accept deadline; ALL
// replies name the frozen node; a hedged change runs once.
import { afterEach, describe, expect, it } from "vitest";
import { DvsClient } from "../../client/dvsClient.js";
import { encode } from "../../protocol/codec.js";
import {
  ACK_NODE_HEADER,
  ACK_REQUEST_HEADER,
  ACK_STATUS,
  ACK_STATUS_HEADER,
} from "../../protocol/hedging.js";
import { type Rply, rcode } from "../../protocol/messages.js";
import { SimCluster } from "../../sim/cluster.js";
import { type ActionRecord, MemoryActionLog, type RequestRecord } from "../../transport/actionLog.js";
import { TimeoutError } from "../../transport/errors.js";
import { header } from "../../transport/transport.js";

let stopClock: (() => void) | undefined;
afterEach(() => {
  stopClock?.();
  stopClock = undefined;
});

const REQUEST_TIMEOUT_MS = 3_000;
const GATHER_TIMEOUT_MS = 2_500;

/** An action log that a frozen node's writes never reach (its process is stopped). */
class FreezableLog extends MemoryActionLog {
  readonly frozen = new Set<number>();
  readonly #stored: RequestRecord[] = [];
  frozenAttempts = 0;
  override async append(record: ActionRecord): Promise<void> {
    if (this.frozen.has(record.node)) {
      this.frozenAttempts++;
      return new Promise<void>(() => {});
    }
    await super.append(record);
    if (record.kind === "request") this.#stored.push(record);
  }
  requests(type: string): RequestRecord[] {
    return this.#stored.filter((r) => r.type === type);
  }
}

async function frozenThree(seed: number) {
  const c = await SimCluster.converged(seed, [1, 2, 3]);
  const client = (id: string, hedge: boolean) =>
    new DvsClient(c.network.connect(id), {
      cluster: "dvs",
      clientId: id,
      timeoutMs: REQUEST_TIMEOUT_MS,
      ...(hedge ? { hedge: { acceptMs: 300, clock: c.clock, nodes: () => [1, 2, 3] } } : {}),
      ...c.signing,
    });
  stopClock = c.clock.autoRun();
  await client("setup", false).request("DVSINIT", {}, { gatherTimeoutMs: GATHER_TIMEOUT_MS });
  // Node 3 keeps its subscriptions (NATS still hands it queue messages) but nothing it sends gets out.
  c.network.setFaults({ dropRate: 1 }, "node-3");
  return { c, client };
}

describe("hedged requests", () => {
  it("a node acknowledges at once a request that asks for it, and only such a request", async () => {
    const c = await SimCluster.converged(70, [1, 2]);
    stopClock = c.clock.autoRun();
    const tool = c.network.connect("tool");
    const seen: { ack: string | undefined; node: string | undefined; bytes: number }[] = [];
    const inbox = tool.inbox();
    tool.subscribe(inbox, (m) =>
      seen.push({
        ack: header(m, ACK_STATUS_HEADER),
        node: header(m, ACK_NODE_HEADER),
        bytes: m.data.byteLength,
      }),
    );
    const rqst = (seq: number) => encode({ v: 1, type: "GETNODEINFO", src: "tool", dst: 2, seq, params: {} });
    tool.publish("dvs.dvs.node.2.rqst", rqst(1), { reply: inbox, headers: { [ACK_REQUEST_HEADER]: "1" } });
    await c.advance(200);
    expect(seen).toHaveLength(2);
    expect(seen[0]).toEqual({ ack: ACK_STATUS, node: "2", bytes: 0 });
    expect(seen[1]?.ack).toBeUndefined();
    expect(seen[1]?.bytes).toBeGreaterThan(0);
    seen.length = 0;
    tool.publish("dvs.dvs.node.2.rqst", rqst(2), { reply: inbox });
    await c.advance(200);
    expect(seen.map((m) => m.ack)).toEqual([undefined]);
  });

  it("30 ALL requests through the queue subject all answer in time, each naming the frozen node", async () => {
    const { c, client } = await frozenThree(71);
    const hedging = client("hedging", true);
    for (let i = 0; i < 30; i++) {
      const t0 = c.clock.now();
      const rply = await hedging.request("GETDVSINFO", {}, { gatherTimeoutMs: GATHER_TIMEOUT_MS });
      expect(c.clock.now() - t0).toBeLessThanOrEqual(REQUEST_TIMEOUT_MS + 1_000);
      const entries = rply.data as Rply[];
      expect(entries.map((e) => e.src)).toEqual([1, 2, 3]);
      expect([rcode("ETIMEDOUT"), rcode("EHOSTDOWN")]).toContain(entries[2]?.rcode);
      expect(entries[0]?.rcode).toBe(0);
      expect(entries[1]?.rcode).toBe(0);
    }
  });

  it("without hedging, requests the queue hands the frozen node are lost", async () => {
    const { client } = await frozenThree(71);
    const plain = client("plain", false);
    let lost = 0;
    for (let i = 0; i < 30; i++) {
      try {
        await plain.request("GETDVSINFO", {}, { gatherTimeoutMs: GATHER_TIMEOUT_MS });
      } catch (error) {
        expect(error).toBeInstanceOf(TimeoutError);
        lost++;
      }
    }
    expect(lost).toBeGreaterThan(0);
  });

  it("a hedged change runs once: each action is logged once and answered with its result", async () => {
    const log = new FreezableLog();
    const c = new SimCluster({ seed: 72, actionLog: log });
    for (const id of [1, 2, 3]) c.start(id);
    await c.clock.runUntil(() => [1, 2, 3].every((id) => c.views().get(id)?.members.length === 3), 5_000);
    stopClock = c.clock.autoRun();
    const admin = new DvsClient(c.network.connect("admin"), {
      cluster: "dvs",
      clientId: "admin",
      timeoutMs: REQUEST_TIMEOUT_MS,
      hedge: { acceptMs: 300, clock: c.clock, nodes: () => [1, 2, 3] },
      ...c.signing,
    });
    await admin.request("DVSINIT", {}, { gatherTimeoutMs: GATHER_TIMEOUT_MS });
    // Frozen: nothing node 3 sends gets out, and it never gets as far as the log.
    c.network.setFaults({ dropRate: 1 }, "node-3");
    log.frozen.add(3);
    for (let dcid = 1; dcid <= 12; dcid++) {
      const rply = await admin.request(
        "DCINIT",
        { dcid, nodes: [1, 2] },
        { dst: 1, viaAnyNode: true, gatherTimeoutMs: GATHER_TIMEOUT_MS },
      );
      expect(rply).toMatchObject({ src: 1, rcode: dcid });
      expect(rply.action).toBeDefined();
    }
    const stored = log.requests("DCINIT");
    expect(stored).toHaveLength(12);
    expect(new Set(stored.map((r) => r.action)).size).toBe(12);
    // The queue handed node 3 some of them: those were the ones hedged.
    expect(log.frozenAttempts).toBeGreaterThan(0);
  });
});
