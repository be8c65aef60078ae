// `dvsd up` never runs an open cluster: it writes its own nats-server config
// with one fresh identity per node, uses a server already on its port only when
// that server has the cluster's accounts and JetStream, and calls a DVSINIT that
// not every node took an error.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterEach, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { DEV_USERS } from "../../client/credentials.js";
import { discoverNodes } from "../../client/discovery.js";
import { devServerConfig, renderNatsConfig } from "../../daemon/natsAccounts.js";
import { canConnect } from "../../daemon/natsServer.js";
import { freePort, requireBuild, type Spawned, spawnNode, upArgs } from "../support/cli.js";
import { natsConf } from "../support/natsServer.js";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A nats-server of our own on `port`, from `config` or with none at all (open: no users, no JetStream). */
async function foreignServer(port: number, config?: string): Promise<ChildProcess> {
  const store = tempDir("dvs-foreign-");
  const args = ["-a", "127.0.0.1", "-p", String(port), ...(config ? ["-c", config, "-sd", store] : [])];
  const child = spawn("nats-server", args, { stdio: "ignore" });
  cleanups.push(() => {
    child.kill("SIGKILL");
  });
  const deadline = Date.now() + 10_000;
  while (!(await canConnect(port))) {
    if (Date.now() > deadline || child.exitCode !== null)
      throw new Error(`nats-server ${args.join(" ")} did not start`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return child;
}

/** `dvsd up` on `port`; stopped (SIGINT, then SIGKILL) after the test. */
function up(port: number, data: string, extra: readonly string[] = []): Spawned {
  requireBuild();
  const p = spawnNode(upArgs(2, port, data, extra));
  cleanups.push(async () => {
    if (p.child.exitCode !== null || p.child.signalCode !== null) return;
    p.child.kill("SIGINT");
    await p.exited(20_000).catch(() => p.child.kill("SIGKILL"));
  });
  return p;
}

async function admin(url: string): Promise<NatsConnection> {
  const nc = await connect({ servers: url, ...DEV_USERS.admin });
  cleanups.push(() => nc.close());
  return nc;
}

describe("dvsd up and the nats-server on its port", () => {
  it("does not use an open nats-server (no users, no JetStream): it starts its own on a free port and says so", async () => {
    const port = await freePort();
    await foreignServer(port);
    const data = tempDir("dvs-up-open-");
    const p = up(port, data, ["--no-init"]);
    const line = await p.waitFor(/is up at nats:\/\/127\.0\.0\.1:(\d+)/, 40_000);
    expect(p.output()).toMatch(
      new RegExp(`not using what listens on port ${port}: it accepts connections without credentials`),
    );
    const ownUrl = /nats:\/\/127\.0\.0\.1:\d+/.exec(line)?.[0] as string;
    expect(ownUrl).not.toBe(`nats://127.0.0.1:${port}`);
    // The hint names the server dvsctl must use.
    expect(p.output()).toContain(`DVS_NATS=${ownUrl}`);
    const nodes = await discoverNodes(await admin(ownUrl), "dvs", 500);
    expect(nodes.map((n) => n.node)).toEqual([1, 2]);

    // Nothing of the cluster reaches the open server: no heartbeats there.
    const open = await connect({ servers: `nats://127.0.0.1:${port}` });
    cleanups.push(() => open.close());
    const sub = open.subscribe("dvs.>");
    await new Promise((r) => setTimeout(r, 1_000));
    expect(sub.getReceived()).toBe(0);

    // Its own config: one user per node with a fresh password, each in a file only its owner reads.
    const conf = readFileSync(join(data, "nats.conf"), "utf8");
    expect(statSync(join(data, "nats.conf")).mode & 0o077).toBe(0);
    expect(conf).toMatch(/user: "node-1"/);
    expect(conf).toMatch(/user: "node-2"/);
    expect(conf).not.toMatch(/user: "node"\s*$/m);
    expect(conf).not.toContain("dvs-node-1-dev");
    for (const id of [1, 2]) {
      const passFile = join(data, "secrets", `node-${id}.pass`);
      expect(statSync(passFile).mode & 0o077).toBe(0);
      const pass = readFileSync(passFile, "utf8").trim();
      expect(pass).toMatch(/^[0-9a-f]{48}$/);
      expect(conf).toContain(`password: "${pass}"`);
      const nodeConfig = parseYaml(readFileSync(join(data, "config", `node-${id}.yaml`), "utf8")) as {
        nats: Record<string, unknown>;
        adminKeys: string[];
      };
      expect(nodeConfig.nats).toMatchObject({ user: `node-${id}`, passFile });
      expect(nodeConfig.nats.pass).toBeUndefined();
      expect(nodeConfig.adminKeys).toHaveLength(1);
    }
    expect(statSync(join(data, "admin.nk")).mode & 0o077).toBe(0);
    // The nodes did all they do within their own permissions.
    expect(readFileSync(join(data, "logs", "nats-server.log"), "utf8")).not.toMatch(/Violation/);
  }, 60_000);

  it("does not use a server with the accounts but without JetStream", async () => {
    const port = await freePort();
    const dir = tempDir("dvs-nojs-");
    const config = join(dir, "nats.conf");
    // The development accounts, with JetStream taken out.
    writeFileSync(
      config,
      renderNatsConfig(devServerConfig())
        .replace(/^jetstream \{[\s\S]*?^\}\n/m, "")
        .replace(/^\s*jetstream: enabled\n/m, ""),
    );
    await foreignServer(port, config);
    const p = up(port, tempDir("dvs-up-nojs-"), ["--no-init"]);
    await p.waitFor(/is up at/, 40_000);
    expect(p.output()).toMatch(
      new RegExp(`not using what listens on port ${port}: JetStream is not available`),
    );
    expect(p.output()).toMatch(/started nats-server/);
  }, 60_000);

  it("uses a server started from the shipped nats.conf, its nodes logging in as node-1 and node-2", async () => {
    const port = await freePort();
    await foreignServer(port, natsConf);
    const p = up(port, tempDir("dvs-up-shipped-"), ["--no-init"]);
    await p.waitFor(/is up at/, 40_000);
    expect(p.output()).toMatch(
      new RegExp(`using the nats-server already listening at nats://127.0.0.1:${port}`),
    );
    expect(p.output()).not.toMatch(/started nats-server/);
    const nodes = await discoverNodes(await admin(`nats://127.0.0.1:${port}`), "dvs", 500);
    expect(nodes.map((n) => n.node)).toEqual([1, 2]);
  }, 60_000);
});

describe("DVSINIT from dvsd up", () => {
  it("answered by fewer nodes than started is an error: non-zero exit, naming the missing node", async () => {
    const data = tempDir("dvs-up-missing-");
    // Node 2 cannot start: its state directory is a file.
    writeFileSync(join(data, "node-2"), "not a directory\n");
    const p = up(await freePort(), data, ["--ready-timeout", "3000"]);
    const code = await p.exited(60_000);
    expect(code).not.toBe(0);
    expect(p.output()).toMatch(/error: DVSINIT reached [01] of the 2 nodes started; no answer from node 2/);
    expect(p.output()).not.toMatch(/initialised on/);
    expect(p.output()).not.toMatch(/is up at/);
    expect(existsSync(join(data, "nats.conf"))).toBe(true);
  }, 90_000);
});
