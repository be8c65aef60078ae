// The request side of a node as one subsystem (SPEC 5, 6.4): the request
// server that answers requests sent to this node, the replication server that
// multicasts `dst: ALL` requests and forwards others, the admin-signature check
// on requests other nodes pass on, and the action log of what came in here.
import type { ViewChange } from "../../machines/membership.js";
import { ReplayGuard, TrustedAdminKeys, verifyRqstAuth } from "../../protocol/adminSignature.js";
import type { NodeId, RequestType, Rqst } from "../../protocol/messages.js";
import type { Subjects } from "../../protocol/subjects.js";
import { type ActionLog, actionIds } from "../../transport/actionLog.js";
import type { Clock, Random } from "../../transport/clock.js";
import type { Transport } from "../../transport/transport.js";
import { ActionRecorder } from "../actionRecorder.js";
import type { Endpoints } from "../endpoints.js";
import type { Logger } from "../logger.js";
import type { RequestMetrics } from "../metrics.js";
import type { ReplicationServer } from "../replication.js";
import { type Outcome, type RequestHandlers, RequestServer } from "../requestServer.js";
import type { Subsystem } from "../subsystem.js";

export interface NodeRequestsOptions {
  readonly node: NodeId;
  readonly cluster: string;
  readonly subjects: Subjects;
  readonly transport: Transport;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Every request type this node serves, the other subsystems' merged. */
  readonly handlers: RequestHandlers;
  /** Refuses a request before its handler runs (ENOTINIT before DVSINIT). */
  readonly gate: (rqst: Rqst) => Outcome | undefined;
  /** Refuses a request that came in here before it is logged or passed on (a minority's EROFS in quorum mode). */
  readonly refuseFirst?: (rqst: Rqst) => Outcome | undefined;
  /** Built before this subsystem, since the others forward through it; started and stopped here. */
  readonly replication: ReplicationServer;
  /** Admin public nkeys (`U…`) whose signature a mutating request passed on between nodes must carry. */
  readonly adminKeys: readonly string[];
  /** Where the actions that come in on this node are written (SPEC 6.4); none when absent. */
  readonly actionLog?: ActionLog;
  /** Randomness for action ids. */
  readonly random: Random;
  /** Where every answer is counted (default: nowhere). */
  readonly metrics?: RequestMetrics;
  /** This node's host address (seed 001 `ipaddr`), on its answers to other nodes and in its reply records. */
  readonly addr?: string;
  /** The node's public endpoints (`$SRV`), where the request subjects are served and counted. */
  readonly endpoints?: Endpoints;
}

/** Longest a stopping node waits for the answers under way to go out. */
const DRAIN_ANSWERS_MS = 1_000;

/** Mutating requests addressed by (dcid, endpoint): a node forwards them to the process's host, whatever `dst` the admin signed. */
const PROCESS_ADDRESSED: ReadonlySet<RequestType> = new Set<RequestType>(["SETPRIV", "MIGRATE", "PROCEND"]);

export class NodeRequests implements Subsystem {
  readonly name = "requests";
  readonly replication: ReplicationServer;
  readonly #server: RequestServer;

  constructor(options: NodeRequestsOptions) {
    const { node, subjects, transport, clock, logger, actionLog } = options;
    this.replication = options.replication;
    this.#server = new RequestServer({
      node,
      subjects,
      transport,
      clock,
      logger,
      handlers: options.handlers,
      gate: options.gate,
      ...(options.refuseFirst ? { refuseFirst: options.refuseFirst } : {}),
      replication: options.replication,
      relayAuth: relayAuth(options),
      ...(options.metrics ? { metrics: options.metrics } : {}),
      ...(options.addr ? { addr: options.addr } : {}),
      ...(options.endpoints ? { endpoints: options.endpoints } : {}),
      ...(actionLog
        ? {
            actions: new ActionRecorder({
              log: actionLog,
              node,
              clock,
              logger,
              newId: actionIds(clock, options.random),
              ...(options.addr ? { addr: options.addr } : {}),
            }),
          }
        : {}),
    });
  }

  start(): void {
    this.replication.start();
    this.#server.start();
  }

  /** Takes no more requests, then answers what is under way (gathers, forwards, handlers) before the connection closes. */
  async stop(): Promise<void> {
    this.#server.stop();
    this.replication.stop();
    await this.#server.idle(DRAIN_ANSWERS_MS);
  }

  /**
   * Members that left no longer hold up a gather. Not on DVSEND (no change):
   * running gathers keep waiting for the members they expected, so a DVSEND
   * to ALL still hears from everyone.
   */
  onView(members: readonly NodeId[], change?: ViewChange): void {
    if (change) this.replication.view(members, change);
  }

  /** Takes requests sent to any node and other nodes' multicasts again (DVSINIT after DVSEND). */
  joinCluster(): void {
    this.#server.joinCluster();
  }

  /** Out of the DVS (DVSEND): only requests sent to this node are served. */
  leaveCluster(): void {
    this.#server.leaveCluster();
  }
}

/**
 * Checks the admin's signature on a mutating request another node passed on
 * (docs/security.md, property 3). A process's own SEND to a process on
 * another node is the one unsigned exception: a process messages others as
 * its proxy frames do.
 */
function relayAuth(options: NodeRequestsOptions): (rqst: Rqst) => ReturnType<typeof verifyRqstAuth> {
  const { clock, cluster, node } = options;
  const trustedKeys = new TrustedAdminKeys(options.adminKeys);
  const replay = new ReplayGuard();
  // The replay memory starts with this incarnation: nothing signed before it is taken.
  const notBefore = clock.now();
  return (rqst) => {
    if (rqst.type === "SEND" && typeof rqst.src === "string" && rqst.src.startsWith("proc:") && !rqst.auth)
      return { ok: true, key: "" };
    return verifyRqstAuth(rqst, {
      cluster,
      node,
      trustedKeys,
      now: clock.now(),
      replay,
      notBefore,
      anyNode: PROCESS_ADDRESSED.has(rqst.type),
    });
  };
}
