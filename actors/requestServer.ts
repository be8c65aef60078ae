// The request server of a node: takes RQSTs on the node's own subject, on the
// cluster's queue subject and from other nodes' multicasts, validates them and
// answers one RPLY in the requester's encoding. A request for this node goes to
// the handler of its type (after the gate: ENOTINIT before DVSINIT); `dst: ALL`
// and requests for another node go to the replication server. Bad input is
// answered with an error code and logged with a throttle; nothing a requester
// sends can throw out of here.

import {
  type Encoding,
  encode,
  errorRply,
  headersFor,
  makeRply,
  parseRqst,
  rplyError,
} from "../protocol/codec.js";
import { ACK_NODE_HEADER, ACK_REQUEST_HEADER, ACK_STATUS, ACK_STATUS_HEADER } from "../protocol/hedging.js";
import {
  ALL,
  type ErrorName,
  MUTATING_TYPES,
  type NodeId,
  type RequestType,
  type Role,
  type Rply,
  type Rqst,
  UNICAST_ONLY_TYPES,
} from "../protocol/messages.js";
import { Responder } from "../protocol/responder.js";
import type { Subjects } from "../protocol/subjects.js";
import type { Clock } from "../transport/clock.js";
import { header, type Message, type Subscription, type Transport } from "../transport/transport.js";
import type { ActionRecorder, ActionRqst } from "./actionRecorder.js";
import { type EndpointSpec, type Endpoints, publicEndpoints, serveEndpoint } from "./endpoints.js";
import { type Logger, throttledWarn } from "./logger.js";
import type { RequestMetrics, RequestSource } from "./metrics.js";
import type { ReplicationServer } from "./replication.js";
import { RequestBudget } from "./requestBudget.js";

/** What a handler answers: a result code (0, a positive result, or a negative error) and data. */
export type Outcome =
  | {
      readonly rcode: number;
      readonly data?: unknown;
      /** Runs once the reply is on its way (DVSEND leaves the view only after answering). */
      readonly afterReply?: () => void;
    }
  | { readonly error: ErrorName; readonly message: string };

export type RequestHandler = (rqst: Rqst) => Outcome | Promise<Outcome>;
export type RequestHandlers = Partial<{ [T in RequestType]: RequestHandler }>;

export interface RequestServerOptions {
  readonly node: NodeId;
  readonly subjects: Subjects;
  readonly transport: Transport;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly handlers: RequestHandlers;
  /** Refuses a request before its handler runs (ENOTINIT before DVSINIT); undefined lets it through. */
  readonly gate?: (rqst: Rqst) => Outcome | undefined;
  /** Refuses an admin's request that came in here before it is logged, gathered or passed on (quorum mode's EROFS). */
  readonly refuseFirst?: (rqst: Rqst) => Outcome | undefined;
  /** Multicasts `dst: ALL` and forwards requests for other nodes; without it those are EINVAL. */
  readonly replication?: ReplicationServer;
  /** Logs the actions that come in on this node (SPEC 6.4); without it nothing is logged. */
  readonly actions?: ActionRecorder;
  /** What each role may cost this node (rate, ALL gathers in flight); defaults when absent. */
  readonly budget?: RequestBudget;
  /** Longest gather or forward timeout a requester may ask for, by role; longer ones are cut to it. */
  readonly maxTimeoutMs?: Readonly<Record<Role, number>>;
  /**
   * Checks the admin's proof on a mutating request another node passed on
   * (forward, multicast): only a request that carries it is served. Without
   * it every such request is EPERM; a mutating request is then served only
   * when it came in on a subject only admins may publish to.
   */
  readonly relayAuth?: (rqst: Rqst) => RelayVerdict;
  /** Where every answer is counted, with its latency (default: nowhere). */
  readonly metrics?: RequestMetrics;
  /** The node's public endpoints (`$SRV`): the public subjects are served and counted there. */
  readonly endpoints?: Endpoints;
  /** This node's host address, put on its answers to other nodes (the action log's `addr`). */
  readonly addr?: string;
}

/** Whether a relayed mutating request carries a valid admin proof. */
export type RelayVerdict = { readonly ok: true } | { readonly ok: false; readonly message: string };

/** Default `RequestServerOptions.maxTimeoutMs`. */
export const DEFAULT_MAX_TIMEOUT_MS: Readonly<Record<Role, number>> = { viewer: 30_000, admin: 120_000 };

