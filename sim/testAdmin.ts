// The admin signing key of the tests (public: never use it anywhere else). The
// simulated clusters trust it, `dvsd run` nodes started by the test harness
// list it in `adminKeys`, and clients and dvsctl sign mutating requests with it.
import { join } from "node:path";
import { ADMIN_KEY_FILE } from "../client/adminKey.js";
import { writeSecretFile } from "../daemon/credentials.js";
import { type AdminSigner, adminSignerFromSeed } from "../protocol/adminSignature.js";

/** The seed of the tests' admin key (an nkey user seed). */
export const TEST_ADMIN_SEED = "SUAF55NKXHBNPLZS37TR3EBR7ZJ25NUPBN24CXPWJNHBYST5RW7AQGRUS4";

export const TEST_ADMIN: AdminSigner = adminSignerFromSeed(TEST_ADMIN_SEED);

/** Writes the seed to `<dir>/admin.nk` (0600) and returns the environment that makes dvsctl sign with it. */
export function testAdminKeyEnv(dir: string): NodeJS.ProcessEnv {
  const file = join(dir, ADMIN_KEY_FILE);
  writeSecretFile(file, TEST_ADMIN_SEED);
  return { DVS_ADMIN_KEY_FILE: file };
}
