// The membership view of one node (SPEC 4): per-peer reachability
// (alive → suspect → unreachable → down), the view `{ id, members }`, and the
// view changes it announces (JOIN, DISCONNECT, PARTITION, MERGE), one per
// change. Pure: time arrives in events (`at`), and every effect — announcing a
// change, probing a late peer, rejoining as a new incarnation — is a named
// action provided by the runtime (actors/membership.ts).
import { enqueueActions, setup } from "xstate";
import { notProvided } from "./notProvided.js";

export type Reachability = "alive" | "suspect" | "unreachable" | "down";
export type ViewEventName = "JOIN" | "DISCONNECT" | "PARTITION" | "MERGE";

/** A node incarnation: a restart of the same node id is a new incarnation. */
export interface Member {
  readonly node: number;
  readonly incarnation: number;
}

export interface View {
  readonly id: number;
  /** Node ids, sorted ascending. */
  readonly members: readonly number[];
}

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
  /** `membersDigest(members)`. */
  readonly digest: number;
}

/**
 * A 53-bit digest of a sorted member list: two FNV-1a hashes (different
 * offsets) over the count and the ids. Pure and the same on every node, so
 * equal digests with equal sizes stand for equal member lists.
 */
export function membersDigest(members: readonly number[]): number {
  // FNV-1a's offset basis, and a second basis of its own for the other hash.
  let a = 0x811c9dc5;
  let b = 0x5bd1e995;
  const mix = (n: number) => {
    for (let shift = 0; shift < 32; shift += 8) {
      const byte = (n >>> shift) & 0xff;
      a = Math.imul(a ^ byte, 0x01000193);
      b = Math.imul(b ^ byte, 0x01000193);
    }
  };
  mix(members.length);
  for (const m of members) mix(m);
  return (a >>> 0) * 2 ** 21 + ((b >>> 0) >>> 11);
}

/** The summary of `view` a heartbeat of `node` carries. */
export function summarize(view: View, node: number): ViewSummary {
  return {
    id: view.id,
    size: view.members.length,
    first: view.members[0] ?? node,
    digest: membersDigest(view.members),
  };
}

const sameSummary = (summary: ViewSummary, members: readonly number[]) =>
  summary.size === members.length && summary.digest === membersDigest(members);

export interface PeerRecord {
  incarnation: number;
  state: Reachability;
  /** When it was last heard (heartbeat or probe answer). */
  lastHeard: number;
  /** When it entered its current state. */
  since: number;
  /** When it was last probed, while late. */
  probedAt: number | undefined;
}

export interface MembershipTimings {
  readonly heartbeatMs: number;
  /** Missed heartbeats before a peer is suspect (still in the view). */
  readonly suspectAfterMissed: number;
  /** Missed heartbeats before a silent peer is unreachable (PARTITION). */
  readonly unreachableAfterMissed: number;
  /** How long a peer may stay unreachable before it is declared down (DISCONNECT). */
  readonly downAfterMs: number;
  /** Silence after which a peer is probed, so NATS can say at once that it is gone. */
  readonly probeAfterMs: number;
  /** How often the runtime sends `clock.tick`. */
  readonly tickMs: number;
  /** How long a starting node listens before announcing its first view. */
  readonly joinWindowMs: number;
}

export const defaultTimings = (heartbeatMs = 200): MembershipTimings => ({
  heartbeatMs,
  suspectAfterMissed: 3,
  unreachableAfterMissed: 5,
  downAfterMs: 5_000,
  probeAfterMs: Math.round(heartbeatMs * 1.25),
  tickMs: Math.max(5, Math.round(heartbeatMs / 8)),
  joinWindowMs: Math.round(heartbeatMs * 1.5),
});

export interface MembershipInput {
  readonly self: Member;
  readonly timings: MembershipTimings;
  /** Quorum mode: a component without a majority of the last full view is a minority. */
  readonly quorum: boolean;
  /** The view id to continue from (a rejoin keeps its lineage's ids growing). */
  readonly viewId?: number;
  readonly at: number;
}

