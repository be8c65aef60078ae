// The admin's signing key on disk: `dvsd up` makes one (`<data>/admin.nk`, an
// nkey user seed readable by its owner only) and hands its public key to the
// nodes; dvsctl loads it to sign mutating requests (protocol/adminSignature.ts).
import {
  chmodSync,
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  statSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { createUser } from "@nats-io/nkeys";
import { type AdminSigner, adminSignerFromSeed } from "../protocol/adminSignature.js";

/** The seed file's name in a data directory. */
export const ADMIN_KEY_FILE = "admin.nk";

/** The admin key file could not be used; `file` names it. */
export class AdminKeyError extends Error {
  override name = "AdminKeyError";
  constructor(
    readonly file: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** There is no file at that path. */
export class AdminKeyMissingError extends AdminKeyError {
  override name = "AdminKeyMissingError";
  constructor(file: string, options?: ErrorOptions) {
    super(file, `no admin key at ${file} (\`dvsd up\` writes one to <data>/${ADMIN_KEY_FILE})`, options);
  }
}

/** The file exists but cannot be read (permissions, a directory). */
export class AdminKeyUnreadableError extends AdminKeyError {
  override name = "AdminKeyUnreadableError";
  constructor(file: string, options?: ErrorOptions) {
    const reason = options?.cause instanceof Error ? `: ${options.cause.message}` : "";
    super(file, `cannot read the admin key ${file}${reason}`, options);
  }
}

/** The file does not hold an nkey user seed (`SU…`). */
export class AdminKeyInvalidError extends AdminKeyError {
  override name = "AdminKeyInvalidError";
  constructor(file: string, options?: ErrorOptions) {
    super(file, `${file} does not hold an nkey user seed (SU…)`, options);
  }
}

/** Reads an admin seed file and returns its signer; throws one of the AdminKeyError classes. */
export function loadAdminSigner(seedFile: string): AdminSigner {
  let text: string;
  try {
    text = readFileSync(seedFile, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") throw new AdminKeyMissingError(seedFile);
    throw new AdminKeyUnreadableError(seedFile, { cause: error });
  }
  try {
    return adminSignerFromSeed(text.trim());
  } catch (error) {
    throw new AdminKeyInvalidError(seedFile, { cause: error });
  }
}

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
