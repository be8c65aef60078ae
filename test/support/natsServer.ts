// Each integration test owns its nats-server: started from nats.conf on a free
// port with a temporary store dir, removed again with `await using`. There is
// no skip: without the binary the test fails with the install command.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { devServerConfig, renderNatsConfig } from "../../daemon/natsAccounts.js";
import { startNatsServer } from "../../daemon/natsServer.js";

/** The checkout: found upward from here, so it is the same from test/ (vitest) and dist/test/ (the CLIs). */
export const repoRoot = ((): string => {
  let dir = import.meta.dirname;
  while (!existsSync(join(dir, "nats.conf")) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
})();
export const natsConf = join(repoRoot, "nats.conf");

export interface TestNatsServer extends AsyncDisposable {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  readonly dataDir: string;
  stop(): Promise<void>;
}

export interface TestNatsServerOptions {
  /** A config file to use as it is (default: the shipped nats.conf). */
  readonly config?: string;
  /**
   * Instead, the development accounts for another cluster or more nodes than
   * nats.conf has (cluster `dvs`, nodes 1..16), rendered into the store dir.
   */
  readonly accounts?: { readonly cluster?: string; readonly nodes?: number };
}

export async function startTestNatsServer(options: TestNatsServerOptions = {}): Promise<TestNatsServer> {
  const dataDir = mkdtempSync(join(tmpdir(), "dvs-nats-"));
  const config = options.accounts ? devConfigFile(dataDir, options.accounts) : (options.config ?? natsConf);
  // DVS_TEST_NATS_LOG_DIR keeps each server's log (permission violations included) after the test.
  const logDir = process.env.DVS_TEST_NATS_LOG_DIR;
  const server = await startNatsServer({
    config,
    port: 0,
    storeDir: dataDir,
    ...(logDir ? { extraArgs: ["-l", join(logDir, `nats-${basename(dataDir)}.log`)] } : {}),
  });
  const stop = async () => {
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  };
  return {
    url: server.url,
    port: server.port,
    pid: server.pid,
    dataDir,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

/** Writes the development config for `cluster` with nodes 1..`nodes` into `dir`; returns its path. */
export function devConfigFile(
  dir: string,
  accounts: { readonly cluster?: string; readonly nodes?: number },
): string {
  const file = join(dir, "nats-dev.conf");
  writeFileSync(file, renderNatsConfig(devServerConfig(accounts.nodes, accounts.cluster)));
  return file;
}
