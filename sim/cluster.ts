// A cluster of real node runtimes over the simulated network, for scenario and
// model-based tests: start, crash, stop, restart nodes, cut links and routes,
// and advance simulated time; every membership event each node observed is kept.
// Used by the tests, the model CLIs (test/model) and `npm run scale` (bench/scaleSim.ts).

import type { CatalogWrites } from "../actors/files/catalogWrites.js";
import type { FileSettings } from "../actors/files/fileService.js";
import { MemoryReplicas, SimDisk } from "../actors/files/memoryReplicas.js";
import type { ReplicaStore } from "../actors/files/replicaStore.js";
import { type Logger, silentLogger } from "../actors/logger.js";
import type { NodeMetrics } from "../actors/metrics.js";
import { NodeRuntime } from "../actors/node.js";
import type { QuorumGate, QuorumGateOptions } from "../actors/quorumGate.js";
import { DvsClient, type DvsClientOptions } from "../client/dvsClient.js";
import { defaultElectionTimings, type ElectionTimings } from "../machines/electionTimings.js";
import { defaultTimings, type MembershipMachine, type MembershipTimings } from "../machines/membership.js";
import type { AdminSigner } from "../protocol/adminSignature.js";
import { nodeClientName } from "../protocol/advisories.js";
import type { EventMessage } from "../protocol/messages.js";
import type { ActionLog } from "../transport/actionLog.js";
import { type Random, seededRandom } from "../transport/clock.js";
import { SimKv, type SimKvOptions, SimNetwork, type SimNetworkOptions } from "../transport/sim/index.js";
import type { Transport } from "../transport/transport.js";
import { TEST_ADMIN, TEST_ADMIN_SEED } from "./testAdmin.js";

export interface SimClusterOptions extends Partial<SimNetworkOptions> {
  readonly seed: number;
  readonly timings?: MembershipTimings;
  readonly quorum?: boolean;
  /** The membership machine every node runs (tests plant bugs with createMembershipMachine). */
  readonly membershipMachine?: MembershipMachine;
  /** The action log every node writes to (one log shared, as a JetStream stream is). */
  readonly actionLog?: ActionLog;
  /** Run the election over one simulated store (SPEC 7); passive servers by id. */
  readonly election?: { readonly timings?: ElectionTimings; readonly passive?: readonly number[] };
  /** Run the file store too (needs `election`): each node keeps its replicas on a simulated disk that survives its restarts. */
  readonly files?: Partial<FileSettings>;
  /** The replica store each node opens over its disk (default MemoryReplicas; tests plant bugs with it). */
  readonly replicaStore?: (id: number, disk: SimDisk) => ReplicaStore;
  /** How each node's file coordinator orders its catalog writes (default CatalogWrites; tests plant bugs with it). */
  readonly catalogWrites?: () => CatalogWrites;
  /** The admin keys the nodes trust (default: SIM_ADMIN's); `[]` makes every signature untrusted. */
  readonly adminKeys?: readonly string[];
  /** How the simulated store behaves (e.g. nats-server 2.9's compare-and-set, `casRaftMs`). */
  readonly kv?: SimKvOptions;
  /** Where each node counts what it does (default: nowhere). */
  readonly metrics?: (id: number) => NodeMetrics;
  /** Where each node logs (default: nowhere). */
  readonly logger?: (id: number) => Logger;
  /** The gate each node acts on its minority mark with (tests plant bugs with it). */
  readonly quorumGate?: (options: QuorumGateOptions) => QuorumGate;
}

/** The simulated admin's nkey seed: the tests' key, fixed so runs repeat, public. */
export const SIM_ADMIN_SEED = TEST_ADMIN_SEED;
/** The simulated admin: its key is the one the nodes of a SimCluster trust. */
export const SIM_ADMIN: AdminSigner = TEST_ADMIN;

/** The NATS account the nodes' users are in, as the daemon's server config names it (CLUSTER_ACCOUNT). */
export const NODE_ACCOUNT = "DVS";

export interface ObservedEvent extends EventMessage {
  /** Position in the cluster-wide order of observation. */
  readonly order: number;
}

export class SimCluster {
  readonly network: SimNetwork;
  readonly timings: MembershipTimings;
  readonly nodes = new Map<number, NodeRuntime>();
  /** The coordinator store, when the cluster runs the election. */
  readonly kv: SimKv | undefined;
  readonly electionTimings: ElectionTimings;
  /** Every event, as each node observed it, in order. */
  readonly events: ObservedEvent[] = [];
  readonly #incarnations = new Map<number, number>();
  readonly #servers = new Map<number, number>();
  /** Each node's simulated disk, kept across crashes and restarts. */
  readonly disks = new Map<number, SimDisk>();
  /** Nonces of the clients' signatures: seeded, apart from the network's generator. */
  readonly #nonces: Random;
  #order = 0;

  /** Nodes `ids` on a fresh simulated network, once every node's view holds them all (within 5 simulated s). */
  static async converged(seed: number, ids: readonly number[]): Promise<SimCluster> {
    const c = new SimCluster({ seed });
    for (const id of ids) c.start(id);
    await c.clock.runUntil(() => {
      const views = c.views();
      return ids.every((id) => views.get(id)?.members.length === ids.length);
    }, 5_000);
    return c;
  }

  constructor(readonly options: SimClusterOptions) {
    // The daemon's nodes are users of account DVS (daemon/natsAccounts.ts): their advisories name it.
    this.network = new SimNetwork({ trace: false, account: NODE_ACCOUNT, ...options });
    this.timings = options.timings ?? defaultTimings();
    this.electionTimings = options.election?.timings ?? defaultElectionTimings();
    this.kv = options.election ? new SimKv(this.network, "DVS_REGISTRY_dvs", options.kv) : undefined;
    this.#nonces = seededRandom(options.seed * 1_000 + 999_983);
  }

