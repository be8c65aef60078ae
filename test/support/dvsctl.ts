// dvsctl as the end-to-end tests run it: a child process to the end, its exit
// status and everything it wrote; with --json, the one RPLY it printed; or its
// stdout as bytes, apart from stderr (file update writes a file there).
import { spawn } from "node:child_process";
import { join } from "node:path";
import { ADMIN_KEY_FILE } from "../../client/adminKey.js";
import type { Rply } from "../../protocol/messages.js";
import { dvsctlBin, spawnNode } from "./cli.js";

export interface DvsctlRun {
  readonly code: number | null;
  readonly output: string;
}

export interface DvsctlBytesRun {
  readonly code: number | null;
  readonly stdout: Buffer;
  readonly stderr: string;
}

/** The environment that makes dvsctl sign with the admin key `dvsd up --data <dataDir>` wrote. */
export function adminKeyEnv(dataDir: string): NodeJS.ProcessEnv {
  return { DVS_ADMIN_KEY_FILE: join(dataDir, ADMIN_KEY_FILE) };
}

/**
 * A dvsctl runner bound to an environment read at each call (DVS_NATS is known
 * only once a server runs). Without DVS_ADMIN_KEY_FILE in it, dvsctl signs
 * nothing: a developer's ./data/admin.nk is never picked up by a test.
 */
export function dvsctlRunner(getEnv: () => NodeJS.ProcessEnv) {
  const env = (): NodeJS.ProcessEnv => ({ DVS_ADMIN_KEY_FILE: "none", ...getEnv() });
  async function dvsctl(...args: string[]): Promise<DvsctlRun> {
    const p = spawnNode([dvsctlBin, ...args], env());
    const code = await p.exited();
    return { code, output: p.output() };
  }
  async function dvsctlJson(...args: string[]): Promise<{ code: number | null; rply: Rply }> {
    const { code, output } = await dvsctl("--json", ...args);
    const line = output.split("\n").find((l) => l.startsWith("{"));
    if (line === undefined) throw new Error(`dvsctl ${args.join(" ")} printed no JSON:\n${output}`);
    return { code, rply: JSON.parse(line) as Rply };
  }
  async function dvsctlBytes(...args: string[]): Promise<DvsctlBytesRun> {
    const child = spawn(process.execPath, [dvsctlBin, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...env() },
    });
    const stdout: Buffer[] = [];
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.once("close", resolve));
    return { code, stdout: Buffer.concat(stdout), stderr };
  }
  return { dvsctl, dvsctlJson, dvsctlBytes };
}
