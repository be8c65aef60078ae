// The internal membership traffic (SPEC 4, issue 20): heartbeats to a node's
// observers, the broadcasts every node hears (hello, leave, alerts, beacons)
// and probe answers. Internal subjects: free to change between versions.
import { z } from "zod";
import { memberSchema, nodeIdSchema, PROTOCOL_VERSION } from "./messages.js";

/**
 * A heartbeat's view: id, size, smallest member and a digest of the members
 * (machines/membership.ts `summarize`), not the members themselves, so a
 * heartbeat's size does not grow with the cluster.
 */
export const viewSummarySchema = z.strictObject({
  id: z.number().int().min(0),
  size: z.number().int().min(0).max(65_536),
  first: nodeIdSchema,
  digest: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
}) satisfies z.ZodType<ViewSummary>;

/**
 * What a heartbeat tells of its sender's view: its id, its size, its smallest
 * member and a digest of its members. Enough to compare two views without
 * carrying every member, so a heartbeat stays the same size however large
 * the cluster (at 1,000 nodes a full member list made each one ~3 KB, and
 * decoding it the largest cost of every node).
 */
export interface ViewSummary {
  readonly id: number;
  readonly size: number;
  /** The smallest member. */
  readonly first: number;
  /** `membersDigest(members)` (machines/view.ts). */
  readonly digest: number;
}

/** Published every heartbeat period on `dvs.<c>._hb.<node>`, heard by the node's observers. */
export const heartbeatSchema = z.strictObject({
  v: z.literal(PROTOCOL_VERSION),
  node: nodeIdSchema,
  incarnation: z.number().int().min(0),
  seq: z.number().int().min(0),
  view: viewSummarySchema,
  down: z.array(memberSchema).max(65_536),
});
export type Heartbeat = z.infer<typeof heartbeatSchema>;

/** What an observer says of a node it watches: unreachable, reachable again, or declared down. */
export const ALERT_STATES = ["unreachable", "alive", "down"] as const;
export type AlertState = (typeof ALERT_STATES)[number];

const broadcastBase = {
  v: z.literal(PROTOCOL_VERSION),
  node: nodeIdSchema,
  incarnation: z.number().int().min(0),
  view: viewSummarySchema,
};

/**
 * Published on `dvs.<c>._ms.<node>`, heard by every node (SPEC 4, issue 20):
 * - `hello`: the node started, or refutes an alert about itself;
 * - `leave`: a graceful leave (a DISCONNECT at once everywhere);
 * - `alert`: an observer of `about` says it became unreachable, is reachable
 *   again, or was declared down;
 * - `beacon`: the leader of a component (the smallest member of its view)
 *   says, once per beacon period, who its members are and whom it declared
 *   down: how a joining node learns the cluster, how a component learns it
 *   agrees, and how two components find each other after a heal.
 */
export const membershipBroadcastSchema = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("hello"), ...broadcastBase }),
  z.strictObject({ kind: z.literal("leave"), ...broadcastBase }),
  z.strictObject({
    kind: z.literal("alert"),
    ...broadcastBase,
    about: memberSchema,
    state: z.enum(ALERT_STATES),
    cause: z.string().max(256),
  }),
  z.strictObject({
    kind: z.literal("beacon"),
    ...broadcastBase,
    /** Checked with `beaconMembersSchema` only by a receiver whose view differs (the common case costs nothing). */
    members: z.array(z.unknown()).max(65_536),
    down: z.array(memberSchema).max(65_536),
  }),
]);
export type MembershipBroadcast = z.infer<typeof membershipBroadcastSchema>;

/** A beacon's members, each a node and its incarnation. */
export const beaconMembersSchema = z.array(memberSchema).max(65_536);

/** The answer to a probe on `dvs.<c>._probe.<node>`: who is there. */
export const probeReplySchema = memberSchema;
