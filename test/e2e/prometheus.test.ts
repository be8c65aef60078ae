// Debian's `prometheus` scrapes three real `dvsd run` nodes with the scrape
// configuration of docs/deploy.md (its targets pointed at the nodes' loopback
// metrics ports, a 1 s interval), and the test reads back through Prometheus's
// own HTTP API that every node is up and that the request counter grew with
// the requests it sent, and that a node stopped gracefully goes down with its
// endpoint. Without the binary the test is skipped with the
// install command, except on CI (CI=true), where it fails. A node whose
// metrics port is taken says so in its log and runs on without metrics.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml, stringify as toYaml } from "yaml";
import { DEV_USERS } from "../../client/credentials.js";
import { DvsClient } from "../../client/dvsClient.js";
import { freePort } from "../../daemon/natsServer.js";
import { ALL } from "../../protocol/messages.js";
import { TEST_ADMIN } from "../../sim/testAdmin.js";
import { NatsTransport } from "../../transport/nats.js";
import { requireBuild } from "../support/cli.js";
import { DvsdNode } from "../support/dvsdProcess.js";
import { EventWatch } from "../support/eventWatch.js";
import { repoRoot, startTestNatsServer, type TestNatsServer } from "../support/natsServer.js";

const NODES = [1, 2, 3] as const;
const SCRAPE_CONFIG = "# /etc/prometheus/prometheus.yml";
const INSTALL = "apt-get update && apt-get install -y prometheus";

/** Debian's prometheus on PATH, or undefined. */
function findPrometheus(): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    const bin = join(dir, "prometheus");
    if (dir !== "" && existsSync(bin)) return bin;
  }
  return undefined;
}

/** The documented scrape configuration: the yaml block of docs/deploy.md that starts with SCRAPE_CONFIG. */
function documentedScrapeConfig(): Record<string, unknown> {
  const doc = readFileSync(join(repoRoot, "docs", "deploy.md"), "utf8");
  const blocks = [...doc.matchAll(/^```yaml\n([\s\S]*?)^```$/gm)].map((m) => m[1] ?? "");
  const found = blocks.filter((b) => b.startsWith(SCRAPE_CONFIG));
  if (found.length !== 1)
    throw new Error(`docs/deploy.md must have one yaml block starting "${SCRAPE_CONFIG}"`);
  return parseYaml(found[0] as string) as Record<string, unknown>;
}

interface ScrapeConfig {
  job_name: string;
  static_configs: { targets: string[] }[];
}

/** The same configuration with the targets moved to this host's ports and a 1 s interval. */
function localScrapeConfig(ports: readonly number[]): { text: string; job: string } {
  const config = documentedScrapeConfig();
  const global = config.global as Record<string, unknown>;
  global.scrape_interval = "1s";
  global.scrape_timeout = "1s";
  const jobs = config.scrape_configs as ScrapeConfig[];
  expect(jobs).toHaveLength(1);
  const job = jobs[0] as ScrapeConfig;
  // The documented shape: one static list of the three nodes' host:port.
  expect(job.static_configs).toHaveLength(1);
  expect(job.static_configs[0]?.targets).toHaveLength(NODES.length);
  job.static_configs[0] = { ...job.static_configs[0], targets: ports.map((p) => `127.0.0.1:${p}`) };
  return { text: toYaml(config), job: job.job_name };
}

/** One Prometheus server the test owns: its config, its TSDB in a temp dir, a free web port. */
class TestPrometheus {
  readonly #child: ChildProcess;
  #output = "";

