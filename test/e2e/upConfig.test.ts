// `dvsd up --config`: one node config for every node of a local cluster. With
// the shipped example (examples/up.yaml), COMMAND runs its allow-listed
// commands on every node; a config that names what `up` sets itself, or is
// invalid, stops `dvsd up` before anything starts.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import {
  freePort,
  requireBuild,
  type Spawned,
  spawnNode,
  startLocalCluster,
  upArgs,
} from "../support/cli.js";
import { adminKeyEnv, dvsctlRunner } from "../support/dvsctl.js";
import { repoRoot } from "../support/natsServer.js";

const example = join(repoRoot, "examples", "up.yaml");
const dir = mkdtempSync(join(tmpdir(), "dvs-up-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("dvsd up --config examples/up.yaml", () => {
  let up: Spawned;
  let data: string;
  let env: NodeJS.ProcessEnv;
  const { dvsctl } = dvsctlRunner(() => env);

  beforeAll(async () => {
    const cluster = await startLocalCluster(3, ["--config", example]);
    up = cluster.up;
    data = cluster.data;
    env = { DVS_NATS: cluster.url, ...adminKeyEnv(cluster.data) };
  }, 40_000);

  afterAll(async () => {
    if (up && up.child.exitCode === null) {
      up.child.kill("SIGINT");
      await up.exited(20_000).catch(() => up.child.kill("SIGKILL"));
    }
    if (data) rmSync(data, { recursive: true, force: true });
  });

  it("says so, and writes it under each node's own settings", () => {
    expect(up.output()).toContain(`node config ${example} applied to every node`);
    const node2 = parseYaml(readFileSync(join(data, "config", "node-2.yaml"), "utf8")) as Record<
      string,
      unknown
    >;
    expect(node2).toMatchObject({
      commands: { allowed: { echo: { argv: ["/bin/echo"], allowArgs: true } } },
      membership: { downAfterMs: 3000 },
      nats: { user: "node-2" },
    });
  });

  it("runs an allow-listed command on every node through COMMAND", async () => {
    const run = await dvsctl("command", "echo", "--", "hello");
    expect(run.code, run.output).toBe(0);
    for (const node of [1, 2, 3])
      expect(run.output).toMatch(new RegExp(`--- node ${node}: exit 0 in \\d+ ms\\nhello\\n`));
  });

  it("still refuses a command the config does not allow", async () => {
    const run = await dvsctl("command", "ls", "--node", "1");
    expect(run.code).toBe(1);
    expect(run.output).toMatch(/--- node 1: EPERM \(-1\): command "ls" is not in this node's allow-list/);
  });
});

describe("dvsd up --config with a bad file", () => {
  beforeAll(() => requireBuild());

  let files = 0;
  async function upWith(text: string): Promise<{ code: number | null; output: string }> {
    const file = join(dir, `bad-${++files}.yaml`);
    writeFileSync(file, text);
    const p = spawnNode(upArgs(3, await freePort(), join(dir, "data"), ["--config", file]));
    const code = await p.exited();
    return { code, output: p.output() };
  }

  it("refuses the keys up sets for each node, naming each, before starting anything", async () => {
    const run = await upWith("node: 4\nnats: { user: admin }\nmetrics: { port: 9000 }\n");
    expect(run.code).toBe(2);
    expect(run.output).toMatch(/dvsd: invalid dvsd up --config .*\n {2}- node: set by dvsd up/);
    expect(run.output).toMatch(/- nats: set by dvsd up/);
    expect(run.output).toMatch(/- metrics\.port: set by dvsd up .*--metrics-port/);
    expect(run.output).not.toMatch(/started nats-server/);
  });

  it("refuses an invalid value with its path, and no stack trace", async () => {
    const run = await upWith("commands:\n  allowed:\n    up: { argv: [uptime] }\n");
    expect(run.code).toBe(2);
    expect(run.output).toMatch(/- commands\.allowed\.up\.argv\.0: the program must be an absolute path/);
    expect(run.output).not.toMatch(/\n\s+at /);
  });
});
