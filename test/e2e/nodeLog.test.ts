// A node's log file (DvsdNode `logFile`, used by the chaos run): every
// incarnation's output is in the file as it is written, so a node that dies or
// a run that is killed leaves its log behind. Real `dvsd run` on a nats-server
// of this file's own.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { requireBuild } from "../support/cli.js";
import { DvsdNode } from "../support/dvsdProcess.js";
import { startTestNatsServer, type TestNatsServer } from "../support/natsServer.js";

const dir = mkdtempSync(join(tmpdir(), "dvs-nodelog-"));
let server: TestNatsServer;
let node: DvsdNode | undefined;

beforeAll(async () => {
  requireBuild();
  server = await startTestNatsServer();
}, 30_000);

afterAll(async () => {
  await node?.kill();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("a node's log file", () => {
  it("holds what each incarnation wrote while it runs and after a SIGKILL", async () => {
    const logFile = join(dir, "node-1.log");
    node = new DvsdNode({ node: 1, dir, natsUrl: server.url, config: {}, logFile });
    node.start();
    await node.process.waitFor(/node joined/, 20_000);
    // Written as it came, not at the end: the running node's lines are already there.
    expect(readFileSync(logFile, "utf8")).toContain('"msg":"node joined"');

    await node.kill();
    expect(readFileSync(logFile, "utf8")).toBe(node.output());
    node.start();
    await node.process.waitFor(/node joined/, 20_000);
    const log = readFileSync(logFile, "utf8");
    expect(log.match(/"msg":"node starting"/g)).toHaveLength(2);
    expect(log).toBe(node.output());
  }, 60_000);
});
