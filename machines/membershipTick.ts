// What time does to one node's membership (SPEC 4): the join window closes,
// watched peers that fall silent are probed, suspected and PARTITIONed,
// unreachable peers are DISCONNECTed after downAfter, and the ring of
// observers is rebuilt after a change. The runtime ticks only when something
// is due (`nextDeadline`), not at a fixed rate. Pure.
import {
  isLive,
  MAX_LOCAL_HEALTH,
  type Member,
  type MembershipContext,
  type NextContext,
  type PeerRecord,
  RING_SETTLE_MS,
  type ViewEventName,
  type Watch,
} from "./membershipContext.js";
import { buildRing, watchedBy } from "./observers.js";
import { sameSummary } from "./view.js";

/** What the tick needs from the step module (kept there: they are the step's own). */
export interface TickEffects {
  commitView(next: NextContext, event: ViewEventName, changed: Member[], cause: string, at: number): void;
  partition(next: NextContext, member: Member, peer: PeerRecord, cause: string): void;
}

/** A gap between two ticks longer than this means this node itself was stalled. */
const stallAfter = (ctx: MembershipContext) => 2 * ctx.timings.heartbeatMs;

/** Silence after which a watched peer is suspect and unreachable, at this node's local health. */
function silenceLimits(ctx: MembershipContext): { suspect: number; unreachable: number } {
  const t = ctx.timings;
  const k = 1 + ctx.localHealth;
  return {
    suspect: k * t.suspectAfterMissed * t.heartbeatMs,
    unreachable: k * t.unreachableAfterMissed * t.heartbeatMs,
  };
}

/** A tick later than a quarter heartbeat worsens local health; a beacon period of punctual ticks mends it by one. */
function judgeLocalHealth(ctx: NextContext["ctx"], at: number, due: number | undefined): void {
  if (due === undefined) return;
  if (at - due > ctx.timings.heartbeatMs / 4) {
    if (ctx.localHealth < MAX_LOCAL_HEALTH) ctx.localHealth++;
    ctx.localHealthAt = at;
  } else if (ctx.localHealth > 0 && at - ctx.localHealthAt >= ctx.timings.beaconMs) {
    ctx.localHealth--;
    ctx.localHealthAt = at;
  }
}

export function tick(next: NextContext, at: number, effects: TickEffects, due?: number): void {
  const { ctx } = next;
  const t = ctx.timings;
  const gap = at - ctx.lastTick;
  ctx.lastTick = at;
  judgeLocalHealth(ctx, at, due);
  if (gap > stallAfter(ctx)) {
    // This node itself was stalled (overload, SIGSTOP): the silence is ours, not
    // the peers'. Credit them the stall and let queued messages arrive first.
    const credit = gap - t.heartbeatMs;
    for (const [key, w] of Object.entries(ctx.watch)) {
      next.setWatch(key, { lastHeard: w.lastHeard + credit, probedAt: w.probedAt });
    }
    for (const node of ctx.unreachable) {
      const peer = ctx.peers[node] as PeerRecord;
      next.changePeer(node, peer, { since: peer.since + credit });
    }
    return;
  }

  if (ctx.phase === "joining") {
    // Nodes that started at the same instant subscribed after some of our
    // hellos went out: halfway through the window, say it once more.
    if (!ctx.helloAgain && at - ctx.startedAt >= t.joinWindowMs / 2) {
      ctx.helloAgain = true;
      next.out.push({ type: "hello" });
    }
    if (at - ctx.startedAt < t.joinWindowMs) return;
    closeJoinWindow(next, at, effects);
  }
  if (ctx.ringDirtyAt !== undefined) rebuildRing(next);

  const newlyUnreachable: Member[] = [];
  const limits = silenceLimits(ctx);
  for (const node of ctx.watching) {
    const peer = ctx.peers[node];
    const w = ctx.watch[node];
    if (!peer || !w || !isLive(peer)) continue;
    const silence = at - w.lastHeard;
    if (silence >= limits.unreachable) {
      newlyUnreachable.push({ node, incarnation: peer.incarnation });
      continue;
    }
    const suspect = peer.state === "alive" && silence >= limits.suspect;
    if (suspect) next.changePeer(node, peer, { state: "suspect", since: at });
    const probe =
      ctx.linkUp &&
      silence >= t.probeAfterMs &&
      (w.probedAt === undefined || at - w.probedAt >= t.heartbeatMs);
    if (probe) {
      next.setWatch(node, { lastHeard: w.lastHeard, probedAt: at });
      next.out.push({ type: "probe", peer: { node, incarnation: peer.incarnation } });
    }
  }
  for (const m of newlyUnreachable) {
    effects.partition(next, m, ctx.peers[m.node] as PeerRecord, "stopped answering");
  }

  const newlyDown: Member[] = [];
  for (const node of ctx.unreachable) {
    const peer = ctx.peers[node] as PeerRecord;
    if (at - peer.since >= t.downAfterMs) {
      next.changePeer(node, peer, { state: "down", since: at });
      newlyDown.push({ node, incarnation: peer.incarnation });
    }
  }
  // Every node times this itself, from when it found the peer unreachable: not broadcast.
  if (newlyDown.length)
    effects.commitView(next, "DISCONNECT", newlyDown, "unreachable longer than downAfter", at);
  if (ctx.ringDirtyAt !== undefined) rebuildRing(next);
}

