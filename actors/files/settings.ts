// What the file store of one node is given (SPEC 8): its settings, the window
// on the election it needs, and the node's transport, store and replicas. The
// roles (coordinator, active server, holder) and the FileService facade share it.
import type { ServerRecord } from "../../machines/server.js";
import type { FileAnswer } from "../../protocol/files.js";
import type { NodeId, ServerType } from "../../protocol/messages.js";
import type { Subjects } from "../../protocol/subjects.js";
import type { Clock } from "../../transport/clock.js";
import type { CasStore } from "../../transport/kv.js";
import type { Transport } from "../../transport/transport.js";
import type { Endpoints } from "../endpoints.js";
import type { Logger } from "../logger.js";
import type { FileMetrics } from "../metrics.js";
import type { CatalogWrites } from "./catalogWrites.js";
import type { ReplicaStore } from "./replicaStore.js";

export interface FileSettings {
  /** How many servers must hold a version on disk before SUCCESS (default 3). */
  readonly replicationFactor: number;
  /** Sessions (COMMIT, REPLICA, UPDATE, REPAIR) a server runs at once; one more is answered BUSY. */
  readonly maxSessions: number;
  /** Commits waiting for the same file at the coordinator; one more is EBUSY. */
  readonly maxQueuedPerFile: number;
  /** Largest file a COMMIT may carry. */
  readonly maxFileBytes: number;
  /** Timeout of one control message (COMMIT, REPLICA, UPDATE offer, catalog write). */
  readonly requestTimeoutMs: number;
  /** Timeout of one READ of one chunk. */
  readonly readTimeoutMs: number;
  /** READs a holder keeps in flight while it pulls a replica. */
  readonly readWindow: number;
  /** How often the coordinator checks every version for lost holders. */
  readonly repairEveryMs: number;
  /** A holder re-checks a replica's hash before serving it when it last did longer ago than this. */
  readonly verifyEveryMs: number;
}

export const defaultFileSettings = (): FileSettings => ({
  replicationFactor: 3,
  maxSessions: 8,
  maxQueuedPerFile: 16,
  maxFileBytes: 1024 * 1024 * 1024,
  requestTimeoutMs: 2_000,
  readTimeoutMs: 2_000,
  readWindow: 4,
  repairEveryMs: 5_000,
  verifyEveryMs: 60_000,
});

/** What the file store needs from the election: the term this node holds, the epoch it knows, the servers. */
export interface FileElection {
  state(): { readonly term: { readonly epoch: number } | null; readonly highestEpoch: number };
  servers(): Readonly<Record<string, ServerRecord>>;
  readonly timings: { readonly statusMs: number };
}

export interface FileServiceOptions {
  readonly self: NodeId;
  readonly serverType: ServerType;
  readonly subjects: Subjects;
  readonly transport: Transport;
  readonly store: CasStore;
  readonly replicas: ReplicaStore;
  readonly election: FileElection;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly settings?: Partial<FileSettings>;
  /** How the coordinator orders its writes of one file's record (default: one at a time per file). */
  readonly catalogWrites?: CatalogWrites;
  /** Where each operation's outcome is counted (default: nowhere). */
  readonly metrics?: FileMetrics;
  /** Where each COMMIT this coordinator answers is recorded (the action log, SPEC 6.4; default: nowhere). */
  readonly actions?: { commit(name: string, answer: FileAnswer): void };
  /** The node's public endpoints (`$SRV`): the `file.*` subjects are served and counted there. */
  readonly endpoints?: Endpoints;
  /** True while this node is in a minority (quorum mode): COMMIT is refused with EROFS (default: never). */
  readonly readOnly?: () => boolean;
}
