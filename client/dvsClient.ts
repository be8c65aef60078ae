// The client side of the protocol: builds RQSTs, sends them to one node or to
// the cluster, and validates the RPLY. Used by dvsctl, the benchmarks and tests;
// external tools may speak the same protocol with any NATS client.
import { monotonicFactory } from "ulid";
import { type AdminSigner, signRqst } from "../protocol/adminSignature.js";
import { type Encoding, encode, encodingOf, headersFor, parseRply } from "../protocol/codec.js";
import {
  ALL,
  isRequestType,
  MUTATING_TYPES,
  type NodeId,
  PROTOCOL_VERSION,
  type RequestType,
  type Role,
  type Rply,
  type RqstAuth,
  rcode,
} from "../protocol/messages.js";
import { type Subjects, subjects as subjectsOf } from "../protocol/subjects.js";
import { type Clock, type Random, randomToken, systemClock, systemRandom } from "../transport/clock.js";
import { BadReplyError } from "../transport/errors.js";
import type { Message, Transport } from "../transport/transport.js";
import { type HedgeOptions, hedgedRequest } from "./hedge.js";

const EEXIST = rcode("EEXIST");
const EHOSTDOWN = rcode("EHOSTDOWN");
const ETIMEDOUT = rcode("ETIMEDOUT");
/** Nodes remembered from replies, for hedges. */
const MAX_REMEMBERED_NODES = 256;

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
  /**
   * Signs every mutating request (MUTATING_TYPES) for `cluster`, so nodes serve
   * it even when another node passes it on (`ALL`, forwards); unsigned, only
   * the node it is sent to directly serves it.
   */
  readonly signer?: AdminSigner;
  /** The signatures' time (default: the system clock); in the simulation, the simulated one. */
  readonly clock?: Pick<Clock, "now">;
  /** The signatures' nonces and action ids (default: crypto.randomBytes). */
  readonly random?: Random;
  /**
   * Hedges requests sent to the cluster's queue subject (client/hedge.ts):
   * unacknowledged after `acceptMs`, the same request goes to one live node.
   * Off when absent.
   */
  readonly hedge?: ClientHedging;
}

export interface ClientHedging {
  /** Default 300 ms. */
  readonly acceptMs?: number;
  /**
   * The nodes believed alive (e.g. discovery), asked when a hedge is due;
   * the nodes of the last replies are tried after them.
   */
  readonly nodes?: () => readonly NodeId[] | Promise<readonly NodeId[]>;
  /** The accept deadlines' timers (default: the system clock). */
  readonly clock?: Pick<Clock, "setTimeout" | "clearTimeout">;
}

