// Host requests and access control end to end: real `dvsd run` nodes with a
// command allow-list, dvsctl as admin and as viewer, on a nats-server of this
// file's own started from the shipped nats.conf (SPEC 5 host group, 6.5).
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Rply, rcode } from "../../protocol/messages.js";
import { requireBuild } from "../support/cli.js";
import { dvsctlRunner } from "../support/dvsctl.js";
import { type DvsdNode, startDvsdNodes } from "../support/dvsdProcess.js";
import { startTestNatsServer, type TestNatsServer } from "../support/natsServer.js";

const NODES = [1, 2];
const dir = mkdtempSync(join(tmpdir(), "dvs-host-"));
const nodes: DvsdNode[] = [];
let server: TestNatsServer;

const { dvsctl, dvsctlJson } = dvsctlRunner(() => ({ DVS_NATS: server.url }));

function sleeper(): { child: ChildProcess; exited: Promise<NodeJS.Signals | null> } {
  const child = spawn("sleep", ["60"], { stdio: "ignore" });
  return { child, exited: new Promise((resolve) => child.once("exit", (_code, signal) => resolve(signal))) };
}

beforeAll(async () => {
  requireBuild();
  server = await startTestNatsServer();
  nodes.push(
    ...(await startDvsdNodes(NODES, {
      dir,
      natsUrl: server.url,
      config: {
        log: { level: "warn" },
        commands: { allowed: { echo: { argv: ["/bin/echo"], allowArgs: true, timeoutMs: 2_000 } } },
      },
    })),
  );
}, 40_000);

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.kill()));
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("host requests through dvsctl", () => {
  it("lists the processes of every node with ps --node all --json", async () => {
    const { code, rply } = await dvsctlJson("ps", "--node", "all", "--limit", "2000");
    expect(code).toBe(0);
    const entries = rply.data as Rply[];
    expect(entries.map((e) => e.src).sort()).toEqual(NODES);
    for (const entry of entries) {
      const pids = (entry.data as { pid: number }[]).map((p) => p.pid);
      // Each node lists itself among its host's processes.
      expect(pids).toContain(nodes[Number(entry.src) - 1]?.pid);
    }
  });

  it("runs an allow-listed command with shell metacharacters passed literally", async () => {
    const args = ["$(id)", "; rm -rf /tmp/nothing", "`uname`", "a|b", "*"];
    const { code, rply } = await dvsctlJson("command", "echo", "--node", "1", "--", ...args);
    expect(code).toBe(0);
    expect(rply.data).toMatchObject({ exitCode: 0, stdout: `${args.join(" ")}\n`, timedOut: false });
  });

  it("refuses a command that is not allow-listed with EPERM", async () => {
    const { code, rply } = await dvsctlJson("rqst", "COMMAND", "--node", "2", "--param", "command=uptime");
    expect(code).toBe(1);
    expect(rply.rcode).toBe(rcode("EPERM"));
  });
});

describe("access control through dvsctl", () => {
  it("refuses KILL from a viewer with EPERM and the process lives; an admin's KILL works", async () => {
    const target = sleeper();
    try {
      const pid = String(target.child.pid);
      const viewer = await dvsctl("--user", "viewer", "rqst", "KILL", "--node", "1", "--param", `pid=${pid}`);
      expect(viewer.code).toBe(1);
      expect(viewer.output).toContain("EPERM");
      // The full request subjects are not even open to the viewer.
      const direct = await dvsctl(
        "--user",
        "viewer",
        "--role",
        "admin",
        "rqst",
        "KILL",
        "--node",
        "1",
        "--param",
        `pid=${pid}`,
      );
      expect(direct.code).toBe(4);
      expect(direct.output).toContain("EPERM");
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(target.child.exitCode === null && target.child.signalCode === null).toBe(true);

      const admin = await dvsctl("rqst", "KILL", "--node", "1", "--param", `pid=${pid}`);
      expect(admin.code, admin.output).toBe(0);
      expect(await target.exited).toBe("SIGTERM");
    } finally {
      target.child.kill("SIGKILL");
    }
  });

  it("lets a viewer read", async () => {
    const { code, rply } = await dvsctlJson("--user", "viewer", "vmstat", "--node", "all");
    expect(code).toBe(0);
    expect((rply.data as Rply[]).map((e) => e.rcode)).toEqual([0, 0]);
  });

  it("refuses a connection with bad credentials (exit 4)", async () => {
    const { code, output } = await dvsctl("--user", "admin", "--pass", "guess", "members");
    expect(code).toBe(4);
    expect(output).toContain("refused");
  });
});
