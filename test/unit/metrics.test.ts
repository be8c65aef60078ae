// A node's Prometheus metrics (daemon/metrics.ts, daemon/metricsServer.ts): the
// hooks move their counters, the gauges read the node when scraped, several
// nodes in one process keep apart, the endpoint serves the text format and a
// taken port is a named error; and a simulated cluster's real runtimes count
// heartbeats, view changes, requests, gathers and the coordinator's term.
import { createServer } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { noMetrics } from "../../actors/metrics.js";
import { bytesSource, FileClient } from "../../client/fileClient.js";
import { MetricsListenError } from "../../daemon/errors.js";
import { type ObservedNode, PrometheusMetrics } from "../../daemon/metrics.js";
import { type MetricsServer, serveMetrics } from "../../daemon/metricsServer.js";
import { ALL, rcode } from "../../protocol/messages.js";
import { subjects } from "../../protocol/subjects.js";
import { SimCluster } from "../../sim/cluster.js";
import type { ActionLog, ActionRecord } from "../../transport/actionLog.js";

type Labels = Record<string, string>;

/** The sum of a metric's samples whose labels include `labels` (a histogram's by `metricName`). */
async function sample(metrics: PrometheusMetrics, name: string, labels: Labels = {}): Promise<number> {
  const all = await metrics.registry.getMetricsAsJSON();
  const family =
    all.find((m) => m.name === name) ??
    all.find((m) => String(m.type) === "histogram" && name.startsWith(`${m.name}_`));
  if (!family) throw new Error(`no metric ${name}`);
  const values = family.values as { metricName?: string; labels: Labels; value: number }[];
  return values
    .filter((v) => (v.metricName ?? family.name) === name)
    .filter((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want))
    .reduce((sum, v) => sum + v.value, 0);
}

