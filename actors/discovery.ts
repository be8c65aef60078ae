// Registers a node as a NATS micro service named `dvsd`, so `nats micro ls`
// and `$SRV.PING.dvsd` find every node, with its id, cluster and incarnation
// in the service metadata, the public subjects it serves as endpoints
// (`$SRV.INFO`) and their counters (`$SRV.STATS`, from actors/endpoints.ts).

import type { Service } from "@nats-io/services";
import type { Msg, NatsConnection, Subscription, SubscriptionOptions } from "@nats-io/transport-node";
import type { NodeId } from "../protocol/messages.js";
import { ReplyGuard } from "../protocol/responder.js";
import { SERVICE_NAME } from "../protocol/subjects.js";
import { VERSION } from "../protocol/version.js";
import { serviceManager } from "../transport/services.js";
import type { Endpoints } from "./endpoints.js";

export interface NodeIdentity {
  readonly node: NodeId;
  readonly cluster: string;
  readonly incarnation: number;
}

export interface Registration {
  stop(): Promise<void>;
}

/**
 * The connection the micro service library answers through: every message it
 * hands a handler answers only an inbox (protocol/responder.ts). The library
 * calls `msg.respond`, which would publish to any reply subject a pinger chose,
 * with the node's rights; here a foreign one is dropped and counted.
 */
export function inboxOnlyConnection(nc: NatsConnection, onRefused: (reply: string) => void): NatsConnection {
  const replies = new ReplyGuard({ onRefused: (reply) => onRefused(reply) });
  const guarded = (msg: Msg): Msg =>
    new Proxy(msg, {
      get(target, prop) {
        if (prop === "respond")
          return (...args: Parameters<Msg["respond"]>) => {
            return (
              replies.replyOf({ subject: target.subject, reply: target.reply }) !== undefined &&
              target.respond(...args)
            );
          };
        const value: unknown = Reflect.get(target, prop, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
  return new Proxy(nc, {
    get(target, prop) {
      if (prop === "subscribe")
        return (subject: string, opts?: SubscriptionOptions) => {
          const callback = opts?.callback;
          if (!callback) return target.subscribe(subject, opts);
          return target.subscribe(subject, {
            ...opts,
            callback: (err, msg) => callback(err, msg ? guarded(msg) : msg),
          });
        };
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

export interface RegisterOptions {
  /** The public subjects the node serves: listed as endpoints, with their counters in STATS. */
  readonly endpoints?: Endpoints;
  /** A `$SRV` question whose reply subject is outside the inbox namespace was dropped. */
  readonly onRefused?: (reply: string) => void;
}

/**
 * Registers the node as the micro service `dvsd` with one endpoint per public
 * subject it serves. The list follows the node without registering again (the
 * service id stays): an endpoint it starts serving (it became the
 * coordinator) is added, and INFO and STATS list only the ones it serves at
 * that moment (it left the DVS, lost its term), with the node's own counters.
 */
export async function registerService(
  nc: NatsConnection,
  identity: NodeIdentity,
  options: RegisterOptions = {},
): Promise<Registration> {
  const { endpoints } = options;
  const added = new Set<string>();
  const stands = new Set<string>();
  const service = await serviceManager(
    servingConnection(inboxOnlyConnection(nc, options.onRefused ?? (() => {})), stands),
  ).add({
    name: SERVICE_NAME,
    version: VERSION,
    description: "DVS node daemon",
    metadata: {
      node: String(identity.node),
      cluster: identity.cluster,
      incarnation: String(identity.incarnation),
      pid: String(process.pid),
    },
    // An endpoint without a queue group is served by this node alone: listed with none.
    queue: "",
  });
  const addServed = () => {
    for (const e of endpoints?.list() ?? []) {
      if (added.has(e.name)) continue;
      added.add(e.name);
      stands.add(e.subject);
      service.addEndpoint(e.name, {
        subject: e.subject,
        ...(e.queue !== undefined ? { queue: e.queue } : {}),
        ...(e.metadata ? { metadata: { ...e.metadata } } : {}),
        // Never called: the node's own subscription serves the subject (servingConnection).
        handler: () => {},
      });
    }
  };
  addServed();
  const off = endpoints?.onChange(addServed);
  if (endpoints) listServedOnly(service, endpoints);
  return {
    async stop() {
      off?.();
      await service.stop();
    },
  };
}

/**
 * The library answers INFO and STATS from the service's `info()` and
 * `stats()`: here they list the endpoints served now, and count them as the
 * node does (until the answer is sent), not as the library would (its
 * handler's synchronous time, which never runs here).
 */
function listServedOnly(service: Service, endpoints: Endpoints): void {
  const info = service.info.bind(service);
  const stats = service.stats.bind(service);
  const served = () => new Set(endpoints.list().map((e) => e.name));
  service.info = () => {
    const now = served();
    const answer = info();
    return { ...answer, endpoints: answer.endpoints.filter((e) => now.has(e.name)) };
  };
  service.stats = async () => {
    const now = served();
    const answer = await stats();
    return {
      ...answer,
      endpoints: (answer.endpoints ?? [])
        .filter((e) => now.has(e.name))
        .map((e) => {
          const c = endpoints.counters(e.name);
          return {
            ...e,
            num_requests: c.requests,
            num_errors: c.errors,
            processing_time: c.processingNs,
            average_processing_time: c.requests > 0 ? Math.round(c.processingNs / c.requests) : 0,
            ...(c.lastError !== undefined ? { last_error: c.lastError } : {}),
            data: { in_flight: c.inFlight },
          };
        }),
    };
  };
}

/**
 * The connection the service is added on: its endpoints' subjects (`served`,
 * filled as endpoints are added) are served by the node's own subscriptions
 * (actors/endpoints.ts), so the library's subscription to one of them is a
 * stand-in that receives nothing. Each
 * message is delivered once, to the node, in the endpoint's queue group; the
 * library only answers `$SRV` and lists the endpoints.
 */
function servingConnection(nc: NatsConnection, served: ReadonlySet<string>): NatsConnection {
  return new Proxy(nc, {
    get(target, prop) {
      if (prop === "subscribe")
        return (subject: string, opts?: SubscriptionOptions) =>
          served.has(subject) ? standIn(subject) : target.subscribe(subject, opts);
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** A subscription that receives nothing and closes when the service drains it. */
function standIn(subject: string): Subscription {
  let close = () => {};
  const closed = new Promise<void>((resolve) => {
    close = resolve;
  });
  let done = false;
  const end = () => {
    done = true;
    close();
  };
  const sub = {
    getSubject: () => subject,
    closed,
    drain: async () => end(),
    unsubscribe: () => end(),
    isClosed: () => done,
    isDraining: () => false,
    getReceived: () => 0,
    getProcessed: () => 0,
    getPending: () => 0,
    getID: () => -1,
    getMax: () => undefined,
    callback: () => {},
    async *[Symbol.asyncIterator]() {},
  };
  return sub as unknown as Subscription;
}