  constructor(
    bin: string,
    dir: string,
    configText: string,
    readonly port: number,
  ) {
    const config = join(dir, "prometheus.yml");
    writeFileSync(config, configText);
    mkdirSync(join(dir, "tsdb"));
    this.#child = spawn(
      bin,
      [
        `--config.file=${config}`,
        `--storage.tsdb.path=${join(dir, "tsdb")}`,
        `--web.listen-address=127.0.0.1:${port}`,
        "--log.level=warn",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    const keep = (chunk: Buffer) => {
      this.#output = `${this.#output}${chunk.toString()}`.slice(-20_000);
    };
    this.#child.stdout?.on("data", keep);
    this.#child.stderr?.on("data", keep);
  }

  get output(): string {
    return this.#output;
  }

  /** Resolves once `/-/ready` answers 200; throws with its output when it exits or the time runs out. */
  async ready(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.#child.exitCode !== null)
        throw new Error(`prometheus exited (${this.#child.exitCode}):\n${this.#output}`);
      const ok = await fetch(`http://127.0.0.1:${this.port}/-/ready`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) return;
      await sleep(200);
    }
    throw new Error(`prometheus was not ready within ${timeoutMs} ms:\n${this.#output}`);
  }

  /** An instant query through the HTTP API: each series' labels and value. */
  async query(promql: string): Promise<{ metric: Record<string, string>; value: number }[]> {
    const url = `http://127.0.0.1:${this.port}/api/v1/query?query=${encodeURIComponent(promql)}`;
    const body = (await (await fetch(url)).json()) as {
      status: string;
      error?: string;
      data?: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
    };
    if (body.status !== "success" || body.data?.resultType !== "vector")
      throw new Error(`query ${promql} failed: ${body.error ?? JSON.stringify(body)}`);
    return body.data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
  }

