// The compiled CLIs as end-to-end tests run them: spawned children, a free port,
// waiting on output with a deadline.
import { type ChildProcess, spawn } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, symlinkSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../../daemon/natsServer.js";
import { repoRoot } from "./natsServer.js";

export { freePort };

/** Whether `port` on 127.0.0.1 can be bound right now. */
function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

/**
 * The first of `count` consecutive ports that were all free a moment ago
 * (`dvsd up --servers N --cluster-port P` takes P … P+N-1): checking only the
 * first let another process hold one of the next.
 */
export async function freePortRun(count: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = await freePort();
    if (base + count > 65_535) continue;
    let all = true;
    for (let i = 1; i < count && all; i++) all = await bindable(base + i);
    if (all) return base;
  }
  throw new Error(`no run of ${count} free ports found on 127.0.0.1`);
}

export const dvsdBin = join(repoRoot, "dist/bin/dvsd.js");
export const dvsctlBin = join(repoRoot, "dist/bin/dvsctl.js");

/** What of `dist` a node runs: all but the tests and the benchmarks. */
const NODE_BUILD = (path: string) => !/[/\\]dist[/\\](test|bench)([/\\]|$)/.test(path);

/**
 * A copy of the build under `dir` (`dist`, package.json, a link to
 * node_modules) and the `dvsd` it holds: nodes started from it run the same
 * code however often `dist` is rebuilt while they run (a long chaos run
 * restarts nodes throughout).
 */
export function snapshotBuild(dir: string): string {
  requireBuild();
  const build = join(dir, "build");
  cpSync(join(repoRoot, "dist"), join(build, "dist"), { recursive: true, filter: NODE_BUILD });
  cpSync(join(repoRoot, "package.json"), join(build, "package.json"));
  symlinkSync(join(repoRoot, "node_modules"), join(build, "node_modules"), "dir");
  return join(build, "dist/bin/dvsd.js");
}

export function requireBuild(): void {
  if (!existsSync(dvsdBin) || !existsSync(dvsctlBin)) {
    throw new Error(`${dvsdBin} is missing: run \`npm run build\` first (npm test does)`);
  }
}

export interface Spawned {
  readonly child: ChildProcess;
  output(): string;
  /** Resolves when the output matches, rejects after timeoutMs or if the process exits first. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
  exited(timeoutMs?: number): Promise<number | null>;
}

export function spawnNode(args: string[], env: NodeJS.ProcessEnv = {}): Spawned {
  const child = spawn(process.execPath, args, {
    stdio: ["ignore", "pipe", "pipe"],
    // A `dvsd run` is given its own node user by its caller (DvsdNode); a tool (dvsctl) uses its own default (admin).
    env: { ...process.env, ...env },
  });
  let output = "";
  const waiters = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    output += chunk.toString();
    for (const w of waiters) w();
  };
  child.stdout?.on("data", onData);
  child.stderr?.on("data", onData);
  const exit = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return {
    child,
    output: () => output,
    waitFor(pattern, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = pattern.exec(output);
          if (m) {
            cleanup();
            resolve(m[0]);
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`timed out waiting for ${pattern}; output so far:\n${output}`));
        }, timeoutMs);
        const onExit = () => {
          cleanup();
          reject(new Error(`process exited before ${pattern}; output:\n${output}`));
        };
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
          child.off("exit", onExit);
        };
        waiters.add(check);
        child.once("exit", onExit);
        check();
      });
    },
    async exited(timeoutMs = 20_000) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`process did not exit within ${timeoutMs} ms:\n${output}`)),
          timeoutMs,
        );
      });
      try {
        return await Promise.race([exit, timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The arguments of `dvsd up` with `nodes` nodes on `port`, keeping its state in `data`, logging warnings only. */
export function upArgs(nodes: number, port: number, data: string, extra: readonly string[] = []): string[] {
  return [
    dvsdBin,
    "up",
    "--nodes",
    String(nodes),
    "--port",
    String(port),
    "--data",
    data,
    "--log-level",
    "warn",
    // Tests run side by side: no node takes the default metrics ports, and no console the
    // default console port (a test that wants them says so; a later flag wins).
    "--metrics-port",
    "0",
    "--console-port",
    "0",
    ...extra,
  ];
}

/** `dvsd up` on a free port with a temporary data dir, once it says the cluster is up. */
export async function startLocalCluster(
  nodes = 3,
  extraArgs: readonly string[] = [],
): Promise<{ up: Spawned; port: number; url: string; data: string }> {
  requireBuild();
  const port = await freePort();
  const data = mkdtempSync(join(tmpdir(), "dvs-up-"));
  const up = spawnNode(upArgs(nodes, port, data, extraArgs));
  await up.waitFor(/is up at/, 40_000);
  return { up, port, url: `nats://127.0.0.1:${port}`, data };
}
