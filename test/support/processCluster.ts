// Process runtimes over the simulated network, without the rest of a node: each
// node has its own sim transport, a RequestServer serving the runtime's
// handlers, a fixed DC table and a view the test sets. For the process tests.
import { silentLogger } from "../../actors/logger.js";
import type { MachineRegistry } from "../../actors/machineRegistry.js";
import type { ProcessSnapshotStore } from "../../actors/processes/processStore.js";
import { ProcessRuntime, type ProcessRuntimeOptions } from "../../actors/processes/runtime.js";
import type { ProcessTimings } from "../../actors/processes/timings.js";
import { RequestServer } from "../../actors/requestServer.js";
import { DvsClient } from "../../client/dvsClient.js";
import { decode, encode } from "../../protocol/codec.js";
import { type NodeId, type Rply, type Rqst, rplySchema } from "../../protocol/messages.js";
import { subjects } from "../../protocol/subjects.js";
import { BadReplyError } from "../../transport/errors.js";
import { SimNetwork } from "../../transport/sim/index.js";
import type { Transport } from "../../transport/transport.js";
import { testRegistry } from "./processMachines.js";

export interface ProcessClusterOptions {
  readonly seed: number;
  readonly nodes: readonly NodeId[];
  /** DC id → its nodes (the same table on every node). */
  readonly dcs: Readonly<Record<number, readonly NodeId[]>>;
  readonly latencyMs?: { readonly min: number; readonly max: number };
  readonly timings?: Partial<ProcessTimings>;
  /** A registry per node (default: testRegistry()). */
  readonly registry?: (node: NodeId) => MachineRegistry;
  readonly snapshots?: (node: NodeId) => ProcessSnapshotStore | undefined;
  readonly trace?: boolean;
  /** NATS servers (default 1); node n attaches to server (n - 1) mod servers, the tool to server 0. */
  readonly servers?: number;
  /** More runtime options (faulty machines for the model's planted bugs). */
  readonly runtime?: Pick<ProcessRuntimeOptions, "proxyMachine" | "mailboxes">;
}

export interface ProcessNode {
  readonly node: NodeId;
  /** Its host's name on the simulated network (a new one after each restart). */
  readonly name: string;
  readonly transport: Transport;
  readonly runtime: ProcessRuntime;
  readonly server: RequestServer;
  view: NodeId[];
}

const sub = subjects("dvs");

export class ProcessCluster {
  readonly network: SimNetwork;
  readonly nodes = new Map<NodeId, ProcessNode>();
  readonly client: DvsClient;
  #incarnation = 0;

  constructor(readonly options: ProcessClusterOptions) {
    this.network = new SimNetwork({
      seed: options.seed,
      trace: options.trace ?? false,
      ...(options.servers ? { servers: options.servers } : {}),
      ...(options.latencyMs ? { latencyMs: options.latencyMs } : {}),
    });
    for (const node of options.nodes) this.#create(node, `node-${node}`);
    this.client = new DvsClient(this.network.connect("tool"), {
      cluster: "dvs",
      clientId: "tool",
      timeoutMs: 5_000,
    });
  }

  get clock() {
    return this.network.clock;
  }

  /** Starts every runtime. */
  async start(): Promise<void> {
    await Promise.all([...this.nodes.values()].map((n) => this.#startRuntime(n)));
    await this.clock.advance(20);
  }

  at(node: NodeId): ProcessNode {
    const n = this.nodes.get(node);
    if (n === undefined) throw new Error(`no node ${node}`);
    return n;
  }

  /** Sets node `node`'s view and tells its runtime. */
  setView(node: NodeId, members: NodeId[]): void {
    const n = this.at(node);
    n.view = [...members];
    n.runtime.onView(members);
  }

  /** Stops node `node`'s runtime and server, and starts a fresh one on a new connection. */
  async restart(node: NodeId): Promise<ProcessNode> {
    const old = this.at(node);
    await old.runtime.stop();
    old.server.stop();
    await old.transport.close();
    const fresh = this.#create(node, `node-${node}-r${++this.#incarnation}`, old.view);
    await this.#startRuntime(fresh);
    return fresh;
  }

  /** Kills node `node`'s host silently (no save, no goodbye); `restartCrashed` brings it back. */
  crash(node: NodeId): void {
    const n = this.at(node);
    this.network.crash(n.name);
    n.server.stop();
  }

  /** Starts a fresh runtime for a crashed node, from what its snapshot store kept. */
  async restartCrashed(node: NodeId): Promise<ProcessNode> {
    const old = this.at(node);
    const fresh = this.#create(node, `node-${node}-r${++this.#incarnation}`, old.view);
    await this.#startRuntime(fresh);
    return fresh;
  }

  /** A runtime knows only its own node until told its view: it starts with the test's. */
  #startRuntime(n: ProcessNode): Promise<void> {
    n.runtime.onView(n.view);
    return n.runtime.start();
  }

  /** A client request to node `dst`. */
  request(dst: NodeId, type: string, params: unknown): Promise<Rply> {
    return this.client.request(type, params, { dst });
  }

  #create(node: NodeId, name: string, view: NodeId[] = [...this.options.nodes]): ProcessNode {
    const servers = this.options.servers ?? 1;
    const transport = this.network.connect(name, { server: (node - 1 + servers) % servers });
    const clock = this.network.hostClock(name);
    const forward = async (rqst: Rqst, dst: NodeId): Promise<Rply> => {
      const subject = sub.nodeRqst(dst);
      const msg = await transport.request(subject, encode(rqst), { timeoutMs: 3_000 });
      const decoded = decode(msg.data, "cbor");
      if (!decoded.ok) throw new BadReplyError(subject, decoded.message);
      return rplySchema.parse(decoded.value);
    };
    const snapshots = this.options.snapshots?.(node);
    const entry: ProcessNode = { node, name, transport, view, runtime: undefined!, server: undefined! };
    const runtime = new ProcessRuntime({
      node,
      subjects: sub,
      transport,
      clock,
      logger: silentLogger,
      registry: this.options.registry?.(node) ?? testRegistry(),
      dcs: { nodesOf: (dcid) => this.options.dcs[dcid] },
      forwarder: { forward },
      incarnation: ++this.#incarnation,
      ...(snapshots ? { snapshots } : {}),
      ...(this.options.timings ? { timings: this.options.timings } : {}),
      ...this.options.runtime,
    });
    const server = new RequestServer({
      node,
      subjects: sub,
      transport,
      clock,
      logger: silentLogger,
      handlers: runtime.handlers(),
    });
    server.start();
    Object.assign(entry, { runtime, server });
    this.nodes.set(node, entry);
    return entry;
  }
}
