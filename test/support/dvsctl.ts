// dvsctl as the end-to-end tests run it: a child process to the end, its exit
// status and everything it wrote; with --json, the one RPLY it printed.
import type { Rply } from "../../transport/protocol.js";
import { dvsctlBin, spawnNode } from "./processes.js";

export interface DvsctlRun {
  readonly code: number | null;
  readonly output: string;
}

/** A dvsctl runner bound to an environment read at each call (DVS_NATS is known only once a server runs). */
export function dvsctlRunner(env: () => NodeJS.ProcessEnv) {
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
  return { dvsctl, dvsctlJson };
}
