// The admin's signing key on disk: `dvsd up` makes one (`<data>/admin.nk`, an
// nkey user seed readable by its owner only) and hands its public key to the
// nodes; dvsctl loads it (client/adminKey.ts) to sign mutating requests.
import { chmodSync, closeSync, fsyncSync, mkdirSync, openSync, statSync, writeSync } from "node:fs";
import { join } from "node:path";
import { createUser } from "@nats-io/nkeys";
import { ADMIN_KEY_FILE, AdminKeyUnreadableError, loadAdminSigner } from "../client/adminKey.js";

/**
 * The admin key of a data directory: `<dir>/admin.nk`, made (mode 0600, fsynced)
 * when missing and reused when present, so a restarted cluster keeps trusting
 * the key its operators already have.
 */
export function generateAdminKey(dir: string): { seedFile: string; publicKey: string } {
  mkdirSync(dir, { recursive: true });
  const seedFile = join(dir, ADMIN_KEY_FILE);
  if (!exists(seedFile)) {
    const pair = createUser();
    const seed = new TextDecoder().decode(pair.getSeed());
    pair.clear();
    try {
      writeNew(seedFile, `${seed}\n`);
    } catch (error) {
      // Another process made it first: use theirs.
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
  }
  const signer = loadAdminSigner(seedFile);
  // Only its owner may sign as the admin.
  if ((statSync(seedFile).mode & 0o077) !== 0) chmodSync(seedFile, 0o600);
  return { seedFile, publicKey: signer.key };
}

function exists(file: string): boolean {
  try {
    statSync(file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw new AdminKeyUnreadableError(file, { cause: error });
  }
}

/** Creates `file` (failing if it exists) readable by its owner only, and fsyncs it. */
function writeNew(file: string, text: string): void {
  const fd = openSync(file, "wx", 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
