// The admin's signing key as a client loads it: an nkey user seed file
// (`dvsd up` writes `<data>/admin.nk`) from which dvsctl signs mutating
// requests (protocol/adminSignature.ts).
import { readFileSync } from "node:fs";
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
