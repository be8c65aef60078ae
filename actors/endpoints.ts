// The node's public endpoints: each public subject it serves (requests, the
// registry, the file store), subscribed through the Transport, listed while
// subscribed and counted per endpoint: requests, errors (answers that report
// one) and processing time until the answer is sent, async work included.
// The `$SRV` service (actors/discovery.ts) publishes this list and these counts.
import type { NodeId } from "../protocol/messages.js";
import { isInboxReply } from "../protocol/responder.js";
import { QUEUE_GROUP, type Subjects } from "../protocol/subjects.js";
import type { Clock } from "../transport/clock.js";
import type { Message, MessageHandler, Subscription, Transport } from "../transport/transport.js";

/** One public subject a node serves, as `$SRV.INFO` lists it. */
export interface EndpointSpec {
  /** A name unique in the node: letters, digits, `-` and `_`. */
  readonly name: string;
  readonly subject: string;
  /** The queue group it is served in; absent for a subject only this node serves. */
  readonly queue?: string;
  readonly metadata?: Readonly<Record<string, string>>;
}

/**
 * Every public subject a node may serve, by what serves it: the request
 * server, the registry, the file store (the first three file subjects only
 * while the node coordinates). docs/protocol.md section 8 lists them.
 */
export function publicEndpoints(subjects: Subjects, node: NodeId) {
  const queue = QUEUE_GROUP;
  const request = (role: string) => ({ kind: "request", role });
  return {
    rqst: { name: "rqst", subject: subjects.anyRqst, queue, metadata: request("admin") },
    nodeRqst: { name: "node-rqst", subject: subjects.nodeRqst(node), metadata: request("admin") },
    roRqst: { name: "ro-rqst", subject: subjects.roAnyRqst, queue, metadata: request("viewer") },
    roNodeRqst: { name: "ro-node-rqst", subject: subjects.roNodeRqst(node), metadata: request("viewer") },
    dnsWho: { name: "dns-who", subject: subjects.dnsWho, queue, metadata: { kind: "registry" } },
    dnsNodeWho: { name: "dns-node-who", subject: subjects.nodeDnsWho(node), metadata: { kind: "registry" } },
    dnsFailed: { name: "dns-failed", subject: subjects.dnsFailed, queue, metadata: { kind: "registry" } },
    fileCommit: { name: "file-commit", subject: subjects.fileCommit, queue, metadata: { kind: "file" } },
    fileUpdate: { name: "file-update", subject: subjects.fileUpdate, queue, metadata: { kind: "file" } },
    fileLs: { name: "file-ls", subject: subjects.fileLs, queue, metadata: { kind: "file" } },
    fileRead: { name: "file-read", subject: subjects.fileRead(node), metadata: { kind: "file" } },
  } satisfies Record<string, EndpointSpec>;
}

/** Subscribes through `endpoints` when there are some (a node), else straight on the transport (a bare component in a test). */
export function serveEndpoint(
  transport: Transport,
  endpoints: Endpoints | undefined,
  spec: EndpointSpec,
  handler: MessageHandler,
): Subscription {
  if (endpoints) return endpoints.serve(spec, handler);
  return transport.subscribe(
    spec.subject,
    handler,
    spec.queue !== undefined ? { queue: spec.queue } : undefined,
  );
}

/** An endpoint's counters since the node started (they survive re-registrations of the service). */
export interface EndpointCounters {
  /** Messages handled: answered, or without a reply subject and handed to the server. */
  requests: number;
  /** Answers that report an error (a negative rcode, an ERROR), and messages dropped unanswered. */
  errors: number;
  /** Total time from arrival to answer, in nanoseconds. */
  processingNs: number;
  /** The last error's name and reason. */
  lastError: string | undefined;
  /** Messages received and not answered yet. */
  inFlight: number;
}

export interface EndpointsOptions {
  readonly transport: Transport;
  /** Measures processing time (ms, fractions kept: the daemon's monotonic clock reads microseconds). */
  readonly clock: Clock;
  /** Calls waiting for their answer at most (older ones are counted as errors when more arrive). */
  readonly maxPending?: number;
  /** A call not answered after this long is counted as an error (default 10 min, the longest request timeout). */
  readonly abandonAfterMs?: number;
}

interface Call {
  readonly endpoint: Served;
  readonly at: number;
}

interface Served {
  readonly spec: EndpointSpec;
  readonly counters: EndpointCounters;
  /** Subscriptions open on it (a component may subscribe more than once). */
  open: number;
}

/**
 * The endpoints a node serves. A component subscribes a public subject with
 * `serve` instead of `transport.subscribe` and reports each answer with
 * `answered(reply, error)` when it sends it: a call is keyed by its reply
 * subject, so work handed to other actors is timed until it is answered.
 */