describe("a node's metrics", () => {
  it("counts requests by type, result and source, and times the clients' ones", async () => {
    const m = new PrometheusMetrics({ node: 1, cluster: "dvs" });
    m.requestAnswered("GETNODEINFO", 0, "public", 3);
    m.requestAnswered("GETNODEINFO", 0, "public", 7);
    m.requestAnswered("DVSINIT", 4, "multicast", 1);
    m.requestAnswered("KILL", rcode("EPERM"), "readonly", 1);
    m.requestAnswered("NOSUCHTYPE", rcode("EBADMSG"), "public", 1);
    m.requestAnswered("GETNODEINFO", -9999, "forward", 1);
    expect(await sample(m, "dvsd_requests_total", { type: "GETNODEINFO", rcode: "OK" })).toBe(2);
    // A positive result is a result, not a label value of its own.
    expect(
      await sample(m, "dvsd_requests_total", { type: "DVSINIT", rcode: "OK", source: "multicast" }),
    ).toBe(1);
    expect(await sample(m, "dvsd_requests_total", { type: "KILL", rcode: "EPERM" })).toBe(1);
    // A type nobody knows does not become a label value.
    expect(await sample(m, "dvsd_requests_total", { type: "invalid", rcode: "EBADMSG" })).toBe(1);
    expect(await sample(m, "dvsd_requests_total", { rcode: "other" })).toBe(1);
    expect(await sample(m, "dvsd_request_duration_seconds_count", { type: "GETNODEINFO" })).toBe(2);
    expect(await sample(m, "dvsd_request_duration_seconds_sum", { type: "GETNODEINFO" })).toBeCloseTo(0.01);
    // Passed on between nodes: counted, but its latency is the entry node's.
    expect(await sample(m, "dvsd_request_duration_seconds_count", { type: "DVSINIT" })).toBe(0);
  });

  it("counts gathers, stragglers, membership messages, view changes, terms and file operations", async () => {
    const m = new PrometheusMetrics({ node: 1, cluster: "dvs" });
    m.gathered(3, 0, 0);
    m.gathered(4, 1, 2);
    m.membershipMessage("heartbeat", "sent");
    m.membershipMessage("heartbeat", "sent");
    m.membershipMessage("alert", "received");
    m.viewChanged("JOIN");
    m.viewChanged("PARTITION");
    m.termWon(7);
    m.fileOperation("commit", "ok");
    m.fileOperation("replica", "busy");
    expect(await sample(m, "dvsd_all_fanout_nodes_count")).toBe(2);
    expect(await sample(m, "dvsd_all_fanout_nodes_sum")).toBe(7);
    expect(await sample(m, "dvsd_all_stragglers_total", { reason: "timeout" })).toBe(1);
    expect(await sample(m, "dvsd_all_stragglers_total", { reason: "left" })).toBe(2);
    expect(await sample(m, "dvsd_membership_messages_total", { kind: "heartbeat", direction: "sent" })).toBe(
      2,
    );
    expect(await sample(m, "dvsd_membership_messages_total", { kind: "alert", direction: "received" })).toBe(
      1,
    );
    expect(await sample(m, "dvsd_view_changes_total", { event: "PARTITION" })).toBe(1);
    expect(await sample(m, "dvsd_coordinator_terms_won_total")).toBe(1);
    expect(await sample(m, "dvsd_file_operations_total", { operation: "replica", outcome: "busy" })).toBe(1);
  });

  it("times action-log writes, failed ones apart, and passes the failure on", async () => {
    const m = new PrometheusMetrics({ node: 1, cluster: "dvs" });
    let clock = 0;
    let fail = false;
    const log: ActionLog = {
      append: async () => {
        clock += 4;
        if (fail) throw new Error("stream unavailable");
      },
      list: async () => [],
      show: async () => [],
    };
    const timed = m.timedActionLog(log, () => clock);
    await timed.append({} as ActionRecord);
    fail = true;
    await expect(timed.append({} as ActionRecord)).rejects.toThrow("stream unavailable");
    expect(await sample(m, "dvsd_action_log_write_seconds_count", { outcome: "ok" })).toBe(1);
    expect(await sample(m, "dvsd_action_log_write_seconds_sum", { outcome: "ok" })).toBeCloseTo(0.004);
    expect(await sample(m, "dvsd_action_log_write_seconds_count", { outcome: "error" })).toBe(1);
  });

  it("reads the gauges from the node only when scraped", async () => {
    const m = new PrometheusMetrics({ node: 2, cluster: "dvs" });
    let reads = 0;
    const node = {
      identity: { node: 2, cluster: "dvs", incarnation: 5 },
      get membership() {
        reads++;
        return { context: { view: { id: 12, members: [1, 2, 3] }, minority: false } };
      },
      viewMembers: () => [1, 2, 3],
      election: {
        state: () => ({ term: { epoch: 9, validUntil: 1 }, who: { type: "OK", coordinator: 2, epoch: 9 } }),
      },
      files: { bytesHeld: () => 1_234, held: () => [{}, {}] },
      processes: { mailboxes: () => ({ hosted: 2, total: 5, max: 4 }) },
    } as unknown as ObservedNode;
    m.observe(node);
    expect(reads).toBe(0);
    const text = await m.render();
    expect(reads).toBeGreaterThan(0);
    expect(text).toContain('dvsd_view_id{cluster="dvs",node="2"} 12');
    expect(text).toContain('dvsd_view_members{cluster="dvs",node="2"} 3');
    expect(text).toContain('dvsd_node_incarnation{cluster="dvs",node="2"} 5');
    expect(text).toContain('dvsd_coordinator_epoch{cluster="dvs",node="2"} 9');
    expect(text).toContain('dvsd_coordinator{cluster="dvs",node="2"} 1');
    expect(text).toContain('dvsd_files_bytes{cluster="dvs",node="2"} 1234');
    expect(text).toContain('dvsd_processes_hosted{cluster="dvs",node="2"} 2');
    expect(text).toContain('dvsd_process_mailbox_messages{cluster="dvs",node="2"} 5');
    expect(text).toContain('dvsd_process_mailbox_max_messages{cluster="dvs",node="2"} 4');
  });

  it("keeps two nodes of one process apart, each on its own registry", async () => {
    const one = new PrometheusMetrics({ node: 1, cluster: "dvs" });
    const two = new PrometheusMetrics({ node: 2, cluster: "dvs" });
    one.viewChanged("JOIN");
    expect(await sample(one, "dvsd_view_changes_total")).toBe(1);
    expect(await sample(two, "dvsd_view_changes_total")).toBe(0);
  });

  it("adds the process's default metrics (event-loop lag, GC, memory) when asked", async () => {
    const m = new PrometheusMetrics({ node: 1, cluster: "dvs", processMetrics: true });
    const text = await m.render();
    expect(text).toContain("nodejs_eventloop_lag_seconds");
    expect(text).toContain("nodejs_gc_duration_seconds");
    expect(text).toContain("process_resident_memory_bytes");
    expect(text).toContain("# TYPE dvsd_requests_total counter");
  });

  it("the default measures nothing and costs nothing", () => {
    expect(() => noMetrics.requestAnswered("GETNODEINFO", 0, "public", 1)).not.toThrow();
  });
});

describe("the metrics endpoint", () => {
  const servers: MetricsServer[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.close();
  });

  it("serves the text format at /metrics and nothing elsewhere", async () => {
    const m = new PrometheusMetrics({ node: 3, cluster: "dvs" });
    m.viewChanged("MERGE");
    const server = await serveMetrics(m, "127.0.0.1", 0);
    servers.push(server);
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/metrics`);
    const res = await fetch(server.url);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/plain");
    expect(await res.text()).toContain('dvsd_view_changes_total{event="MERGE",cluster="dvs",node="3"} 1');
    expect((await fetch(`http://127.0.0.1:${server.port}/`)).status).toBe(404);
    expect((await fetch(server.url, { method: "POST" })).status).toBe(405);
  });

  it("refuses a port already in use with a MetricsListenError naming it", async () => {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve));
    const port = (holder.address() as { port: number }).port;
    try {
      const error = await serveMetrics(
        new PrometheusMetrics({ node: 1, cluster: "dvs" }),
        "127.0.0.1",
        port,
      ).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(MetricsListenError);
      expect(error).toMatchObject({ name: "MetricsListenError", code: "EADDRINUSE", port });
    } finally {
      holder.close();
    }
  });

  it("closes with a scraper's connection still open", async () => {
    const server = await serveMetrics(new PrometheusMetrics({ node: 1, cluster: "dvs" }), "127.0.0.1", 0);
    await (await fetch(server.url, { keepalive: true })).text();
    await server.close();
    await expect(fetch(server.url)).rejects.toThrow();
  });
});