  /** Polls `promql` until `done` holds for its result; throws with the last result after `timeoutMs`. */
  async until(
    promql: string,
    done: (result: { metric: Record<string, string>; value: number }[]) => boolean,
    timeoutMs: number,
  ): Promise<{ metric: Record<string, string>; value: number }[]> {
    const deadline = Date.now() + timeoutMs;
    let last: { metric: Record<string, string>; value: number }[] = [];
    while (Date.now() < deadline) {
      last = await this.query(promql);
      if (done(last)) return last;
      await sleep(250);
    }
    throw new Error(
      `${promql} did not reach the expected result in ${timeoutMs} ms; last: ${JSON.stringify(last)}`,
    );
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.#child.once("exit", () => resolve()));
    this.#child.kill("SIGTERM");
    const killer = setTimeout(() => this.#child.kill("SIGKILL"), 5_000);
    await exited;
    clearTimeout(killer);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const prometheusBin = findPrometheus();

describe("Prometheus scrapes a local cluster with the documented configuration", () => {
  if (prometheusBin === undefined) {
    it("needs Debian's prometheus", (ctx) => {
      const reason = `prometheus is not installed: ${INSTALL}`;
      if (process.env.CI === "true") throw new Error(`${reason} (required on CI)`);
      ctx.skip(reason);
    });
    return;
  }
  const bin = prometheusBin;
  const dir = mkdtempSync(join(tmpdir(), "dvs-prometheus-"));
  const nodes: DvsdNode[] = [];
  let server: TestNatsServer;
  let prometheus: TestPrometheus | undefined;
  let nc: NatsConnection | undefined;
  let client: DvsClient;
  let job: string;
  let targets: string[];

  beforeAll(async () => {
    requireBuild();
    server = await startTestNatsServer();
    const ports: number[] = [];
    for (const node of NODES) {
      const port = await freePort();
      ports.push(port);
      const n = new DvsdNode({
        node,
        dir,
        natsUrl: server.url,
        config: { metrics: { port }, log: { level: "warn" } },
      });
      nodes.push(n);
      n.start();
    }
    const watch = await EventWatch.start(server.url);
    try {
      await watch.converged(NODES, 20_000);
    } finally {
      await watch.close();
    }
    targets = ports.map((p) => `127.0.0.1:${p}`);
    const local = localScrapeConfig(ports);
    job = local.job;
    const promDir = join(dir, "prometheus");
    mkdirSync(promDir);
    prometheus = new TestPrometheus(bin, promDir, local.text, await freePort());
    await prometheus.ready(30_000);
    nc = await connect({ servers: server.url, name: "e2e-prometheus", ...DEV_USERS.admin });
    client = new DvsClient(new NatsTransport(nc, { name: "e2e-prometheus" }), {
      cluster: "dvs",
      clientId: "e2e-prometheus",
      timeoutMs: 10_000,
      signer: TEST_ADMIN,
    });
    const init = await client.request("DVSINIT", { name: "e2e" }, { dst: ALL, gatherTimeoutMs: 5_000 });
    expect(init.rcode).toBe(0);
  }, 60_000);

  afterAll(async () => {
    await prometheus?.stop();
    await nc?.close();
    await Promise.all(nodes.map((n) => n.stop().catch(() => n.kill())));
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  it("sees every node up", async () => {
    const up = await prometheus!.until(`up{job="${job}"} == 1`, (r) => r.length === NODES.length, 20_000);
    expect(up.map((s) => s.metric.instance).sort()).toEqual([...targets].sort());
    // The node's own labels come through with its samples, and every node sees all three members.
    const members = await prometheus!.until(
      "dvsd_view_members",
      (r) => r.length === NODES.length && r.every((s) => s.value === NODES.length),
      10_000,
    );
    expect(members.every((s) => s.metric.cluster === "dvs")).toBe(true);
  });

  it("sees the request counter grow with the requests sent", async () => {
    const query = 'sum by (node) (dvsd_requests_total{type="GETNODEINFO",rcode="OK",source="public"})';
    const ask = async (times: number) => {
      for (const node of NODES) {
        for (let i = 0; i < times; i++) {
          const rply = await client.request("GETNODEINFO", {}, { dst: node });
          expect(rply.rcode).toBe(0);
        }
      }
    };
    // One request to each node, until Prometheus has scraped it: the counters' starting point.
    await ask(1);
    const first = await prometheus!.until(query, (r) => r.length === NODES.length, 20_000);
    const before = new Map(first.map((s) => [s.metric.node, s.value]));
    await ask(2);
    const after = await prometheus!.until(
      query,
      (r) => r.length === NODES.length && r.every((s) => s.value >= (before.get(s.metric.node) ?? 0) + 2),
      20_000,
    );
    expect(after.map((s) => s.metric.node).sort()).toEqual(NODES.map(String));
    // The latency histogram and the ALL gather of DVSINIT came along.
    const latency = await prometheus!.query('sum(dvsd_request_duration_seconds_count{type="GETNODEINFO"})');
    expect(latency[0]?.value).toBeGreaterThanOrEqual(NODES.length * 3);
    const fanout = await prometheus!.query("sum(dvsd_all_fanout_nodes_count)");
    expect(fanout[0]?.value).toBeGreaterThanOrEqual(1);
  });

  it("sees a node that stopped gracefully down, its endpoint closed with it", async () => {
    const last = nodes.at(-1) as DvsdNode;
    const target = targets.at(-1) as string;
    expect(await last.stop()).toBe(0);
    await expect(fetch(`http://${target}/metrics`)).rejects.toThrow();
    await prometheus!.until(`up{job="${job}",instance="${target}"} == 0`, (r) => r.length === 1, 20_000);
  });
});

describe("a node whose metrics port is taken", () => {
  const dir = mkdtempSync(join(tmpdir(), "dvs-metrics-port-"));
  let server: TestNatsServer;
  let holder: Server;
  let node: DvsdNode;

  beforeAll(async () => {
    requireBuild();
    server = await startTestNatsServer();
    holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve));
  }, 30_000);

  afterAll(async () => {
    await node?.stop().catch(() => node.kill());
    holder?.close();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  it("logs an error naming the port and runs on without metrics", async () => {
    const port = (holder.address() as { port: number }).port;
    node = new DvsdNode({ node: 1, dir, natsUrl: server.url, config: { metrics: { port } } });
    node.start();
    await node.process.waitFor(
      new RegExp(`cannot serve metrics on 127\\.0\\.0\\.1:${port}: the port is already in use`),
      20_000,
    );
    await node.process.waitFor(/node joined/, 20_000);
    expect(node.running).toBe(true);
    // A graceful stop still ends it with status 0.
    expect(await node.stop()).toBe(0);
  });
});
