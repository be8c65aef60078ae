// A tool with nothing but JSON and nats.js (test/fixtures/jsonClient.mjs, a
// separate process that imports no CBOR library and nothing from this
// repository) against three real `dvsd run` nodes on a nats-server of this
// file's own: it sees the JSON events, commits a file by serving its bytes as
// base64, reads it back, commits it again, and finds every public subject in
// `$SRV.INFO` with STATS that grew.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireBuild, type Spawned, spawnNode } from "../support/cli.js";
import { DvsdNode } from "../support/dvsdProcess.js";
import { repoRoot, startTestNatsServer, type TestNatsServer } from "../support/natsServer.js";

const NODES = [1, 2, 3] as const;
const script = join(repoRoot, "test/fixtures/jsonClient.mjs");
const dir = mkdtempSync(join(tmpdir(), "dvs-json-client-"));
const nodes: DvsdNode[] = [];
let server: TestNatsServer;
let client: Spawned;

type Stats = Record<string, { requests: number; errors: number; processingNs: number }>;
interface Result {
  who: { type: string; coordinator: number };
  events: { subject: string; contentType: string | null; node: number; event: string }[];
  reads: { contentType: string | null; offset: number; length: number }[];
  committed1: { type: string; version?: number; holders?: number[]; error?: string; message?: string };
  updated1: { file: { type: string; version?: number }; sha256?: string; expected: string };
  committed2: { type: string; version?: number; error?: string; message?: string };
  updated2: { file: { type: string; version?: number }; sha256?: string; expected: string };
  requests: { good: number; bad: number; badError: string };
  info: { node: string; endpoints: { name: string; subject: string; queue_group: string }[] }[];
  statsBefore: Stats;
  statsAfter: Stats;
}
let result: Result;

beforeAll(async () => {
  requireBuild();
  server = await startTestNatsServer();
  // The tool first, so it hears the events of the nodes joining.
  client = spawnNode([script, server.url]);
  await client.waitFor(/"ready":true/, 10_000);
  for (const node of NODES) {
    const n = new DvsdNode({ node, dir, natsUrl: server.url, config: { log: { level: "warn" } } });
    nodes.push(n);
    n.start();
  }
  const code = await client.exited(90_000);
  const line = client
    .output()
    .split("\n")
    .find((l) => l.startsWith('{"result":'));
  if (code !== 0 || line === undefined)
    throw new Error(`the JSON client failed (${code}):\n${client.output()}`);
  result = (JSON.parse(line) as { result: Result }).result;
}, 120_000);

afterAll(async () => {
  if (client && client.child.exitCode === null) client.child.kill("SIGKILL");
  await Promise.all(nodes.map((n) => n.stop().catch(() => n.kill())));
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("a client with JSON alone", () => {
  it("is written without a CBOR library or anything of this repository", () => {
    const source = readFileSync(script, "utf8");
    const imports = [...source.matchAll(/^import .* from "([^"]+)";$/gm)].map((m) => m[1]);
    expect(imports.sort()).toEqual(["@nats-io/transport-node", "node:crypto"]);
  });

  it("receives the membership events as JSON on the events.json twin", () => {
    expect(result.events.length).toBeGreaterThan(0);
    for (const e of result.events) {
      expect(e.subject).toBe(`dvs.dvs.events.json.${e.node}`);
      expect(e.contentType).toBe("application/json");
    }
    expect(result.events.map((e) => e.event)).toContain("JOIN");
  });

  it("commits a file by serving its bytes as base64 to the holders' JSON READs", () => {
    expect(result.committed1).toMatchObject({ type: "SUCCESS", version: 1 });
    expect(result.committed1.holders).toHaveLength(3);
    // Every holder asked in JSON: three chunks each (two full ones and the rest).
    expect(result.reads.length).toBeGreaterThanOrEqual(3 * 3);
    for (const r of result.reads) expect(r.contentType).toBe("application/json");
    expect(new Set(result.reads.map((r) => r.offset))).toEqual(new Set([0, 196_608, 393_216]));
  });

  it("reads back what it committed, and a second version after it", () => {
    expect(result.updated1.file).toMatchObject({ type: "FILE", version: 1 });
    expect(result.updated1.sha256).toBe(result.updated1.expected);
    expect(result.committed2).toMatchObject({ type: "SUCCESS", version: 2 });
    expect(result.updated2.file).toMatchObject({ type: "FILE", version: 2 });
    expect(result.updated2.sha256).toBe(result.updated2.expected);
    expect(result.requests).toEqual({ good: 0, bad: -74, badError: "EBADMSG" });
  });

  it("finds every public subject each node serves in $SRV.INFO, with its queue group", () => {
    expect(result.info.map((i) => i.node).sort()).toEqual(["1", "2", "3"]);
    for (const { node, endpoints } of result.info) {
      const byName = new Map(endpoints.map((e) => [e.name, e]));
      expect(byName.get("node-rqst")).toEqual({
        name: "node-rqst",
        subject: `dvs.dvs.node.${node}.rqst`,
        queue_group: "",
      });
      expect(byName.get("rqst")).toEqual({ name: "rqst", subject: "dvs.dvs.rqst", queue_group: "dvsd" });
      expect(byName.get("ro-rqst")?.queue_group).toBe("dvsd");
      expect(byName.get("dns-who")).toEqual({
        name: "dns-who",
        subject: "dvs.dvs.dns.who",
        queue_group: "dvsd",
      });
      expect(byName.get("file-read")?.subject).toBe(`dvs.dvs.file.read.${node}`);
      // Only the coordinator serves COMMIT, UPDATE and LS.
      const coordinates = Number(node) === result.who.coordinator;
      expect(byName.get("file-commit")?.queue_group).toBe(coordinates ? "dvsd" : undefined);
    }
  });

  it("sees the STATS of the endpoints it used grow, errors included", () => {
    const c = result.who.coordinator;
    const grew = (key: string) =>
      (result.statsAfter[key]?.requests ?? 0) - (result.statsBefore[key]?.requests ?? 0);
    expect(grew(`${c}/file-commit`)).toBeGreaterThanOrEqual(2);
    expect(grew(`${c}/file-update`)).toBeGreaterThanOrEqual(2);
    expect(NODES.reduce((sum, n) => sum + grew(`${n}/file-read`), 0)).toBeGreaterThanOrEqual(4);
    expect(grew("1/node-rqst")).toBe(2);
    const node1 = result.statsAfter["1/node-rqst"];
    expect(node1?.errors).toBe((result.statsBefore["1/node-rqst"]?.errors ?? 0) + 1);
    // Processing time runs until the answer is sent: a commit takes its holders' READs.
    expect(result.statsAfter[`${c}/file-commit`]?.processingNs).toBeGreaterThan(1_000_000);
  });
});
