// One `dvsd run` node as an operator runs it: its own state dir and config
// file (written by the test), a child process the test can SIGKILL, SIGSTOP,
// stop gracefully and start again with the same state, as a restart would.
import { appendFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify as toYaml } from "yaml";
import type { Credentials } from "../../client/credentials.js";
import type { ConfigInput } from "../../daemon/config.js";
import { devNodeCredentials } from "../../daemon/credentials.js";
import { dvsdRunArgs } from "../../daemon/nodeFlags.js";
import { TEST_ADMIN } from "../../sim/testAdmin.js";
import { dvsdBin, type Spawned, spawnNode } from "./cli.js";
import { EventWatch } from "./eventWatch.js";

export interface DvsdNodeOptions {
  readonly node: number;
  /** The NATS URL this node connects to (a TCP proxy's, to cut its link). */
  readonly natsUrl: string;
  /** Holds the node's state dir and config file. */
  readonly dir: string;
  /** Config file contents, without `node` (given with --node). */
  readonly config: Omit<ConfigInput, "node">;
  readonly format?: "yaml" | "json";
  /**
   * Appends everything every incarnation writes to this file as it arrives,
   * so a node that dies, or a run that is killed, leaves its log behind.
   */
  readonly logFile?: string;
  /** Its NATS identity (default: its own development user of nats.conf, `node-<id>`). */
  readonly credentials?: Credentials;
  /** The `dvsd` it runs (default: the repository's build; see snapshotBuild). */
  readonly bin?: string;
}

export class DvsdNode implements AsyncDisposable {
  readonly node: number;
  readonly stateDir: string;
  readonly configFile: string;
  #process: Spawned | undefined;
  /** Output of the earlier runs (incarnations) of this node. */
  readonly #earlier: string[] = [];
  readonly #natsUrl: string;
  readonly #logFile: string | undefined;
  readonly #credentials: Credentials;
  readonly #bin: string;

  constructor(options: DvsdNodeOptions) {
    this.node = options.node;
    this.#credentials = options.credentials ?? devNodeCredentials(options.node);
    this.#natsUrl = options.natsUrl;
    this.#logFile = options.logFile;
    this.#bin = options.bin ?? dvsdBin;
    this.stateDir = join(options.dir, `node-${options.node}`, "state");
    const format = options.format ?? "yaml";
    this.configFile = join(options.dir, `node-${options.node}`, `dvsd.${format}`);
    mkdirSync(this.stateDir, { recursive: true });
    // The nodes trust the tests' admin key unless the test names its own.
    const config = { adminKeys: [TEST_ADMIN.key], ...options.config };
    writeFileSync(this.configFile, format === "json" ? JSON.stringify(config, null, 2) : toYaml(config));
  }

  /** Starts the daemon (again, with the same state dir: a new incarnation). */
  start(): Spawned {
    if (this.running) throw new Error(`node ${this.node} is already running`);
    if (this.#process) this.#earlier.push(this.#process.output());
    this.#process = spawnNode(
      dvsdRunArgs({
        bin: this.#bin,
        node: this.node,
        nats: this.#natsUrl,
        state: this.stateDir,
        config: this.configFile,
      }),
      {
        // Each node logs in as itself: one identity per node, never a shared one.
        DVS_NATS_USER: this.#credentials.user,
        DVS_NATS_PASS: this.#credentials.pass,
      },
    );
    const logFile = this.#logFile;
    if (logFile !== undefined) {
      // Synchronous appends: the chunk is in the file before anything else runs.
      const append = (chunk: Buffer) => appendFileSync(logFile, chunk);
      this.#process.child.stdout?.on("data", append);
      this.#process.child.stderr?.on("data", append);
    }
    return this.#process;
  }

  get process(): Spawned {
    if (!this.#process) throw new Error(`node ${this.node} was never started`);
    return this.#process;
  }

  get running(): boolean {
    const child = this.#process?.child;
    return child !== undefined && child.exitCode === null && child.signalCode === null;
  }

  get pid(): number {
    return this.process.child.pid ?? -1;
  }

  signal(signal: NodeJS.Signals): void {
    this.process.child.kill(signal);
  }

  /** SIGTERM and wait for the exit code: the graceful stop of an operator. */
  async stop(timeoutMs = 10_000): Promise<number | null> {
    if (!this.running) return this.process.child.exitCode;
    this.signal("SIGTERM");
    return this.process.exited(timeoutMs);
  }

  /** SIGKILL (after SIGCONT, should it be stopped) and wait until it is gone. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.signal("SIGKILL");
    await this.process.exited(5_000);
  }

  /** Everything every run of this node wrote (pino JSON lines), oldest first. */
  output(): string {
    return [...this.#earlier, this.#process?.output() ?? ""].join("");
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.kill();
  }
}

/** Starts `dvsd run` nodes `ids` with one config and resolves once they all share one view. */
export async function startDvsdNodes(
  ids: readonly number[],
  options: Omit<DvsdNodeOptions, "node" | "credentials">,
  timeoutMs = 20_000,
): Promise<DvsdNode[]> {
  const nodes = ids.map((node) => new DvsdNode({ ...options, node }));
  for (const n of nodes) n.start();
  const watch = await EventWatch.start(options.natsUrl);
  try {
    await watch.converged(ids, timeoutMs);
  } finally {
    await watch.close();
  }
  return nodes;
}
