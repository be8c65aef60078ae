// Registers a node as a NATS micro service named `dvsd`, so `nats micro ls`
// and `$SRV.PING.dvsd` find every node, with its id, cluster and incarnation
// in the service metadata.

import type { Msg, NatsConnection, SubscriptionOptions } from "@nats-io/transport-node";
import type { NodeId } from "../protocol/messages.js";
import { ReplyGuard } from "../protocol/responder.js";
import { SERVICE_NAME } from "../protocol/subjects.js";
import { VERSION } from "../protocol/version.js";
import { serviceManager } from "../transport/services.js";

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

export async function registerService(
  nc: NatsConnection,
  identity: NodeIdentity,
  onRefused: (reply: string) => void = () => {},
): Promise<Registration> {
  const service = await serviceManager(inboxOnlyConnection(nc, onRefused)).add({
    name: SERVICE_NAME,
    version: VERSION,
    description: "DVS node daemon",
    metadata: {
      node: String(identity.node),
      cluster: identity.cluster,
      incarnation: String(identity.incarnation),
      pid: String(process.pid),
    },
  });
  return {
    async stop() {
      await service.stop();
    },
  };
}