export interface MembershipContext {
  readonly self: Member;
  readonly timings: MembershipTimings;
  readonly quorum: boolean;
  phase: "joining" | "member";
  linkUp: boolean;
  startedAt: number;
  lastTick: number;
  /** Keyed by node id (as a string, so the context stays plain CBOR-able data). */
  peers: Record<string, PeerRecord>;
  view: View;
  /** Size of the last view in which every known live member was reachable. */
  fullViewSize: number;
  minority: boolean;
  /** While joining: the highest view heard, so the first view continues the cluster's numbering. */
  heardView: ViewSummary | undefined;
}

export interface ViewChange {
  readonly event: ViewEventName;
  readonly view: View;
  readonly changed: readonly Member[];
  readonly cause: string;
  readonly at: number;
}

export type MembershipEvent =
  | {
      type: "peer.heartbeat";
      from: Member;
      /** The sender's view, summarized. */
      view: ViewSummary;
      /** Incarnations the sender has declared down. */
      down: readonly Member[];
      at: number;
    }
  | { type: "peer.leave"; from: Member; at: number }
  | { type: "probe.answered"; from: Member; at: number }
  | { type: "probe.noResponders"; peer: Member; at: number }
  | { type: "clock.tick"; at: number }
  | { type: "link.down"; at: number }
  | { type: "link.up"; at: number };

export type MembershipOutput =
  | { type: "announce"; change: ViewChange }
  | { type: "probe"; peer: Member }
  | { type: "rejoin"; reason: string; viewId: number };

export function initialContext(input: MembershipInput): MembershipContext {
  return {
    self: input.self,
    timings: input.timings,
    quorum: input.quorum,
    phase: "joining",
    linkUp: true,
    startedAt: input.at,
    lastTick: input.at,
    peers: {},
    view: { id: input.viewId ?? 0, members: [input.self.node] },
    fullViewSize: 1,
    minority: false,
    heardView: undefined,
  };
}

/** The members a node's own peer table puts in its view: itself and every alive or suspect peer. */
export function membersOf(ctx: Pick<MembershipContext, "self" | "peers">): number[] {
  const members = [ctx.self.node];
  for (const [node, peer] of Object.entries(ctx.peers)) {
    if (peer.state === "alive" || peer.state === "suspect") members.push(Number(node));
  }
  return members.sort((a, b) => a - b);
}

/** The incarnations a node has declared down, as carried in its heartbeats. */
export function downList(ctx: Pick<MembershipContext, "peers">): Member[] {
  const down: Member[] = [];
  for (const [node, peer] of Object.entries(ctx.peers)) {
    if (peer.state === "down") down.push({ node: Number(node), incarnation: peer.incarnation });
  }
  return down;
}

/**
 * When two components have declared each other down, exactly one must rejoin
 * as new incarnations. Both sides evaluate this with the views their
 * heartbeats carry, so they agree: the larger view wins, then the one with
 * the lower smallest member, then the lower node id.
 */
export function componentWins(
  ours: ViewSummary,
  ourNode: number,
  theirs: ViewSummary,
  theirNode: number,
): boolean {
  if (ours.size !== theirs.size) return ours.size > theirs.size;
  if (ours.first !== theirs.first) return ours.first < theirs.first;
  return ourNode < theirNode;
}

/**
 * One step of the membership logic: updates `ctx` (in place, for speed on the
 * heartbeat path; it stays plain data) and returns what the runtime must do.
 */
