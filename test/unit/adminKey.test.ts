// The admin key on disk (daemon/adminKey.ts): made once per data directory,
// readable by its owner only, reused, and refused with a named error when unusable.
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  AdminKeyInvalidError,
  AdminKeyMissingError,
  AdminKeyUnreadableError,
  loadAdminSigner,
} from "../../client/adminKey.js";
import { generateAdminKey } from "../../daemon/adminKey.js";
import { ReplayGuard, signRqst, TrustedAdminKeys, verifyRqstAuth } from "../../protocol/adminSignature.js";

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "dvs-admin-key-"));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe("the admin key file", () => {
  it("is made as <dir>/admin.nk, mode 0600, holding a user seed whose key it returns", () => {
    const dir = join(tempDir(), "data");
    const { seedFile, publicKey } = generateAdminKey(dir);
    expect(seedFile).toBe(join(dir, "admin.nk"));
    expect(statSync(seedFile).mode & 0o777).toBe(0o600);
    expect(readFileSync(seedFile, "utf8")).toMatch(/^SU[A-Z2-7]{56}\n$/);
    expect(publicKey).toMatch(/^U[A-Z2-7]{55}$/);
    expect(loadAdminSigner(seedFile).key).toBe(publicKey);
  });

  it("is reused when present, and its permissions tightened", () => {
    const dir = tempDir();
    const first = generateAdminKey(dir);
    chmodSync(first.seedFile, 0o644);
    const again = generateAdminKey(dir);
    expect(again).toEqual(first);
    expect(statSync(first.seedFile).mode & 0o777).toBe(0o600);
  });

  it("signs requests that the nodes trusting its public key accept", () => {
    const { seedFile, publicKey } = generateAdminKey(tempDir());
    const signer = loadAdminSigner(seedFile);
    const rqst = signRqst(
      { type: "DVSINIT", dst: "ALL", params: {} },
      { cluster: "dvs", signer, now: 1_000, nonce: "abcdefghijklmnopqrstuv" },
    );
    const verdict = verifyRqstAuth(rqst, {
      cluster: "dvs",
      node: 1,
      trustedKeys: new TrustedAdminKeys([publicKey]),
      now: 1_000,
      replay: new ReplayGuard(),
    });
    expect(verdict).toEqual({ ok: true, key: publicKey });
  });

  it("missing, unreadable or not a seed: each is its own named error", () => {
    const dir = tempDir();
    expect(() => loadAdminSigner(join(dir, "none.nk"))).toThrow(AdminKeyMissingError);
    mkdirSync(join(dir, "a-directory"));
    expect(() => loadAdminSigner(join(dir, "a-directory"))).toThrow(AdminKeyUnreadableError);
    writeFileSync(join(dir, "garbage.nk"), "not a seed\n");
    expect(() => loadAdminSigner(join(dir, "garbage.nk"))).toThrow(AdminKeyInvalidError);
    const { publicKey } = generateAdminKey(dir);
    writeFileSync(join(dir, "public.nk"), `${publicKey}\n`);
    const error = (() => {
      try {
        loadAdminSigner(join(dir, "public.nk"));
      } catch (e) {
        return e as AdminKeyInvalidError;
      }
    })();
    expect(error?.name).toBe("AdminKeyInvalidError");
    expect(error?.file).toBe(join(dir, "public.nk"));
  });
});
