// The Serf baseline of the detection row (not a row itself): `serf agent`s on
// loopback with default (LAN) settings, each running an event handler that
// timestamps `member-failed` as an operator's script would see it. Only used
// when `serf` is on PATH; the bench never installs it.
import { execFile, spawnSync } from "node:child_process";
import { chmodSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "../../daemon/natsServer.js";
import { BenchTimeoutError } from "../errors.js";
import type { BenchContext } from "../row.js";

export const SERF_MISSING_NOTE = "serf not installed: apt-get install -y serf";

export function serfInstalled(): boolean {
  const probe = spawnSync("serf", ["version"], { stdio: "ignore", timeout: 5_000 });
  return !probe.error && probe.status === 0;
}

/** A `member-failed` seen by one agent's handler. */
export interface FailedSeen {
  /** Wall clock (ms since the epoch) when the handler ran. */
  readonly at: number;
  readonly observer: string;
  readonly failed: string;
}

interface Agent {
  readonly name: string;
  readonly bind: number;
  readonly rpc: number;
  child: ReturnType<BenchContext["spawn"]> | undefined;
}

export class SerfCluster {
  readonly #ctx: BenchContext;
  readonly #handlerOut: string;
  readonly #handler: string;
  readonly #agents: Agent[];

  private constructor(ctx: BenchContext, dir: string, agents: Agent[]) {
    this.#ctx = ctx;
    this.#agents = agents;
    this.#handlerOut = join(dir, "member-failed.log");
    this.#handler = join(dir, "member-failed.sh");
    // Timestamp first, then one line per failed member read from stdin.
    writeFileSync(
      this.#handler,
      `#!/bin/sh\nnow=$(date +%s%3N)\nwhile read -r name rest; do echo "$now $SERF_SELF_NAME $name" >> ${this.#handlerOut}; done\n`,
    );
    chmodSync(this.#handler, 0o755);
    writeFileSync(this.#handlerOut, "");
  }

  static async create(ctx: BenchContext, agents: number): Promise<SerfCluster> {
    const dir = ctx.tempDir("dvs-bench-serf-");
    const list: Agent[] = [];
    for (let i = 1; i <= agents; i++) {
      list.push({ name: `serf-${i}`, bind: await freePort(), rpc: await freePort(), child: undefined });
    }
    return new SerfCluster(ctx, dir, list);
  }

  get names(): string[] {
    return this.#agents.map((a) => a.name);
  }

  #agent(name: string): Agent {
    const agent = this.#agents.find((a) => a.name === name);
    if (!agent) throw new Error(`no serf agent ${name}`);
    return agent;
  }

  /** Starts the first agent, waits until it answers, then the others joining it. */
  async startAll(timeoutMs = 20_000): Promise<void> {
    const [first, ...rest] = this.#agents;
    if (!first) return;
    this.#start(first, undefined);
    await this.#ctx.within(timeoutMs, "first serf agent answering", this.#untilMembers(first, 1, timeoutMs));
    for (const agent of rest) this.#start(agent, first);
    await this.converged(timeoutMs);
  }

  #start(agent: Agent, join: Agent | undefined): void {
    agent.child = this.#ctx.spawn("serf", [
      "agent",
      `-node=${agent.name}`,
      `-bind=127.0.0.1:${agent.bind}`,
      `-rpc-addr=127.0.0.1:${agent.rpc}`,
      `-event-handler=member-failed=${this.#handler}`,
      "-log-level=err",
      ...(join ? [`-join=127.0.0.1:${join.bind}`] : []),
    ]);
  }

  /** SIGKILL; returns the wall-clock time just before the signal. */
  async kill(name: string): Promise<number> {
    const agent = this.#agent(name);
    const child = agent.child;
    if (!child || child.exitCode !== null || child.signalCode !== null)
      throw new Error(`${name} is not running`);
    const exited = new Promise((resolve) => child.once("exit", resolve));
    const at = Date.now();
    child.kill("SIGKILL");
    await this.#ctx.within(5_000, `exit of ${name}`, exited);
    return at;
  }

  /** Starts a killed agent again under the same name, joining a live one, and waits for every agent to see all alive. */
  async restart(name: string, timeoutMs = 30_000): Promise<void> {
    const agent = this.#agent(name);
    const peer = this.#agents.find((a) => a !== agent);
    this.#start(agent, peer);
    await this.converged(timeoutMs);
  }

  async converged(timeoutMs = 30_000): Promise<void> {
    const all = this.#agents.length;
    await this.#ctx.within(
      timeoutMs,
      `every serf agent seeing ${all} alive`,
      Promise.all(this.#agents.map((a) => this.#untilMembers(a, all, timeoutMs))),
    );
  }

  /** The `member-failed` lines so far. */
  failedSeen(): FailedSeen[] {
    return readFileSync(this.#handlerOut, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((line) => {
        const [at, observer, failed] = line.split(" ");
        return { at: Number(at), observer: observer ?? "", failed: failed ?? "" };
      });
  }

  /** The first `member-failed` of `failed` at each other agent after `since` (wall clock). */
  async firstFailedAtEach(failed: string, since: number, timeoutMs: number): Promise<Map<string, number>> {
    const observers = this.names.filter((n) => n !== failed);
    const found = new Map<string, number>();
    const deadline = performance.now() + timeoutMs;
    const poll = async () => {
      while (found.size < observers.length && performance.now() < deadline && !this.#ctx.signal.aborted) {
        for (const seen of this.failedSeen()) {
          if (seen.failed === failed && seen.at >= since && !found.has(seen.observer))
            found.set(seen.observer, seen.at);
        }
        if (found.size < observers.length) await new Promise((r) => setTimeout(r, 20));
      }
      if (found.size < observers.length)
        throw new BenchTimeoutError(`member-failed of ${failed} at ${observers.join(",")}`, timeoutMs);
      return found;
    };
    return this.#ctx.within(timeoutMs, `member-failed of ${failed} at every other serf agent`, poll());
  }

  /** Polls until the agent lists `alive` members alive; stops polling at `timeoutMs`. */
  async #untilMembers(agent: Agent, alive: number, timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    let count = 0;
    while (performance.now() < deadline && !this.#ctx.signal.aborted) {
      count = await aliveMembers(agent.rpc);
      if (count >= alive) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new BenchTimeoutError(`${agent.name} seeing ${alive} alive (it sees ${count})`, timeoutMs);
  }
}

/** How many members `serf members` on that RPC port lists as alive (0 when it does not answer). */
function aliveMembers(rpcPort: number): Promise<number> {
  return new Promise((resolve) => {
    execFile(
      "serf",
      ["members", `-rpc-addr=127.0.0.1:${rpcPort}`, "-status=alive"],
      { timeout: 2_000 },
      (error, stdout) => resolve(error ? 0 : stdout.split("\n").filter((l) => l.trim()).length),
    );
  });
}
