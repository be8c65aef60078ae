import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createUser } from "@nats-io/nkeys";
import { describe, expect, it } from "vitest";
import { loadConfig, parseConfig } from "../../daemon/config.js";
import { ConfigError } from "../../daemon/errors.js";

const dir = mkdtempSync(join(tmpdir(), "dvs-config-"));
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

function issuesOf(fn: () => unknown): { path: string; message: string }[] {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return [...(error as ConfigError).issues];
  }
  throw new Error("expected a ConfigError");
}

describe("config", () => {
  it("fills every default from the node id alone", () => {
    const c = parseConfig({ node: 2 });
    expect(c.cluster).toBe("dvs");
    expect(c.nats.servers).toEqual(["nats://127.0.0.1:4222"]);
    expect(c.shutdown.graceMs).toBe(5_000);
    expect(c.log.level).toBe("info");
    expect(c.stateDir.endsWith(join("data", "node-2"))).toBe(true);
  });

  it("names the path of an unknown key", () => {
    const issues = issuesOf(() => parseConfig({ node: 1, nats: { servers: ["nats://x:1"], srevers: [] } }));
    expect(issues.map((i) => i.path)).toContain("nats");
    expect(issues.map((i) => i.message).join()).toMatch(/srevers/);
  });

  it("names the path of a bad value", () => {
    const issues = issuesOf(() => parseConfig({ node: 1, shutdown: { graceMs: -5 } }));
    expect(issues.map((i) => i.path)).toEqual(["shutdown.graceMs"]);
    expect(issuesOf(() => parseConfig({ node: "one" })).map((i) => i.path)).toEqual(["node"]);
    expect(issuesOf(() => parseConfig({})).map((i) => i.path)).toEqual(["node"]);
    expect(issuesOf(() => parseConfig({ node: 1, cluster: "a.b" })).map((i) => i.path)).toEqual(["cluster"]);
  });

  it("reads YAML and JSON files, and flags override the file", () => {
    const yaml = file(
      "a.yaml",
      "node: 4\ncluster: lab\nnats:\n  servers: [nats://10.0.0.1:4222]\nlog:\n  level: debug\n",
    );
    const fromYaml = loadConfig(yaml, { cluster: "prod", log: undefined });
    expect(fromYaml.node).toBe(4);
    expect(fromYaml.cluster).toBe("prod");
    expect(fromYaml.log.level).toBe("debug");
    const json = file("a.json", JSON.stringify({ node: 5, shutdown: { graceMs: 100 } }));
    expect(loadConfig(json, { node: 6 }).node).toBe(6);
    expect(loadConfig(json, {}).shutdown.graceMs).toBe(100);
  });

  it("reports an unreadable or malformed file as a ConfigError", () => {
    expect(() => loadConfig(join(dir, "missing.yaml"), {})).toThrow(ConfigError);
    expect(() => loadConfig(file("bad.json", "{ nope"), {})).toThrow(/not valid JSON/);
    expect(() => loadConfig(file("list.yaml", "- 1\n- 2\n"), {})).toThrow(/mapping/);
  });

  it("reads the NATS password from a file so secrets stay out of the config", () => {
    const secret = file("pass.txt", "s3cret\n");
    expect(parseConfig({ node: 1, nats: { user: "node-1", passFile: secret } }).nats.pass).toBe("s3cret");
  });

  it("checks at start-up that nats.nkeySeedFile holds an nkey user seed", () => {
    const seed = file("node.nk", `${new TextDecoder().decode(createUser().getSeed())}\n`);
    expect(parseConfig({ node: 1, nats: { nkeySeedFile: seed } }).nats.nkeySeedFile).toBe(seed);
    expect(() => parseConfig({ node: 1, nats: { nkeySeedFile: join(dir, "none.nk") } })).toThrow(
      /cannot read nats.nkeySeedFile/,
    );
    const notSeed = file("pub.nk", `${createUser().getPublicKey()}\n`);
    expect(() => parseConfig({ node: 1, nats: { nkeySeedFile: notSeed } })).toThrow(
      /does not hold an nkey user seed/,
    );
  });

  it("trusts no admin key by default, and takes nkey public user keys only", () => {
    expect(parseConfig({ node: 1 }).adminKeys).toEqual([]);
    const key = createUser().getPublicKey();
    expect(parseConfig({ node: 1, adminKeys: [key] }).adminKeys).toEqual([key]);
    // A seed, a key with a broken checksum and an account key are not admin keys.
    const seed = new TextDecoder().decode(createUser().getSeed());
    const broken = `${key.slice(0, -1)}${key.endsWith("A") ? "B" : "A"}`;
    const account = "AAB4ZGG7AUVNYCAASPAXZIDWNIPHRCLPMALYXBWZOEOVM4ZS3UAG3PN5";
    for (const bad of [seed, broken, account, "U123"]) {
      expect(issuesOf(() => parseConfig({ node: 1, adminKeys: [bad] })).map((i) => i.path)).toEqual([
        "adminKeys.0",
      ]);
    }
  });

  it("takes the admin keys from a flag (DVS_ADMIN_KEYS) over the file", () => {
    const [a, b] = [createUser().getPublicKey(), createUser().getPublicKey()];
    const yaml = file("keys.yaml", `node: 1\nadminKeys: [${a}]\n`);
    expect(loadConfig(yaml, {}).adminKeys).toEqual([a]);
    expect(loadConfig(yaml, { adminKeys: [b, a] }).adminKeys).toEqual([b, a]);
  });
});