describe("a simulated cluster's runtimes count into their metrics", () => {
  it("heartbeats, the view, requests, gathers, one coordinator's term and a commit", async () => {
    const metrics = new Map<number, PrometheusMetrics>();
    const cluster = new SimCluster({
      seed: 23,
      election: {},
      files: {},
      metrics: (id) => {
        const m = new PrometheusMetrics({ node: id, cluster: "dvs" });
        metrics.set(id, m);
        return m;
      },
    });
    const ids = [1, 2, 3];
    for (const id of ids) {
      const node = cluster.start(id);
      metrics.get(id)?.observe(node);
    }
    await cluster.advance(2_000);
    const client = cluster.client("tool");
    let init: Awaited<ReturnType<typeof client.request>> | undefined;
    void client.request("DVSINIT", { name: "metrics" }, { dst: ALL }).then((r) => {
      init = r;
    });
    await cluster.clock.runUntil(() => init !== undefined, 5_000);
    expect(init?.rcode).toBe(0);
    let rply: Awaited<ReturnType<typeof client.request>> | undefined;
    void client.request("GETNODEINFO", {}, { dst: 2 }).then((r) => {
      rply = r;
    });
    await cluster.clock.runUntil(() => rply !== undefined, 5_000);
    expect(rply?.rcode).toBe(0);
    let all: typeof rply;
    void client.request("GETDVSINFO", {}, { dst: ALL }).then((r) => {
      all = r;
    });
    await cluster.clock.runUntil(() => all !== undefined, 5_000);

    const files = new FileClient({
      transport: cluster.network.connect("files", { server: 0 }),
      subjects: subjects("dvs"),
      clock: cluster.network.hostClock("files"),
      newCommitId: () => "c-metrics-1",
    });
    let committed: { holders: readonly number[] } | undefined;
    void files.commit("notes/a.txt", bytesSource(new TextEncoder().encode("hello"))).then((c) => {
      committed = c;
    });
    await cluster.clock.runUntil(() => committed !== undefined, 30_000);
    await cluster.advance(100);

    const total = async (name: string, labels: Labels = {}) => {
      let sum = 0;
      for (const m of metrics.values()) sum += await sample(m, name, labels);
      return sum;
    };
    for (const id of ids) {
      const m = metrics.get(id) as PrometheusMetrics;
      expect(
        await sample(m, "dvsd_membership_messages_total", { kind: "heartbeat", direction: "sent" }),
      ).toBeGreaterThan(5);
      expect(
        await sample(m, "dvsd_membership_messages_total", { kind: "heartbeat", direction: "received" }),
      ).toBeGreaterThan(5);
      expect(await sample(m, "dvsd_view_members")).toBe(3);
      expect(await sample(m, "dvsd_view_changes_total")).toBeGreaterThan(0);
    }
    expect(
      await sample(metrics.get(2) as PrometheusMetrics, "dvsd_requests_total", {
        type: "GETNODEINFO",
        rcode: "OK",
        source: "public",
      }),
    ).toBe(1);
    // Two ALL requests, each gathered by one node from all three; each node served each from the multicast.
    expect(await total("dvsd_all_fanout_nodes_count")).toBe(2);
    expect(await total("dvsd_all_fanout_nodes_sum")).toBe(6);
    expect(await total("dvsd_requests_total", { type: "GETDVSINFO", source: "multicast" })).toBe(3);
    expect(await total("dvsd_all_stragglers_total")).toBe(0);
    // One coordinator, one term won, and every node knows its epoch.
    expect(await total("dvsd_coordinator")).toBe(1);
    expect(await total("dvsd_coordinator_terms_won_total")).toBe(1);
    const epochs = await Promise.all(
      ids.map((id) => sample(metrics.get(id) as PrometheusMetrics, "dvsd_coordinator_epoch")),
    );
    expect(new Set(epochs).size).toBe(1);
    expect(epochs[0]).toBeGreaterThan(0);
    // The commit: taken by the coordinator, placed by an active server that keeps one copy and
    // has the two other holders pull theirs (REPLICA).
    expect(committed?.holders).toHaveLength(3);
    expect(await total("dvsd_file_operations_total", { operation: "commit", outcome: "ok" })).toBe(1);
    expect(await total("dvsd_file_operations_total", { operation: "place", outcome: "ok" })).toBe(1);
    expect(await total("dvsd_file_operations_total", { operation: "replica", outcome: "ok" })).toBe(2);
    expect(await total("dvsd_files_replicas")).toBe(3);
    expect(await total("dvsd_files_bytes")).toBe(15);
  });
});
