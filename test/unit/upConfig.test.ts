// The node config `dvsd up --config` shares: checked like `dvsd run --config`,
// less the keys up sets per node, then merged under each node's own settings.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError } from "../../daemon/errors.js";
import { loadSharedNodeConfig, nodeConfigValues } from "../../daemon/upConfig.js";

const dir = mkdtempSync(join(tmpdir(), "dvs-up-config-unit-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const KEY_A = "UDY5IQ63ZTN62XA5MCYZ3SVKQVZULDUKIWZQQNOWKSPNNGILUZFSLAVF";

describe("loadSharedNodeConfig", () => {
  it("accepts the shipped example", () => {
    const shared = loadSharedNodeConfig(join(import.meta.dirname, "../../examples/up.yaml"));
    expect(Object.keys(shared.values).sort()).toEqual(["commands", "membership"]);
  });

  it("names every key up sets itself", () => {
    const path = file(
      "owned.yaml",
      "cluster: x\nstateDir: /tmp/s\nfiles: { dir: /tmp/f }\nelection: { replicas: 3 }\n",
    );
    let error: unknown;
    try {
      loadSharedNodeConfig(path);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues.map((i) => i.path)).toEqual([
      "cluster",
      "stateDir",
      "files.dir",
      "election.replicas",
    ]);
  });

  it("checks the rest with the node config schema", () => {
    expect(() => loadSharedNodeConfig(file("bad.yaml", "membership: { heartbeatMs: 1 }\nnope: 1\n"))).toThrow(
      /membership\.heartbeatMs[\s\S]*Unrecognized key: "nope"/,
    );
  });
});

describe("nodeConfigValues", () => {
  it("puts the node's settings over the shared ones, one section deep, and keeps both admin key lists", () => {
    const merged = nodeConfigValues(
      { election: { leaseMs: 800 }, adminKeys: [KEY_A], log: { level: "debug" } },
      { election: { replicas: 3 }, adminKeys: [KEY_A, "UB"], nats: { user: "node-1" } },
    );
    expect(merged).toEqual({
      election: { leaseMs: 800, replicas: 3 },
      adminKeys: [KEY_A, "UB"],
      log: { level: "debug" },
      nats: { user: "node-1" },
    });
  });
});