  /**
   * What a DvsClient needs to sign as the admin on this network: the signer,
   * the simulated clock and seeded nonces. Spread it into DvsClientOptions.
   */
  get signing(): Pick<Required<DvsClientOptions>, "signer" | "clock" | "random"> {
    return { signer: SIM_ADMIN, clock: this.network.clock, random: this.#nonces };
  }

  /** An admin client on host `name` (server 0 unless given) that signs its mutating requests. */
  client(
    name: string,
    options: Partial<Omit<DvsClientOptions, "cluster">> & { readonly server?: number } = {},
  ): DvsClient {
    const { server, ...rest } = options;
    const transport = this.network.connect(name, server === undefined ? {} : { server });
    return new DvsClient(transport, { cluster: "dvs", clientId: name, ...this.signing, ...rest });
  }

  get clock() {
    return this.network.clock;
  }

  /** Starts (or restarts, as a new incarnation) node `id` on the given server. */
  start(id: number, server = this.#servers.get(id) ?? 0): NodeRuntime {
    if (this.nodes.has(id)) throw new Error(`node ${id} is already running`);
    this.#servers.set(id, server);
    const name = `node-${id}`;
    const nextIncarnation = () => {
      const n = (this.#incarnations.get(id) ?? 0) + 1;
      this.#incarnations.set(id, n);
      return n;
    };
    const node = new NodeRuntime<Transport>(
      {
        node: id,
        cluster: "dvs",
        incarnation: nextIncarnation(),
        timings: this.timings,
        quorum: this.options.quorum ?? false,
        adminKeys: this.options.adminKeys ?? [SIM_ADMIN.key],
        ...(this.options.membershipMachine ? { membershipMachine: this.options.membershipMachine } : {}),
        ...(this.options.files ? { files: this.options.files } : {}),
        ...(this.options.election
          ? {
              election: {
                serverType: this.options.election.passive?.includes(id) ? "passive" : "active",
                timings: this.electionTimings,
              },
            }
          : {}),
      },
      {
        clock: this.network.hostClock(name),
        logger: this.options.logger?.(id) ?? silentLogger,
        connect: async (identity) =>
          this.network.connect(name, { server, clientName: nodeClientName(identity.cluster, identity.node) }),
        nextIncarnation,
        onViewChange: (event) => this.events.push({ ...event, order: this.#order++ }),
        random: seededRandom(this.options.seed * 1_000 + id),
        ...(this.options.actionLog ? { actionLog: () => this.options.actionLog as ActionLog } : {}),
        ...(this.kv ? { coordinatorStore: () => (this.kv as SimKv).client(name) } : {}),
        ...(this.options.files ? { replicas: () => this.#replicaStore(id) } : {}),
        ...(this.options.catalogWrites ? { catalogWrites: this.options.catalogWrites } : {}),
        ...(this.options.metrics ? { metrics: this.options.metrics(id) } : {}),
        ...(this.options.quorumGate ? { quorumGate: this.options.quorumGate } : {}),
      },
    ).start();
    this.nodes.set(id, node);
    return node;
  }

  #replicaStore(id: number): ReplicaStore {
    const disk = this.disk(id);
    return this.options.replicaStore?.(id, disk) ?? new MemoryReplicas(disk);
  }

  /** Node `id`'s simulated disk (made on first use). */
  disk(id: number): SimDisk {
    let disk = this.disks.get(id);
    if (disk === undefined) {
      disk = new SimDisk();
      this.disks.set(id, disk);
    }
    return disk;
  }

  /** SIGKILL: the node vanishes without a word. */
  crash(id: number): void {
    if (!this.nodes.has(id)) return;
    this.network.crash(`node-${id}`);
    this.nodes.get(id)?.actor.stop();
    this.nodes.delete(id);
  }

  /** Graceful stop: the node announces its leave. */
  async stop(id: number): Promise<void> {
    const node = this.nodes.get(id);
    if (!node) return;
    this.nodes.delete(id);
    node.actor.send({ type: "node.stop", reason: "stop" });
    await this.clock.runUntil(() => node.actor.getSnapshot().status === "done", 5_000);
  }

  cutLink(id: number): void {
    this.network.cutLink(`node-${id}`);
  }

  restoreLink(id: number): void {
    this.network.restoreLink(`node-${id}`);
  }

  advance(ms: number): Promise<void> {
    return this.clock.advance(ms);
  }

  /** Runs simulated time until `promise` settles (at most `maxMs`), then resolves or rejects as it did. */
  async settle<T>(promise: Promise<T>, maxMs = 30_000): Promise<T> {
    let done = false;
    const tracked = promise.finally(() => {
      done = true;
    });
    tracked.catch(() => {});
    await this.clock.runUntil(() => done, maxMs);
    return tracked;
  }

  /** The current view of every running node that has joined. */
  views(): Map<number, { id: number; members: number[] }> {
    const out = new Map<number, { id: number; members: number[] }>();
    for (const [id, node] of this.nodes) {
      const ctx = node.membership?.context;
      if (ctx && ctx.phase === "member") out.set(id, { id: ctx.view.id, members: [...ctx.view.members] });
    }
    return out;
  }

  eventsOf(observer: number): ObservedEvent[] {
    return this.events.filter((e) => e.node === observer);
  }

  incarnationOf(id: number): number | undefined {
    return this.nodes.get(id)?.identity.incarnation;
  }
}
