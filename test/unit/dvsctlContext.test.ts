// dvsctl's context file: checked by one schema, relative paths taken from the
// file's directory, every bad key named in a ContextError.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ContextError, loadContext } from "../../client/context.js";

const dir = mkdtempSync(join(tmpdir(), "dvs-context-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

function failure(path: string): ContextError {
  try {
    loadContext(path);
  } catch (error) {
    if (error instanceof ContextError) return error;
    throw error;
  }
  throw new Error(`${path} was accepted`);
}

describe("loadContext", () => {
  it("reads a YAML context, resolving relative paths against its directory and ~ against the home directory", () => {
    const path = file(
      "prod.yaml",
      [
        "servers: [tls://dvs1.example.net:4222, tls://dvs2.example.net:4222]",
        "cluster: dvs",
        "user: admin",
        "passFile: secrets/admin.pass",
        "tls: { caFile: /etc/dvsd/tls/ca.pem, certFile: client.pem, keyFile: client-key.pem }",
        "adminKey: ~/.config/dvs/admin.nk",
        "role: admin",
      ].join("\n"),
    );
    expect(loadContext(path)).toEqual({
      servers: ["tls://dvs1.example.net:4222", "tls://dvs2.example.net:4222"],
      cluster: "dvs",
      user: "admin",
      passFile: join(dir, "secrets/admin.pass"),
      tls: {
        caFile: "/etc/dvsd/tls/ca.pem",
        certFile: join(dir, "client.pem"),
        keyFile: join(dir, "client-key.pem"),
      },
      adminKey: join(homedir(), ".config/dvs/admin.nk"),
      role: "admin",
    });
  });

  it("reads JSON by its extension, a comma-separated server string included, and keeps adminKey none", () => {
    const path = file(
      "ctx.json",
      JSON.stringify({ servers: "nats://a:4222, nats://b:4222", adminKey: "none" }),
    );
    expect(loadContext(path)).toEqual({ servers: ["nats://a:4222", "nats://b:4222"], adminKey: "none" });
  });

  it("takes an empty file as an empty context", () => {
    expect(loadContext(file("empty.yaml", ""))).toEqual({});
  });

  it("names every bad key with its path", () => {
    const error = failure(
      file(
        "bad.yaml",
        "servers: [nats://ok:4222, 'not a url']\nrole: root\ntls: { caFile: '', pem: x }\nnkeyFile: k\n",
      ),
    );
    expect(error.name).toBe("ContextError");
    expect(error.file).toBe(join(dir, "bad.yaml"));
    const paths = error.issues.map((i) => i.path);
    expect(paths).toEqual(expect.arrayContaining(["servers.1", "role", "tls.caFile", "tls", "(root)"]));
    expect(error.message).toMatch(/Unrecognized key: "nkeyFile"/);
    expect(error.message).toMatch(/Unrecognized key: "pem"/);
  });

  it("refuses a password with an nkey, a certificate without its key, and a password in the file", () => {
    expect(failure(file("both.yaml", "passFile: p\nnkeySeedFile: k\n")).message).toMatch(
      /exclude each other/,
    );
    expect(failure(file("cert.yaml", "tls: { keyFile: k.pem }\n")).message).toMatch(/go together/);
    expect(failure(file("pass.yaml", "pass: hunter2\n")).message).toMatch(/Unrecognized key: "pass"/);
  });

  it("says when the file is missing, not YAML or JSON, or not a mapping", () => {
    expect(failure(join(dir, "nope.yaml")).message).toMatch(
      /cannot read context file .*nope\.yaml: no such file/,
    );
    expect(failure(file("broken.json", "{")).message).toMatch(/is not valid JSON/);
    expect(failure(file("broken.yaml", "a: [")).message).toMatch(/is not valid YAML/);
    expect(failure(file("list.yaml", "- a\n- b\n")).message).toMatch(/must hold a mapping/);
    expect(failure(file("scalar.yaml", "42\n")).message).toMatch(/must hold a mapping/);
  });
});