/** Nonce length: 22 base-36 characters, about 113 bits. */
const NONCE_LENGTH = 22;

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
  readonly #clock: Pick<Clock, "now">;
  readonly #random: Random;
  /** ULIDs, as nodes make them: a signed request names its action itself (see #signed). */
  readonly #actionId: (time: number) => string;
  /** Nodes that answered lately, newest last: where a hedge may go when nobody names better ones. */
  readonly #answered = new Set<NodeId>();

  constructor(
    readonly transport: Transport,
    readonly options: DvsClientOptions,
  ) {
    this.subjects = subjectsOf(options.cluster);
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? systemRandom;
    const random = this.#random;
    this.#actionId = monotonicFactory(() => random.next());
  }

  /** Sends one RQST and resolves with its validated RPLY; transport failures reject with named errors. */
  async request(type: RequestType | string, params: unknown = {}, send: SendOptions = {}): Promise<Rply> {
    const encoding = this.options.encoding ?? "cbor";
    const dst = send.dst ?? ALL;
    const anyNode = dst === ALL || send.viaAnyNode === true;
    const hedged = anyNode && this.options.hedge !== undefined;
    // A hedged change names its action, so the node that gets the second copy finds it in the log.
    const action =
      send.action ??
      (hedged && isRequestType(type) && MUTATING_TYPES.has(type)
        ? this.#actionId(Math.floor(this.#clock.now()))
        : undefined);
    const unsigned = {
      v: PROTOCOL_VERSION,
      type,
      src: this.options.clientId,
      dst,
      seq: ++this.#seq,
      ...(action !== undefined ? { action } : {}),
      ...(send.gatherTimeoutMs !== undefined ? { timeout: send.gatherTimeoutMs } : {}),
      params,
    };
    const rqst = this.#signed(unsigned);
    const subject = this.#subjectFor(dst, send.viaAnyNode === true);
    const headers = headersFor(encoding);
    const timeoutMs = send.timeoutMs ?? this.options.timeoutMs ?? 5_000;
    const data = encode(rqst, encoding);
    const msg = hedged
      ? await hedgedRequest(
          this.transport,
          { subject, data, headers, timeoutMs },
          this.#hedging(),
          (m) => this.#parse(subject, m).rcode === EEXIST,
        )
      : await this.transport.request(subject, data, { timeoutMs, ...(headers ? { headers } : {}) });
    const rply = this.#parse(subject, msg);
    this.#learn(rply);
    return rply;
  }

  #parse(subject: string, msg: Message): Rply {
    const parsed = parseRply(msg.data, encodingOf(msg), this.transport.maxPayload);
    if (!parsed.ok) throw new BadReplyError(subject, parsed.message);
    return parsed.rply;
  }

  /** Notes the nodes a reply shows alive: its sender and, for ALL, each entry that answered. */
  #learn(rply: Rply): void {
    const alive: NodeId[] = typeof rply.src === "number" ? [rply.src] : [];
    if (Array.isArray(rply.data))
      for (const e of rply.data as Partial<Rply>[])
        if (
          typeof e?.src === "number" &&
          typeof e.rcode === "number" &&
          e.rcode !== EHOSTDOWN &&
          e.rcode !== ETIMEDOUT
        )
          alive.push(e.src);
    for (const node of alive) {
      this.#answered.delete(node);
      this.#answered.add(node);
      if (this.#answered.size > MAX_REMEMBERED_NODES)
        this.#answered.delete(this.#answered.values().next().value as NodeId);
    }
  }

  #hedging(): HedgeOptions {
    const hedge = this.options.hedge as ClientHedging;
    return {
      ...(hedge.acceptMs !== undefined ? { acceptMs: hedge.acceptMs } : {}),
      clock: hedge.clock ?? systemClock,
      random: this.#random,
      targets: async () => {
        const named = hedge.nodes ? await hedge.nodes() : [];
        const nodes = [...new Set([...named, ...[...this.#answered].reverse()])];
        return nodes.map((n) =>
          this.options.role === "viewer" ? this.subjects.roNodeRqst(n) : this.subjects.nodeRqst(n),
        );
      },
    };
  }

  /**
   * The request with an admin signature when it is mutating and the client has
   * a signer; else as it is. A signed request names its action: the action id
   * is signed, so a node must not be left to give it one on the way.
   */
  #signed<R extends { type: string; dst: NodeId | typeof ALL; action?: string; params: unknown }>(
    rqst: R,
  ): R | (R & { action: string; auth: RqstAuth }) {
    const { signer, cluster } = this.options;
    const type = rqst.type.startsWith("RQST_") ? rqst.type.slice(5) : rqst.type;
    if (signer === undefined || !isRequestType(type) || !MUTATING_TYPES.has(type)) return rqst;
    const now = this.#clock.now();
    const action = rqst.action ?? this.#actionId(Math.floor(now));
    const nonce = randomToken(this.#random, NONCE_LENGTH);
    return signRqst({ ...rqst, action }, { cluster, signer, now, nonce });
  }

  #subjectFor(dst: NodeId | typeof ALL, viaAnyNode: boolean): string {
    const s = this.subjects;
    const anyNode = dst === ALL || viaAnyNode;
    if (this.options.role === "viewer") return anyNode ? s.roAnyRqst : s.roNodeRqst(dst as NodeId);
    return anyNode ? s.anyRqst : s.nodeRqst(dst as NodeId);
  }
}
