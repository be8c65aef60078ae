// What a node runtime (actors/node.ts) is given: its options (identity, timings,
// roles) and its components (the clock, the logger, the connection and the
// stores the daemon or the simulated cluster injects).

import type { ElectionTimings } from "../../machines/electionTimings.js";
import type { MembershipMachine, MembershipTimings } from "../../machines/membership.js";
import type { EventMessage, NodeId, RequestType, ServerType } from "../../protocol/messages.js";
import type { ActionLog } from "../../transport/actionLog.js";
import type { Clock, Random } from "../../transport/clock.js";
import type { CasStore } from "../../transport/kv.js";
import type { Transport } from "../../transport/transport.js";
import type { NodeIdentity, Registration } from "../discovery.js";
import type { Endpoints } from "../endpoints.js";
import type { CatalogWrites } from "../files/catalogWrites.js";
import type { FileSettings } from "../files/fileService.js";
import type { ReplicaStore } from "../files/replicaStore.js";
import type { Logger } from "../logger.js";
import type { MachineRegistry } from "../machineRegistry.js";
import type { NodeMetrics } from "../metrics.js";
import type { ProcessTimings } from "../processes/timings.js";
import type { QuorumGate, QuorumGateOptions } from "../quorumGate.js";
import type { RequestHandlers } from "../requestServer.js";

export interface NodeComponents<T extends Transport = Transport> {
  readonly clock: Clock;
  readonly logger: Logger;
  /** Opens this node's connection. */
  readonly connect: (identity: NodeIdentity) => Promise<T>;
  /** Announces the node for discovery (NATS micro service), with the public endpoints it serves; optional. */
  readonly register?: (transport: T, identity: NodeIdentity, endpoints: Endpoints) => Promise<Registration>;
  /** The next incarnation of this node, persisted; used when the cluster declared this one down. */
  readonly nextIncarnation?: () => number;
  /** Receives every view change this node observes, in order (the event scripts). */
  readonly onViewChange?: (event: EventMessage) => void;
  /** The process id reported by `dvsctl members`. */
  readonly pid?: number;
  /** Where the DVS and DC tables and process snapshots persist; memory only when absent. */
  readonly stateDir?: string;
  /** The machines processes can be spawned from (default: the example machines). */
  readonly registry?: MachineRegistry;
  /** The action log this node writes the actions that come in on it to (SPEC 6.4); none when absent. */
  readonly actionLog?: (transport: T) => ActionLog;
  /** Randomness for action ids (default: the system's). */
  readonly random?: Random;
  /** Handlers for the host group (PS, KILL, COMMAND…); ENOSYS for them when absent. */
  readonly hostHandlers?: RequestHandlers;
  /** The store the registry's coordinator record lives in (SPEC 7); no election runs when absent. */
  readonly coordinatorStore?: (transport: T) => CasStore;
  /** Where this server keeps file replicas (SPEC 8); the file store runs when this and the election do. */
  readonly replicas?: () => ReplicaStore;
  /** How the file coordinator orders its writes of one file's record (default CatalogWrites; tests plant bugs with it). */
  readonly catalogWrites?: () => CatalogWrites;
  /** Where the node's parts count what they do (the daemon's Prometheus metrics); nowhere when absent. */
  readonly metrics?: NodeMetrics;
  /** Makes the gate that acts on the minority mark (default `new QuorumGate(options)`; tests plant bugs with it). */
  readonly quorumGate?: (options: QuorumGateOptions) => QuorumGate;
}

export interface NodeOptions {
  readonly node: NodeId;
  readonly cluster: string;
  readonly incarnation: number;
  /** Handlers added to (or replacing) the built-in ones, by request type. */
  readonly handlers?: RequestHandlers;
  /** How long a forwarded or `dst: ALL` request waits for answers when it names no timeout. */
  readonly requestTimeoutMs?: number;
  readonly timings?: MembershipTimings;
  readonly processTimings?: Partial<ProcessTimings>;
  readonly quorum?: boolean;
  /** In quorum mode, the request types a minority refuses with EROFS (default DEFAULT_MINORITY_REFUSES). */
  readonly minorityRefuses?: readonly RequestType[];
  /** The membership machine to run (tests pass mutated ones). */
  readonly membershipMachine?: MembershipMachine;
  /** This node's server role and the election's timings (defaults: active, a 400 ms lease). */
  readonly election?: { readonly serverType?: ServerType; readonly timings?: ElectionTimings };
  /** The file store's settings (replication factor, sessions, timeouts). */
  readonly files?: Partial<FileSettings>;
  /** Admin public nkeys (`U…`) whose signature a mutating request passed on between nodes must carry. */
  readonly adminKeys?: readonly string[];
  /** This node's host address (seed 001 `ipaddr`): on its answers to other nodes and its action records. */
  readonly addr?: string;
}