function closeJoinWindow(next: NextContext, at: number, effects: TickEffects): void {
  const { ctx } = next;
  ctx.phase = "member";
  const joined: Member[] = [ctx.self];
  for (const [node, peer] of Object.entries(ctx.peers)) {
    if (isLive(peer)) joined.push({ node: Number(node), incarnation: peer.incarnation });
  }
  joined.sort((a, b) => a.node - b.node);
  // Continue the cluster's numbering: the others may already have announced
  // this very view (they heard us during our join window), or will next.
  const heard = ctx.heardView;
  ctx.heardView = undefined;
  if (heard && heard.id >= ctx.view.id) {
    const same = sameSummary(
      heard,
      joined.map((m) => m.node),
    );
    ctx.view = { id: same ? heard.id - 1 : heard.id, members: ctx.view.members };
  }
  ctx.ringDirtyAt ??= at;
  effects.commitView(next, "JOIN", joined, "started", at);
}

/**
 * Recomputes the ring and the peers this node watches. A newly watched live
 * peer is probed at once: its observer may have just been lost with it, and
 * a partition that took every observer of a node is found one ring step per
 * probe, not one per heartbeat timeout.
 */
export function rebuildRing(next: NextContext): void {
  const { ctx } = next;
  ctx.ringDirtyAt = undefined;
  if (ctx.phase !== "member") return;
  const onRing: number[] = [];
  for (const key in ctx.peers) if ((ctx.peers[key] as PeerRecord).state !== "down") onRing.push(Number(key));
  const ring = buildRing(ctx.self.node, onRing);
  const reachable = (n: number) => n === ctx.self.node || isLive(ctx.peers[n]);
  const watching = watchedBy(ring, ctx.self.node, reachable, ctx.timings.observers);
  ctx.ring = ring;
  if (sameList(watching, ctx.watching)) return;
  const watch: Record<string, Watch> = {};
  for (const node of watching) {
    const had = ctx.watch[node];
    if (had) {
      watch[node] = had;
      continue;
    }
    // A newly watched peer is probed at once, live or not: an answer from an
    // unreachable one merges it, silence from it is said again (reassert).
    const peer = ctx.peers[node] as PeerRecord;
    const probe = ctx.linkUp;
    watch[node] = { lastHeard: next.at, probedAt: probe && isLive(peer) ? next.at : undefined };
    if (probe) next.out.push({ type: "probe", peer: { node, incarnation: peer.incarnation } });
  }
  next.replaceWatch(watch, watching);
}

const sameList = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((n, i) => n === b[i]);

/**
 * The next instant at which a tick would change anything, or undefined when
 * nothing is due: the runtime arms one timer for it (and ticks at least once
 * a heartbeat period anyway, when it sends its own heartbeat).
 */
export function nextDeadline(ctx: MembershipContext): number | undefined {
  const t = ctx.timings;
  let due = Number.POSITIVE_INFINITY;
  if (ctx.phase === "joining") due = ctx.startedAt + (ctx.helloAgain ? t.joinWindowMs : t.joinWindowMs / 2);
  else if (ctx.ringDirtyAt !== undefined) due = Math.min(due, ctx.ringDirtyAt + RING_SETTLE_MS);
  const limits = silenceLimits(ctx);
  for (const node of ctx.watching) {
    const peer = ctx.peers[node];
    const w = ctx.watch[node];
    if (!peer || !w || !isLive(peer)) continue;
    const unreachableAt = w.lastHeard + limits.unreachable;
    const probeAt =
      w.probedAt === undefined
        ? w.lastHeard + t.probeAfterMs
        : Math.max(w.probedAt + t.heartbeatMs, w.lastHeard + t.probeAfterMs);
    const suspectAt = peer.state === "alive" ? w.lastHeard + limits.suspect : Number.POSITIVE_INFINITY;
    due = Math.min(due, unreachableAt, ctx.linkUp ? probeAt : unreachableAt, suspectAt);
  }
  for (const node of ctx.unreachable) {
    const peer = ctx.peers[node];
    if (peer) due = Math.min(due, peer.since + t.downAfterMs);
  }
  return Number.isFinite(due) ? due : undefined;
}