export function step(ctx: MembershipContext, event: MembershipEvent): MembershipOutput[] {
  const out: MembershipOutput[] = [];
  const announce = (name: ViewEventName, changed: Member[], cause: string, at: number) => {
    if (ctx.phase === "joining") return; // the first view is announced when the join window closes
    commitView(ctx, name, changed, cause, at, out);
  };

  switch (event.type) {
    case "peer.heartbeat":
    case "probe.answered": {
      const { from, at } = event;
      if (from.node === ctx.self.node) break;
      if (event.type === "peer.heartbeat") {
        const listedDown = event.down.some(
          (m) => m.node === ctx.self.node && m.incarnation === ctx.self.incarnation,
        );
        if (listedDown && handleListedDown(ctx, event, out)) break;
      }
      const peer = ctx.peers[from.node];
      if (!peer) {
        ctx.peers[from.node] = {
          incarnation: from.incarnation,
          state: "alive",
          lastHeard: at,
          since: at,
          probedAt: undefined,
        };
        announce("JOIN", [from], "new node", at);
      } else if (from.incarnation < peer.incarnation) {
        // A late message from an incarnation that is already gone.
      } else if (from.incarnation > peer.incarnation) {
        // A restart: the old incarnation leaves the view first, then the new one enters it.
        const wasLive = peer.state !== "down";
        if (wasLive) {
          const old: Member = { node: from.node, incarnation: peer.incarnation };
          peer.state = "down";
          peer.since = at;
          announce("DISCONNECT", [old], "restarted as a new incarnation", at);
        }
        Object.assign(peer, {
          incarnation: from.incarnation,
          state: "alive",
          lastHeard: at,
          since: at,
          probedAt: undefined,
        });
        announce("JOIN", [from], wasLive ? "restarted" : "rejoined as a new incarnation", at);
      } else if (peer.state === "down") {
        // Declared down: not merged back. Our heartbeats list it, so it learns and rejoins.
      } else {
        const wasUnreachable = peer.state === "unreachable";
        peer.lastHeard = at;
        peer.probedAt = undefined;
        if (peer.state !== "alive") {
          peer.state = "alive";
          peer.since = at;
        }
        if (wasUnreachable) announce("MERGE", [from], "reachable again", at);
      }
      if (event.type === "peer.heartbeat") {
        // While joining, start numbering from the highest id the cluster has
        // reached, so our first view and the others' next one carry the same id.
        if (ctx.phase === "joining" && event.view.id > (ctx.heardView?.id ?? ctx.view.id)) {
          ctx.heardView = { ...event.view };
        }
        syncViewId(ctx, event.from, event.view);
      }
      break;
    }

    case "peer.leave": {
      const peer = ctx.peers[event.from.node];
      if (!peer || peer.incarnation !== event.from.incarnation || peer.state === "down") break;
      const wasMember = peer.state === "alive" || peer.state === "suspect";
      peer.state = "down";
      peer.since = event.at;
      // A member that leaves on purpose no longer counts toward a majority.
      if (wasMember) ctx.fullViewSize = Math.max(1, ctx.fullViewSize - 1);
      announce("DISCONNECT", [event.from], "left", event.at);
      break;
    }

    case "probe.noResponders": {
      const peer = ctx.peers[event.peer.node];
      if (!ctx.linkUp || !peer || peer.incarnation !== event.peer.incarnation) break;
      if (peer.state !== "alive" && peer.state !== "suspect") break;
      peer.state = "unreachable";
      peer.since = event.at;
      announce("PARTITION", [event.peer], "no responders: its subscriptions are gone", event.at);
      break;
    }

    case "link.down": {
      ctx.linkUp = false;
      if (ctx.phase === "joining") {
        // Nothing was announced about them yet: forget them, and hear them again after the link is back.
        ctx.peers = {};
        ctx.heardView = undefined;
        break;
      }
      const lost = markUnreachable(ctx, event.at, () => true);
      if (lost.length) announce("PARTITION", lost, "lost own NATS link", event.at);
      break;
    }

    case "link.up":
      ctx.linkUp = true;
      break;

    case "clock.tick":
      tick(ctx, event.at, out);
      break;
  }
  return out;
}

const memberOf = (key: string, peer: PeerRecord): Member => ({
  node: Number(key),
  incarnation: peer.incarnation,
});

