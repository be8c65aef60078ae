// Each integration test owns its nats-server: started from nats.conf on a free
// port with a temporary store dir, removed again with `await using`. There is
// no skip: without the binary the test fails with the install command.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { startNatsServer } from "../../actors/natsServer.js";

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

export async function startTestNatsServer(options: { config?: string } = {}): Promise<TestNatsServer> {
  const dataDir = mkdtempSync(join(tmpdir(), "dvs-nats-"));
  const server = await startNatsServer({ config: options.config ?? natsConf, port: 0, storeDir: dataDir });
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
