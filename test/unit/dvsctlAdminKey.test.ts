// dvsctl and the admin key (bin/dvsctl/session.ts): which key signs, when a
// key file is bad usage, and the hint printed when a node refuses an unsigned
// or badly signed request.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { CommandError } from "../../bin/dvsctl/errors.js";
import {
  adminSignerOf,
  EXIT,
  type GlobalOptions,
  isMutating,
  signatureHint,
} from "../../bin/dvsctl/session.js";
import { generateAdminKey } from "../../daemon/adminKey.js";
import { errorRply, makeRply } from "../../protocol/codec.js";
import { ALL } from "../../protocol/messages.js";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function keyDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "dvsctl-key-"));
  dirs.push(dir);
  return dir;
}

const globals = (over: Partial<GlobalOptions>): GlobalOptions => ({
  nats: "nats://127.0.0.1:4222",
  cluster: "dvs",
  user: "admin",
  json: false,
  timeout: 5_000,
  ...over,
});

const to = { type: "DVSINIT", src: "dvsctl.1", seq: 1 };

describe("dvsctl's admin key", () => {
  it("signs with the key file named by --admin-key, for an admin only", () => {
    const { seedFile, publicKey } = generateAdminKey(keyDir());
    expect(adminSignerOf(globals({ adminKey: seedFile }))?.key).toBe(publicKey);
    expect(adminSignerOf(globals({ adminKey: seedFile, user: "viewer" }))).toBeUndefined();
    expect(adminSignerOf(globals({ adminKey: seedFile, role: "viewer" }))).toBeUndefined();
    expect(adminSignerOf(globals({ adminKey: "none" }))).toBeUndefined();
  });

  it("a named key file that is missing or not a seed is bad usage (exit 2)", () => {
    const dir = keyDir();
    writeFileSync(join(dir, "bad.nk"), "nope\n");
    for (const adminKey of [join(dir, "missing.nk"), join(dir, "bad.nk")]) {
      let thrown: unknown;
      try {
        adminSignerOf(globals({ adminKey }));
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(CommandError);
      expect((thrown as CommandError).exitCode).toBe(EXIT.usage);
      expect((thrown as CommandError).message).toContain(adminKey);
    }
  });

  it("knows which requests are signed: the mutating ones, with or without the RQST_ prefix", () => {
    expect(isMutating("DVSINIT")).toBe(true);
    expect(isMutating("RQST_KILL")).toBe(true);
    expect(isMutating("GETDVSINFO")).toBe(false);
    expect(isMutating("NOSUCH")).toBe(false);
  });
});

describe("the hint after an EPERM", () => {
  const refused = (node: number, message: string) => errorRply(to, node, "EPERM", message);

  it("tells an unsigned admin to pass --admin-key when a relayed mutating request was refused", () => {
    const entries = [
      makeRply(to, 1, 1),
      refused(2, "DVSINIT passed on by another node: carries no admin signature"),
    ];
    const hint = signatureHint("DVSINIT", ALL, undefined, entries);
    expect(hint).toContain("--admin-key");
    expect(hint).toContain("DVS_ADMIN_KEY_FILE");
  });

  it("says nothing for reads, successes, or an EPERM from the node the request was sent to", () => {
    expect(signatureHint("GETDVSINFO", ALL, undefined, [refused(2, "x")])).toBeUndefined();
    expect(signatureHint("DVSINIT", ALL, undefined, [makeRply(to, 1, 1)])).toBeUndefined();
    expect(
      signatureHint("KILL", 2, undefined, [refused(2, "KILL of pid 1 is not permitted")]),
    ).toBeUndefined();
  });

  it("points a signing admin at trust and clocks when the node refused the signature", () => {
    const { seedFile } = generateAdminKey(keyDir());
    const signer = adminSignerOf(globals({ adminKey: seedFile }));
    const entries = [refused(2, "DVSINIT passed on by another node: U… is not a trusted admin key")];
    const hint = signatureHint("DVSINIT", ALL, signer, entries);
    expect(hint).toContain(signer?.key);
    expect(hint).toMatch(/clock/);
    expect(signatureHint("DVSINIT", ALL, signer, [refused(2, "viewers may not send it")])).toBeUndefined();
  });
});
