// The client side of the protocol: builds RQSTs, sends them to one node or to
// the cluster, and validates the RPLY. Used by dvsctl, the benchmarks and tests;
// external tools may speak the same protocol with any NATS client.
import { type Encoding, encode, encodingOf, headersFor, parseRply } from "./codec.js";
import { BadReplyError } from "./errors.js";
import { ALL, type NodeId, PROTOCOL_VERSION, type RequestType, type Role, type Rply } from "./protocol.js";
import { type Subjects, subjects as subjectsOf } from "./subjects.js";
import type { Transport } from "./transport.js";

export interface DvsClientOptions {
  readonly cluster: string;
  /** The requester's id (`src`): a node id, or a tool's client id. */
  readonly clientId: NodeId | string;
  readonly encoding?: Encoding;
  readonly timeoutMs?: number;
  /**
   * `viewer` sends to the read-only subjects (all the `viewer` user of nats.conf
   * may publish to); `admin`, the default, to the full ones.
   */
  readonly role?: Role;
}

export interface SendOptions {
  /** A node id, or ALL; default ALL through the cluster's queue subject. */
  readonly dst?: NodeId | typeof ALL;
  /** Send through the cluster's queue subject even to one node (any node takes it and forwards it). */
  readonly viaAnyNode?: boolean;
  readonly timeoutMs?: number;
  /** How long the answering node may gather members' answers (RQST `timeout`); node default when absent. */
  readonly gatherTimeoutMs?: number;
  readonly action?: string;
}

export class DvsClient {
  readonly subjects: Subjects;
  #seq = 0;

  constructor(
    readonly transport: Transport,
    readonly options: DvsClientOptions,
  ) {
    this.subjects = subjectsOf(options.cluster);
  }

  /** Sends one RQST and resolves with its validated RPLY; transport failures reject with named errors. */
  async request(type: RequestType | string, params: unknown = {}, send: SendOptions = {}): Promise<Rply> {
    const encoding = this.options.encoding ?? "cbor";
    const dst = send.dst ?? ALL;
    const rqst = {
      v: PROTOCOL_VERSION,
      type,
      src: this.options.clientId,
      dst,
      seq: ++this.#seq,
      ...(send.action !== undefined ? { action: send.action } : {}),
      ...(send.gatherTimeoutMs !== undefined ? { timeout: send.gatherTimeoutMs } : {}),
      params,
    };
    const subject = this.#subjectFor(dst, send.viaAnyNode === true);
    const headers = headersFor(encoding);
    const msg = await this.transport.request(subject, encode(rqst, encoding), {
      timeoutMs: send.timeoutMs ?? this.options.timeoutMs ?? 5_000,
      ...(headers ? { headers } : {}),
    });
    const parsed = parseRply(msg.data, encodingOf(msg), this.transport.maxPayload);
    if (!parsed.ok) throw new BadReplyError(subject, parsed.message);
    return parsed.rply;
  }

  #subjectFor(dst: NodeId | typeof ALL, viaAnyNode: boolean): string {
    const s = this.subjects;
    const anyNode = dst === ALL || viaAnyNode;
    if (this.options.role === "viewer") return anyNode ? s.roAnyRqst : s.roNodeRqst(dst as NodeId);
    return anyNode ? s.anyRqst : s.nodeRqst(dst as NodeId);
  }
}