export class Endpoints {
  readonly #o: EndpointsOptions;
  readonly #served = new Map<string, Served>();
  /** Calls waiting for their answer, by reply subject (oldest first), in arrival order overall. */
  readonly #pending = new Map<string, Call[]>();
  #pendingCount = 0;
  readonly #listeners = new Set<() => void>();

  constructor(options: EndpointsOptions) {
    this.#o = options;
  }

  /** Subscribes `handler` to the endpoint's subject, in its queue group; the endpoint is listed while subscribed. */
  serve(spec: EndpointSpec, handler: MessageHandler): Subscription {
    let served = this.#served.get(spec.name);
    if (served === undefined) {
      served = { spec, counters: emptyCounters(), open: 0 };
      this.#served.set(spec.name, served);
    } else if (served.spec.subject !== spec.subject || served.spec.queue !== spec.queue) {
      throw new Error(`endpoint ${spec.name} is already served on ${served.spec.subject}`);
    }
    const endpoint = served;
    const sub = this.#o.transport.subscribe(
      spec.subject,
      (msg) => this.#arrived(endpoint, msg, handler),
      spec.queue !== undefined ? { queue: spec.queue } : undefined,
    );
    endpoint.open++;
    if (endpoint.open === 1) this.#changed();
    let open = true;
    return {
      subject: sub.subject,
      unsubscribe: () => {
        sub.unsubscribe();
        if (!open) return;
        open = false;
        endpoint.open--;
        if (endpoint.open === 0) this.#changed();
      },
    };
  }

  /**
   * The answer to the message that came with reply subject `reply` is being
   * sent: its call is counted, as an error when `error` names one. A reply
   * subject of no call (another node's, a peer's) is ignored.
   */
  answered(reply: string | undefined, error?: string): void {
    if (reply === undefined) return;
    const calls = this.#pending.get(reply);
    const call = calls?.shift();
    if (call === undefined) return;
    if (calls?.length === 0) this.#pending.delete(reply);
    this.#pendingCount--;
    this.#count(call, error);
  }

  /** The endpoints served now, in the order they were first served. */
  list(): EndpointSpec[] {
    return [...this.#served.values()].filter((s) => s.open > 0).map((s) => s.spec);
  }

  /** An endpoint's counters (zero for one never served). */
  counters(name: string): Readonly<EndpointCounters> {
    return this.#served.get(name)?.counters ?? emptyCounters();
  }

  /** Calls `listener` whenever the list changes; returns a function that stops it. */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #arrived(endpoint: Served, msg: Message, handler: MessageHandler): void {
    const call: Call = { endpoint, at: this.#o.clock.now() };
    endpoint.counters.inFlight++;
    if (msg.reply === undefined || !isInboxReply(msg.reply)) {
      // Nothing to answer (a reply outside the inbox namespace is refused by every server): counted once handled.
      try {
        handler(msg);
      } finally {
        this.#count(call, msg.reply === undefined ? undefined : "reply subject refused");
      }
      return;
    }
    this.#expire(call.at);
    const calls = this.#pending.get(msg.reply);
    if (calls) calls.push(call);
    else this.#pending.set(msg.reply, [call]);
    this.#pendingCount++;
    try {
      handler(msg);
    } catch (error) {
      this.answered(msg.reply, "handler failed");
      throw error;
    }
  }

  /** Calls never answered (the server dropped them) leave as errors: too old, or too many waiting. */
  #expire(now: number): void {
    // The first reply subject's first call is the oldest waiting: the map keeps insertion order.
    const first = this.#pending.entries().next();
    if (first.done) return;
    const [reply, calls] = first.value;
    const oldest = calls[0];
    const maxAge = this.#o.abandonAfterMs ?? 600_000;
    const maxPending = this.#o.maxPending ?? 10_000;
    if (oldest === undefined || (now - oldest.at < maxAge && this.#pendingCount < maxPending)) return;
    calls.shift();
    if (calls.length === 0) this.#pending.delete(reply);
    this.#pendingCount--;
    this.#count(oldest, "unanswered");
  }

  #count(call: Call, error: string | undefined): void {
    const c = call.endpoint.counters;
    c.inFlight--;
    c.requests++;
    c.processingNs += Math.max(0, Math.round((this.#o.clock.now() - call.at) * 1e6));
    if (error !== undefined) {
      c.errors++;
      c.lastError = error;
    }
  }

  #changed(): void {
    for (const listener of this.#listeners) {
      try {
        listener();
      } catch {
        // A listener's failure is its own; the list changed all the same.
      }
    }
  }
}

function emptyCounters(): EndpointCounters {
  return { requests: 0, errors: 0, processingNs: 0, lastError: undefined, inFlight: 0 };
}