export interface RequestServerStats {
  received: number;
  answered: number;
  rejected: number;
  failed: number;
}

export class RequestServer {
  readonly stats: RequestServerStats = { received: 0, answered: 0, rejected: 0, failed: 0 };
  readonly #options: RequestServerOptions;
  readonly #warn: ReturnType<typeof throttledWarn>;
  readonly #responder: Responder;
  readonly #budget: RequestBudget;
  #subscriptions: Subscription[] = [];
  #clusterSubscriptions: Subscription[] = [];
  /** Answers still to be sent (handlers, gathers and forwards under way). */
  readonly #inflight = new Set<Promise<unknown>>();

  constructor(options: RequestServerOptions) {
    this.#options = options;
    this.#warn = throttledWarn(options.logger, options.clock);
    this.#responder = new Responder(options.transport);
    this.#budget = options.budget ?? new RequestBudget(options.clock);
  }

  start(): void {
    const { transport, subjects, node } = this.#options;
    const specs = publicEndpoints(subjects, node);
    this.#subscriptions = [
      this.#endpoint(specs.nodeRqst, (msg) => this.#serve(msg, "public")),
      this.#endpoint(specs.roNodeRqst, (msg) => this.#serve(msg, "readonly")),
      transport.subscribe(subjects.forward(node), (msg) => this.#serve(msg, "forward")),
    ];
    this.joinCluster();
  }

