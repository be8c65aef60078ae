// What nats-server says about the connections of an account, read as hostile
// input: the DISCONNECT advisory it publishes the moment a client's connection
// closes, and the client name that tells which dvsd node it was. nats.conf
// imports the cluster account's own advisories from the system account
// (daemon/natsAccounts.ts); the simulated network publishes the same JSON.
import { z } from "zod";
import { decode } from "./codec.js";
import { type NodeId, nodeIdSchema } from "./messages.js";

/** Every account's DISCONNECT advisories; in the cluster's account only its own arrive (the import). */
export const DISCONNECT_ADVISORIES = "$SYS.ACCOUNT.*.DISCONNECT";

/** Where nats-server publishes the DISCONNECT advisories of `account`'s connections. */
export const disconnectAdvisorySubject = (account: string): string => `$SYS.ACCOUNT.${account}.DISCONNECT`;

export const DISCONNECT_ADVISORY_TYPE = "io.nats.server.advisory.v1.client_disconnect";

/**
 * The reason of a connection the server closed because it is itself going
 * (lame duck mode): the client moves to another server, it is not gone.
 */
export const SERVER_SHUTDOWN_REASON = "Server Shutdown";

/** Larger than any advisory the server sends (a JWT and tags included). */
const MAX_ADVISORY_BYTES = 64 * 1024;

const text = z.string().max(1_024);

/**
 * The fields dvsd reads of nats-server's DisconnectEventMsg (server/events.go);
 * the others (sent, received, the client's host, rtt…) are allowed and dropped.
 */
export const disconnectAdvisorySchema = z.object({
  type: z.literal(DISCONNECT_ADVISORY_TYPE),
  id: text.optional(),
  timestamp: text.optional(),
  server: z.object({ name: text.optional(), id: text.optional() }).optional(),
  client: z.object({
    acc: text.optional(),
    user: text.optional(),
    // The name the client chose when it connected: absent when it gave none.
    name: text.optional(),
  }),
  reason: text.optional(),
});

export type DisconnectAdvisory = z.infer<typeof disconnectAdvisorySchema>;

/** The advisory in `data`, or undefined for anything else (not JSON, another type, a field of the wrong kind). */
export function parseDisconnectAdvisory(data: Uint8Array): DisconnectAdvisory | undefined {
  const decoded = decode(data, "json", MAX_ADVISORY_BYTES);
  if (!decoded.ok) return undefined;
  const parsed = disconnectAdvisorySchema.safeParse(decoded.value);
  return parsed.success ? parsed.data : undefined;
}

/**
 * The NATS client name of node `node` of `cluster` (`nats server report
 * connections` shows it, and the advisories carry it). It has no incarnation:
 * the name is fixed when the connection opens, while a rejoin changes the
 * incarnation on the same connection.
 */
export const nodeClientName = (cluster: string, node: NodeId): string => `dvsd-${cluster}-${node}`;

const DECIMAL = /^(0|[1-9][0-9]{0,4})$/;

/**
 * The node of `cluster` a client name belongs to, or undefined. The cluster
 * prefix is matched whole and the rest must be a node id alone, so a cluster
 * whose name holds `-` is never confused with another (`dvsd-a-1-2` is node 2
 * of `a-1`, and no node of `a`).
 */
export function nodeOfClientName(cluster: string, name: string): NodeId | undefined {
  const prefix = `dvsd-${cluster}-`;
  if (!name.startsWith(prefix)) return undefined;
  const rest = name.slice(prefix.length);
  if (!DECIMAL.test(rest)) return undefined;
  const node = nodeIdSchema.safeParse(Number(rest));
  return node.success ? node.data : undefined;
}