function tick(ctx: MembershipContext, at: number, out: MembershipOutput[]): void {
  const t = ctx.timings;
  const gap = at - ctx.lastTick;
  ctx.lastTick = at;
  if (gap > Math.max(3 * t.tickMs, t.heartbeatMs)) {
    // This node itself was stalled (overload, SIGSTOP): the silence is ours, not
    // the peers'. Credit them the stall and let queued heartbeats arrive first.
    const credit = gap - t.tickMs;
    for (const peer of Object.values(ctx.peers)) {
      peer.lastHeard += credit;
      peer.since += credit;
    }
    return;
  }

  if (ctx.phase === "joining") {
    if (at - ctx.startedAt < t.joinWindowMs) return;
    ctx.phase = "member";
    const joined: Member[] = [ctx.self];
    for (const [node, peer] of Object.entries(ctx.peers)) {
      if (peer.state === "alive" || peer.state === "suspect")
        joined.push({ node: Number(node), incarnation: peer.incarnation });
    }
    joined.sort((a, b) => a.node - b.node);
    // Continue the cluster's numbering: the others may already have announced
    // this very view (they heard us during our join window), or will next.
    const heard = ctx.heardView;
    ctx.heardView = undefined;
    if (heard && heard.id >= ctx.view.id) {
      const same = sameSummary(heard, membersOf(ctx));
      ctx.view = { id: same ? heard.id - 1 : heard.id, members: ctx.view.members };
    }
    commitView(ctx, "JOIN", joined, "started", at, out);
  }

  const newlyUnreachable: Member[] = [];
  const newlyDown: Member[] = [];
  // Runs every tick for every peer (40 times a second each with the default
  // timings): no per-peer allocation unless something changes.
  for (const key in ctx.peers) {
    const peer = ctx.peers[key] as PeerRecord;
    const silence = at - peer.lastHeard;
    if (peer.state === "alive" || peer.state === "suspect") {
      if (silence >= t.unreachableAfterMissed * t.heartbeatMs) {
        peer.state = "unreachable";
        peer.since = at;
        newlyUnreachable.push(memberOf(key, peer));
        continue;
      }
      if (peer.state === "alive" && silence >= t.suspectAfterMissed * t.heartbeatMs) {
        peer.state = "suspect";
        peer.since = at;
      }
      if (
        ctx.linkUp &&
        silence >= t.probeAfterMs &&
        (peer.probedAt === undefined || at - peer.probedAt >= t.heartbeatMs)
      ) {
        peer.probedAt = at;
        out.push({ type: "probe", peer: memberOf(key, peer) });
      }
    } else if (peer.state === "unreachable" && at - peer.since >= t.downAfterMs) {
      peer.state = "down";
      peer.since = at;
      newlyDown.push(memberOf(key, peer));
    }
  }
  if (newlyUnreachable.length) commitView(ctx, "PARTITION", newlyUnreachable, "stopped answering", at, out);
  if (newlyDown.length)
    commitView(ctx, "DISCONNECT", newlyDown, "unreachable longer than downAfter", at, out);
}

/**
 * A heartbeat says we were declared down. If we also lost the sender (mutual
 * partition), the winning component stays and declares the sender down;
 * otherwise this node rejoins as a new incarnation. Returns true when the
 * heartbeat must not be processed further.
 */
function handleListedDown(
  ctx: MembershipContext,
  event: Extract<MembershipEvent, { type: "peer.heartbeat" }>,
  out: MembershipOutput[],
): boolean {
  const peer = ctx.peers[event.from.node];
  const mutual =
    peer !== undefined &&
    peer.incarnation === event.from.incarnation &&
    (peer.state === "unreachable" || peer.state === "down");
  if (
    mutual &&
    componentWins(summarize(ctx.view, ctx.self.node), ctx.self.node, event.view, event.from.node)
  ) {
    if (peer.state !== "down") {
      peer.state = "down";
      peer.since = event.at;
      if (ctx.phase === "member") {
        commitView(ctx, "DISCONNECT", [event.from], "declared us down; its side rejoins", event.at, out);
      }
    }
    return true;
  }
  out.push({ type: "rejoin", reason: `declared down by node ${event.from.node}`, viewId: ctx.view.id });
  return true;
}

