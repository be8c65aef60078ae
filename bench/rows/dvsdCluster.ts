// A cluster of real `dvsd run` processes for the membership rows (not a row
// itself): each node its own process and state dir, started through the row's
// context so it is killed when the row ends, and an observer that timestamps
// every event of `dvs.<c>.events` on arrival and asks the nodes for their
// status. Every wait is bounded with `ctx.within`. The cluster has its own
// admin signing key (in its directory, trusted by every node it starts): rows
// sign mutating requests with `cluster.signer`, as dvsctl does, so a relayed
// one (ALL, a forward) is served.
import type { ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import { loadAdminSigner } from "../../client/adminKey.js";
import { agreeOnView, collectStatus } from "../../client/clusterStatus.js";
import { generateAdminKey } from "../../daemon/adminKey.js";
import { devNodeCredentials } from "../../daemon/credentials.js";
import { dvsdRunArgs } from "../../daemon/nodeFlags.js";
import type { AdminSigner } from "../../protocol/adminSignature.js";
import { decode } from "../../protocol/codec.js";
import {
  type EventMessage,
  eventSchema,
  type MembershipEventName,
  type NodeStatus,
} from "../../protocol/messages.js";
import { subjects } from "../../protocol/subjects.js";
import { NatsTransport } from "../../transport/nats.js";
import type { BenchContext } from "../row.js";

/**
 * The config every bench node starts with: the defaults but a 64 MiB action
 * log. Its stream reserves its whole size of the server's JetStream store
 * (1 GiB by default), and the rows' clusters share one server of 2 GB.
 */
export const BENCH_NODE_CONFIG = "actions:\n  maxMegabytes: 64\n";

export interface TimedEvent extends EventMessage {
  /** `performance.now()` in the bench process when the event arrived. */
  readonly receivedAt: number;
}

export interface ClusterOptions {
  /** Node ids 1..nodes. */
  readonly nodes: number;
  /** Cluster name: each row (and round) its own, so they never see each other's traffic. */
  readonly cluster: string;
  /** Extra flags for every `dvsd run`. */
  readonly extraArgs?: readonly string[];
  /** `--log-level` of every node: "warn" unless given (the rows that time requests run nodes at the default, "info"). */
  readonly logLevel?: string;
}

export class DvsdCluster {
  readonly events: TimedEvent[] = [];
  readonly nodes: readonly number[];
  /** Signs mutating requests with the admin key every node of this cluster trusts (DvsClient's `signer`). */
  readonly signer: AdminSigner;
  readonly #adminPublicKey: string;
  readonly #ctx: BenchContext;
  readonly #options: ClusterOptions;
  readonly #dir: string;
  readonly #config: string;
  readonly #children = new Map<number, ChildProcess>();
  readonly #waiters = new Set<() => void>();
  readonly #subjects;
  #transport: NatsTransport | undefined;

  private constructor(
    ctx: BenchContext,
    readonly connection: NatsConnection,
    options: ClusterOptions,
  ) {
    this.#ctx = ctx;
    this.#options = options;
    this.#subjects = subjects(options.cluster);
    this.#dir = ctx.tempDir(`dvs-bench-${options.cluster}-`);
    this.#config = join(this.#dir, "node.yaml");
    writeFileSync(this.#config, BENCH_NODE_CONFIG);
    const adminKey = generateAdminKey(this.#dir);
    this.#adminPublicKey = adminKey.publicKey;
    this.signer = loadAdminSigner(adminKey.seedFile);
    this.nodes = Array.from({ length: options.nodes }, (_, i) => i + 1);
    connection.subscribe(this.#subjects.events, {
      callback: (err, msg) => {
        if (err) return;
        const receivedAt = performance.now();
        const decoded = decode(msg.data, "cbor");
        const parsed = decoded.ok ? eventSchema.safeParse(decoded.value) : undefined;
        if (!parsed?.success) return;
        this.events.push({ ...parsed.data, receivedAt });
        for (const w of this.#waiters) w();
      },
    });
  }

  /** The observer only; no node is started yet. */
  static async create(ctx: BenchContext, options: ClusterOptions): Promise<DvsdCluster> {
    const nc = await ctx.connectRaw(`bench-${options.cluster}-observer`);
    const cluster = new DvsdCluster(ctx, nc, options);
    await ctx.within(5_000, "observer flush", nc.flush());
    return cluster;
  }

  /** Starts node `node` (again: same state dir, so the next incarnation). */
  start(node: number): ChildProcess {
    const running = this.#children.get(node);
    if (running && running.exitCode === null && running.signalCode === null) {
      throw new Error(`node ${node} of ${this.#options.cluster} is already running`);
    }
    const child = this.#ctx.spawn(
      process.execPath,
      dvsdRunArgs({
        bin: join(this.#ctx.repoRoot, "dist/bin/dvsd.js"),
        node,
        cluster: this.#options.cluster,
        nats: this.#ctx.url,
        state: join(this.#dir, `node-${node}`),
        config: this.#config,
        logLevel: this.#options.logLevel ?? "warn",
        flags: this.#ctx.nodeFlags,
        // The node's adminKeys: this cluster's key only.
        extra: ["--admin-keys", this.#adminPublicKey, ...(this.#options.extraArgs ?? [])],
      }),
      // Should the bench itself die, the daemons stop on their own.
      {
        env: {
          ...process.env,
          DVS_PARENT_PID: String(process.pid),
          // Each node as itself (the bench's server has a user per node id, for any cluster).
          DVS_NATS_USER: devNodeCredentials(node).user,
          DVS_NATS_PASS: devNodeCredentials(node).pass,
        },
      },
    );
    this.#children.set(node, child);
    return child;
  }

  startAll(): void {
    for (const node of this.nodes) this.start(node);
  }

  /** SIGKILL, returning `performance.now()` just before the signal; resolves once the process is gone. */
  async kill(node: number): Promise<number> {
    const { at, exited } = this.#signalKill(node);
    await this.#ctx.within(5_000, `exit of node ${node} after SIGKILL`, exited);
    return at;
  }

  async killAll(): Promise<void> {
    const running = [...this.#children.entries()].filter(
      ([, c]) => c.exitCode === null && c.signalCode === null,
    );
    const exits = running.map(([node]) => this.#signalKill(node).exited);
    await this.#ctx.within(5_000, `exit of ${running.length} nodes after SIGKILL`, Promise.all(exits));
  }

  #signalKill(node: number): { at: number; exited: Promise<unknown> } {
    const child = this.#children.get(node);
    if (!child || child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`node ${node} of ${this.#options.cluster} is not running`);
    }
    const exited = new Promise((resolve) => child.once("exit", resolve));
    const at = performance.now();
    child.kill("SIGKILL");
    return { at, exited };
  }

  mark(): number {
    return this.events.length;
  }

  /** Resolves once `done()` holds, re-checked at every event; a BenchTimeoutError after `timeoutMs`. */
  async until(done: () => boolean, what: string, timeoutMs: number): Promise<void> {
    let check: () => void = () => {};
    const reached = new Promise<void>((resolve) => {
      check = () => {
        if (done()) resolve();
      };
    });
    this.#waiters.add(check);
    check();
    try {
      await this.#ctx.within(timeoutMs, what, reached);
    } finally {
      this.#waiters.delete(check);
    }
  }

  /**
   * The first event from each of `observers` (from index `from` on) that is
   * about `node` (that incarnation, or with `above` one higher than it: a
   * restart's, derived from the clock) and one of `names`.
   */
  async firstFromEach(
    observers: readonly number[],
    about: { node: number; incarnation: number; above?: boolean },
    names: readonly MembershipEventName[],
    options: { from: number; timeoutMs: number },
  ): Promise<Map<number, TimedEvent>> {
    const first = new Map<number, TimedEvent>();
    let scanned = options.from;
    const scan = () => {
      for (; scanned < this.events.length; scanned++) {
        const e = this.events[scanned] as TimedEvent;
        if (
          observers.includes(e.node) &&
          !first.has(e.node) &&
          names.includes(e.event) &&
          e.changed.some(
            (m) =>
              m.node === about.node &&
              (about.above ? m.incarnation > about.incarnation : m.incarnation === about.incarnation),
          )
        )
          first.set(e.node, e);
      }
      return first.size === observers.length;
    };
    await this.until(
      scan,
      `${names.join("/")} of node ${about.node} at nodes ${observers.join(",")}`,
      options.timeoutMs,
    );
    return first;
  }

  /** Every node's answer to one status request, collected for `windowMs` or until `expect` answered. */
  async statuses(windowMs = 300): Promise<NodeStatus[]> {
    this.#transport ??= new NatsTransport(this.connection, { name: "bench-observer" });
    const status = await collectStatus(this.#transport, {
      cluster: this.#options.cluster,
      timeoutMs: windowMs,
    });
    return status.nodes;
  }

  /**
   * Resolves, with the answers, once exactly `nodes` answer with a view of
   * exactly those members and one view id; polls every `pollMs`.
   */
  async converged(nodes: readonly number[], timeoutMs: number, pollMs = 50): Promise<NodeStatus[]> {
    const want = [...nodes].sort((a, b) => a - b).join(",");
    let last: NodeStatus[] = [];
    let gaveUp = false;
    const poll = async (): Promise<NodeStatus[]> => {
      while (!gaveUp) {
        last = await this.statuses();
        if (agreeOnView(last, nodes)) return last;
        await new Promise((resolve) => setTimeout(resolve, pollMs));
      }
      return last;
    };
    try {
      return await this.#ctx.within(
        timeoutMs,
        `views of ${this.#options.cluster} converging on {${want}}`,
        poll(),
      );
    } catch (error) {
      const seen = last.map((s) => `${s.node}: ${s.view.id} {${s.view.members.join(",")}}`).join("; ");
      throw Object.assign(error as Error, { message: `${(error as Error).message}; last views: ${seen}` });
    } finally {
      gaveUp = true;
    }
  }
}

/** Resolves after `ms`, or rejects at once when the run is interrupted. */
export function pause(ctx: BenchContext, ms: number, what: string): Promise<void> {
  return ctx
    .within(ms + 1_000, what, new Promise<void>((resolve) => setTimeout(resolve, ms)))
    .then(() => undefined);
}