  /** Takes requests sent to any node and other nodes' multicasts (while the node is in the DVS). */
  joinCluster(): void {
    if (this.#clusterSubscriptions.length > 0) return;
    const { transport, subjects, node } = this.#options;
    const specs = publicEndpoints(subjects, node);
    this.#clusterSubscriptions = [
      this.#endpoint(specs.rqst, (msg) => this.#serve(msg, "public")),
      this.#endpoint(specs.roRqst, (msg) => this.#serve(msg, "readonly")),
      // Another node's replication server asks every node: serve it here, whatever its dst.
      transport.subscribe(subjects.multicast, (msg) => this.#serve(msg, "multicast")),
    ];
  }

  /**
   * Out of the DVS (DVSEND): only the node's own subject is served, and an ALL
   * request sent there is answered by this node alone.
   */
  leaveCluster(): void {
    for (const sub of this.#clusterSubscriptions) sub.unsubscribe();
    this.#clusterSubscriptions = [];
  }

  stop(): void {
    this.leaveCluster();
    for (const sub of this.#subscriptions) sub.unsubscribe();
    this.#subscriptions = [];
  }

  #endpoint(spec: EndpointSpec, handler: (msg: Message) => void): Subscription {
    return serveEndpoint(this.#options.transport, this.#options.endpoints, spec, handler);
  }

  /** The gather subject of some node: where multicast answers go (replication.ts). */
  readonly #isGatherSubject = (reply: string): boolean => {
    const id = Number(reply.slice(reply.lastIndexOf(".") + 1));
    return Number.isInteger(id) && id >= 0 && id <= 65_535 && this.#options.subjects.gather(id) === reply;
  };

  #serve(msg: Message, source: Source): void {
    this.stats.received++;
    const { node, clock, metrics } = this.#options;
    // Only a node that measures reads the clock for each request.
    const served: Served = { source, at: metrics ? clock.now() : 0 };
    // A reply subject outside the inbox namespace would make this node publish,
    // with its own rights, wherever the requester chose: the request is dropped unserved.
    if (msg.reply !== undefined && !this.#acceptsReply(msg, source)) {
      this.stats.rejected++;
      this.#warn(
        "reply-subject",
        { subject: msg.subject, reply: msg.reply.slice(0, 200) },
        "dropped a request whose reply subject is not an inbox",
      );
      return;
    }
    // A hedging client asks to hear at once that a live node has its request (client/hedge.ts).
    if (msg.reply !== undefined && (source === "public" || source === "readonly")) this.#acknowledge(msg);
    const parsed = parseRqst(msg);
    if (!parsed.ok) {
      this.stats.rejected++;
      this.#warn(
        `bad:${parsed.error}`,
        { subject: msg.subject, error: parsed.error, reason: parsed.message, bytes: msg.data.byteLength },
        "rejected a request",
      );
      this.#answer(
        msg,
        parsed.encoding,
        errorRply(parsed.partial, node, parsed.error, parsed.message, parsed.issues),
        served,
      );
      return;
    }
    const { encoding } = parsed;
    // Object.assign, not `{ ...parsed.rqst, role }`: V8 makes the spread with an added key a slow
    // object, and this path ran about 5 µs a request faster without it (bench/README.md, rqst-latency).
    let rqst: Rqst = Object.assign({}, parsed.rqst, { role: roleFor(source, parsed.rqst.role) });
    // Only the node a request comes in on logs it; requests passed on between nodes are not actions again.
    const fromOutside = source === "public" || source === "readonly";
    let release = () => {};
    if (fromOutside) {
      // A viewer's mutating request is refused by every node before it runs: it holds no gather slot,
      // so it is answered EPERM (not EBUSY) however many are in flight; the rate still counts it.
      const refusedEverywhere = rqst.role === "viewer" && MUTATING_TYPES.has(rqst.type);
      const admission = this.#budget.admit(rqst.role ?? "viewer", rqst.dst === ALL && !refusedEverywhere);
      if (!admission.ok) {
        this.stats.rejected++;
        this.#warn(
          `budget:${rqst.role}`,
          { type: rqst.type, error: admission.error },
          "refused a request over budget",
        );
        this.#answer(msg, encoding, errorRply(rqst, node, admission.error, admission.message), served);
        return;
      }
      release = admission.release;
      const max = (this.#options.maxTimeoutMs ?? DEFAULT_MAX_TIMEOUT_MS)[rqst.role ?? "viewer"];
      if (rqst.timeout !== undefined && rqst.timeout > max) rqst = { ...rqst, timeout: max };
    } else if (MUTATING_TYPES.has(rqst.type)) {
      const verdict = this.#options.relayAuth?.(rqst) ?? {
        ok: false,
        message: "this node trusts no admin key, so it serves no mutating request passed on by another node",
      };
      if (!verdict.ok) {
        this.stats.rejected++;
        this.#warn(
          "relay-auth",
          { type: rqst.type, src: rqst.src, reason: verdict.message },
          "refused a relayed request",
        );
        this.#answer(
          msg,
          encoding,
          errorRply(rqst, node, "EPERM", `${rqst.type} passed on by another node: ${verdict.message}`),
          served,
        );
        return;
      }
    }
    const first = fromOutside && rqst.role === "admin" ? this.#options.refuseFirst?.(rqst) : undefined;
    if (first) {
      this.#answer(msg, encoding, toRply(rqst, node, first), served);
      release();
      return;
    }
    const recorder = fromOutside ? this.#options.actions : undefined;
    const action = recorder?.actionOf(rqst);
    if (recorder && action) {
      // A signed request covers the action id it was sent with: one this node names is not passed on.
      const relayed = rqst.auth !== undefined && rqst.action === undefined ? rqst : action;
      this.#track(this.#serveAction(msg, encoding, recorder, action, relayed, served).finally(release));
      return;
    }
    // Most requests are answered synchronously; only those that wait for something are tracked.
    const request = rqst;
    const resolved = this.#resolve(request, source);
    if (resolved instanceof Promise)
      this.#track(resolved.then((r) => this.#send(msg, encoding, request, r, served)).finally(release));
    else {
      this.#send(msg, encoding, request, resolved, served);
      release();
    }
  }

  #acknowledge(msg: Message): void {
    if (header(msg, ACK_REQUEST_HEADER) !== "1") return;
    try {
      this.#responder.answer(msg, EMPTY, {
        headers: { [ACK_STATUS_HEADER]: ACK_STATUS, [ACK_NODE_HEADER]: String(this.#options.node) },
      });
    } catch (error) {
      this.#warn("ack", { err: error }, "could not acknowledge a request");
    }
  }

  #acceptsReply(msg: Message, source: Source): boolean {
    return this.#responder.accepts(msg, source === "multicast" ? this.#isGatherSubject : undefined);
  }

  #send(msg: Message, encoding: Encoding, rqst: Rqst, { rply, afterReply }: Resolved, served: Served): void {
    this.#answer(msg, encoding, rply, served);
    this.#runAfterReply(rqst, afterReply);
  }

  /** An action: logged before it runs, and its replies and outcome before the requester hears of them. */
  async #serveAction(
    msg: Message,
    encoding: Encoding,
    recorder: ActionRecorder,
    rqst: ActionRqst,
    relayed: Rqst,
    served: Served,
  ): Promise<void> {
    const { node, clock } = this.#options;
    const startedAt = clock.now();
    const begun = await recorder.begin(rqst);
    if (begun === "refused" || begun === "exists") {
      const refusal =
        begun === "refused"
          ? errorRply(rqst, node, "EAGAIN", "the action log cannot be written: nothing was changed")
          : errorRply(rqst, node, "EEXIST", `action ${rqst.action} is already in the log: name a new one`);
      this.#answer(msg, encoding, refusal, served);
      return;
    }
    const resolved = await this.#resolve(relayed, served.source);
    // The reply names its action only once the whole action (request, replies, outcome) is in the log.
    if (begun === "logged" && (await recorder.end(rqst, resolved.rply, startedAt))) {
      this.#send(
        msg,
        encoding,
        rqst,
        { ...resolved, rply: { ...resolved.rply, action: rqst.action } },
        served,
      );
    } else this.#send(msg, encoding, rqst, resolved, served);
  }

  /** Works out the reply: refused, gathered from every member, forwarded, or served here. */
  #resolve(rqst: Rqst, source: Source): Resolved | Promise<Resolved> {
    const { node, replication } = this.#options;
    // Requests other nodes pass on (multicast, forward) are served here, whatever their dst.
    const passedOn = source === "multicast" || source === "forward";
    try {
      if (rqst.dst === ALL && UNICAST_ONLY_TYPES.has(rqst.type)) {
        // One refusal for the whole request, not an entry per member (docs/requests.md section 3):
        // a viewer is told it may not send the type at all, an admin where to send it.
        const refused = viewerRefusal(rqst) ?? {
          error: "EINVAL",
          message: `${rqst.type} acts on ${rqst.type === "KILL" ? "one pid of one host" : "one process"}: send it to one node, not ALL`,
        };
        return { rply: toRply(rqst, node, refused) };
      }
      if (!passedOn && rqst.dst === ALL && replication) {
        if (this.#clusterSubscriptions.length > 0)
          return replication.gather(rqst).then(
            (rply) => ({ rply }),
            (error: unknown) => this.#failed(rqst, error),
          );
        // Out of the DVS: this node's own answer is the one entry.
        return this.#local(rqst, (outcome) => {
          const entry = toRply(rqst, node, outcome);
          return {
            rply: makeRply(rqst, node, Math.min(entry.rcode, 0), [entry]),
            afterReply: afterReplyOf(outcome),
          };
        });
      }
      if (!passedOn && rqst.dst !== ALL && rqst.dst !== node) {
        if (!replication) {
          return { rply: errorRply(rqst, node, "EINVAL", `dst ${rqst.dst} is not this node (${node})`) };
        }
        return replication.forward(rqst, rqst.dst).then(
          (rply) => ({ rply }),
          (error: unknown) => this.#failed(rqst, error),
        );
      }
      return this.#local(rqst, (outcome) => ({
        rply: toRply(rqst, node, outcome),
        afterReply: afterReplyOf(outcome),
      }));
    } catch (error) {
      return this.#failed(rqst, error);
    }
  }

  /** Serves `rqst` here; synchronously when its handler is synchronous. */
  #local(rqst: Rqst, reply: (outcome: Outcome) => Resolved): Resolved | Promise<Resolved> {
    const outcome = this.serveLocal(rqst);
    if (!(outcome instanceof Promise)) return reply(outcome);
    return outcome.then(reply, (error: unknown) => this.#failed(rqst, error));
  }

  #failed(rqst: Rqst, error: unknown): Resolved {
    this.stats.failed++;
    this.#options.logger.error(
      { err: error, type: rqst.type, seq: rqst.seq, src: rqst.src },
      "request handler failed",
    );
    return { rply: errorRply(rqst, this.#options.node, "EINVAL", "the request failed on the node") };
  }

  #runAfterReply(rqst: Rqst, afterReply: (() => void) | undefined): void {
    if (!afterReply) return;
    try {
      afterReply();
    } catch (error) {
      this.#options.logger.error({ err: error, type: rqst.type }, "after-reply step failed");
    }
  }

  #track(answered: Promise<unknown>): void {
    this.#inflight.add(answered);
    void answered.finally(() => this.#inflight.delete(answered));
  }

  /** Resolves once every answer under way has been sent, or after `timeoutMs`. */
  async idle(timeoutMs: number): Promise<void> {
    if (this.#inflight.size === 0) return;
    const { clock } = this.#options;
    let timer: ReturnType<Clock["setTimeout"]> | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = clock.setTimeout(resolve, timeoutMs);
    });
    await Promise.race([Promise.allSettled([...this.#inflight]), deadline]);
    clock.clearTimeout(timer);
  }

  /** Serves a request on this node: the role check, the gate, then the handler of its type. */
  serveLocal(rqst: Rqst): Outcome | Promise<Outcome> {
    const forbidden = viewerRefusal(rqst);
    if (forbidden) return forbidden;
    const refused = this.#options.gate?.(rqst);
    if (refused) return refused;
    const handler = this.#options.handlers[rqst.type];
    if (!handler) return { error: "ENOSYS", message: `${rqst.type} is not implemented by this node` };
    return handler(rqst);
  }

  #answer(msg: Message, encoding: Encoding, own: Rply, served: Served): void {
    const { transport, node, metrics, clock, addr } = this.#options;
    const passedOn = served.source === "multicast" || served.source === "forward";
    const rply = addr !== undefined && passedOn && own.src === node ? { ...own, addr } : own;
    if (metrics) metrics.requestAnswered(rply.type, rply.rcode, served.source, clock.now() - served.at);
    if (!msg.reply) return;
    const headers = headersFor(encoding);
    try {
      let bytes: Uint8Array;
      try {
        bytes = encode(rply, encoding);
      } catch (error) {
        // A handler's data the encoding cannot carry (a cycle, a BigInt in JSON): the requester still hears.
        this.#warn("encode-reply", { err: error, type: rply.type }, "could not encode a reply");
        bytes = encode(
          errorRply(
            { type: rply.type, src: rply.dst, seq: rply.seq },
            node,
            "EBADMSG",
            "the reply could not be encoded",
          ),
          encoding,
        );
      }
      if (bytes.byteLength > transport.maxPayload) {
        const tooLarge = errorRply(
          { type: rply.type, src: rply.dst, seq: rply.seq },
          node,
          "EMSGSIZE",
          `reply of ${bytes.byteLength} bytes exceeds the transport limit of ${transport.maxPayload}`,
        );
        bytes = encode(tooLarge, encoding);
      }
      const sent = this.#responder.answer(msg, bytes, {
        ...(headers ? { headers } : {}),
        ...(served.source === "multicast" ? { alsoAllow: this.#isGatherSubject } : {}),
      });
      if (sent === "sent") this.stats.answered++;
    } catch (error) {
      this.#warn("reply", { err: error, reply: msg.reply }, "could not send a reply");
    }
    this.#options.endpoints?.answered(msg.reply, rply.rcode < 0 ? rplyError(rply) : undefined);
  }
}

const EMPTY = new Uint8Array(0);

/** A request's reply, and what runs once it is on its way. */
interface Resolved {
  readonly rply: Rply;
  readonly afterReply?: (() => void) | undefined;
}

function afterReplyOf(outcome: Outcome): (() => void) | undefined {
  return "afterReply" in outcome ? outcome.afterReply : undefined;
}

/** Where a request came in: a public subject (full or read-only), or passed on by another node. */
type Source = RequestSource;

/** Where and when a request came in: its answer is counted with its latency. */
interface Served {
  readonly source: Source;
  readonly at: number;
}

/**
 * The requester's role. The subject decides for requests from outside; a role
 * in the RQST itself counts only on the internal subjects, which only nodes
 * (and admins) may publish to, so a viewer cannot claim more than it has.
 */
function roleFor(source: Source, claimed: Role | undefined): Role {
  if (source === "readonly") return "viewer";
  if (source === "public") return "admin";
  return claimed ?? "admin";
}

/** EPERM for a viewer's mutating request, wherever it is addressed. */
function viewerRefusal(rqst: Rqst): Outcome | undefined {
  if (rqst.role !== "viewer" || !MUTATING_TYPES.has(rqst.type)) return undefined;
  return { error: "EPERM", message: `${rqst.type} changes the node or its host: viewers may not send it` };
}

function toRply(rqst: Rqst, node: NodeId, outcome: Outcome): Rply {
  if ("error" in outcome) return errorRply(rqst, node, outcome.error, outcome.message);
  return makeRply(rqst, node, outcome.rcode, outcome.data ?? null);
}