function markUnreachable(ctx: MembershipContext, at: number, which: (node: number) => boolean): Member[] {
  const lost: Member[] = [];
  for (const [key, peer] of Object.entries(ctx.peers)) {
    if ((peer.state === "alive" || peer.state === "suspect") && which(Number(key))) {
      peer.state = "unreachable";
      peer.since = at;
      lost.push({ node: Number(key), incarnation: peer.incarnation });
    }
  }
  return lost;
}

/** Every announced change is a new view: its id grows by one. */
function commitView(
  ctx: MembershipContext,
  event: ViewEventName,
  changed: Member[],
  cause: string,
  at: number,
  out: MembershipOutput[],
): void {
  const members = membersOf(ctx);
  ctx.view = { id: ctx.view.id + 1, members };
  // The last full view only shrinks where this node holds a majority of it (or
  // by graceful leaves, see peer.leave): a minority that declares the others
  // down must not come to see itself as the whole cluster.
  const unreachable = Object.values(ctx.peers).some((p) => p.state === "unreachable");
  if (!unreachable && (members.length >= ctx.fullViewSize || members.length * 2 > ctx.fullViewSize)) {
    ctx.fullViewSize = members.length;
  }
  ctx.minority = ctx.quorum && members.length * 2 <= ctx.fullViewSize && ctx.fullViewSize > 1;
  out.push({ type: "announce", change: { event, view: ctx.view, changed, cause, at } });
}

/**
 * Nodes that agree on the members converge on one view id: the highest any of
 * them has reached. Adopting a higher id is not a change of members, so it is
 * not announced.
 */
function syncViewId(ctx: MembershipContext, from: Member, view: ViewSummary): void {
  if (ctx.phase !== "member" || view.id <= ctx.view.id) return;
  const peer = ctx.peers[from.node];
  if (!peer || peer.incarnation !== from.incarnation || peer.state === "down" || peer.state === "unreachable")
    return;
  if (sameSummary(view, ctx.view.members)) ctx.view = { id: view.id, members: ctx.view.members };
}

export type MembershipStep = (ctx: MembershipContext, event: MembershipEvent) => MembershipOutput[];

/**
 * The membership machine around a step function. Production uses `step`;
 * tests plant bugs by passing a mutated one and check that the harness finds them.
 */
export const createMembershipMachine = (stepFn: MembershipStep = step) =>
  setup({
    types: {
      context: {} as MembershipContext,
      input: {} as MembershipInput,
      events: {} as MembershipEvent,
    },
    actions: {
      announce: notProvided("action announce") as (_: unknown, params: ViewChange) => void,
      probe: notProvided("action probe") as (_: unknown, params: Member) => void,
      rejoin: notProvided("action rejoin") as (
        _: unknown,
        params: { reason: string; viewId: number },
      ) => void,
    },
  }).createMachine({
    id: "membership",
    context: ({ input }) => initialContext(input),
    initial: "joining",
    on: {
      "*": {
        actions: enqueueActions(({ context, event, enqueue }) => {
          const outputs = stepFn(context, event);
          enqueue.assign({ ...context });
          for (const o of outputs) {
            if (o.type === "announce") enqueue({ type: "announce", params: o.change });
            else if (o.type === "probe") enqueue({ type: "probe", params: o.peer });
            else enqueue({ type: "rejoin", params: { reason: o.reason, viewId: o.viewId } });
          }
        }),
      },
    },
    states: {
      joining: {
        always: { guard: ({ context }) => context.phase === "member", target: "member" },
      },
      member: {
        always: { guard: ({ context }) => !context.linkUp, target: "isolated" },
      },
      isolated: {
        always: { guard: ({ context }) => context.linkUp, target: "member" },
      },
    },
  });

export const membershipMachine = createMembershipMachine();

export type MembershipMachine = typeof membershipMachine;
