// The membership view of one node (SPEC 4): per-peer reachability
// (alive → suspect → unreachable → down), the view `{ id, members }`, and the
// view changes it announces (JOIN, DISCONNECT, PARTITION, MERGE), one per
// change. Pure: time arrives in events (`at`), each step returns the next
// context without touching the last, and every effect — announcing a change,
// probing a late peer, rejoining as a new incarnation — is a named action
// provided by the runtime (actors/membership.ts).
import { assign, enqueueActions, setup } from "xstate";
import type { Member, MembershipEventName } from "../protocol/messages.js";
import { notProvided } from "./notProvided.js";
import { sameSummary, summarize, type View, type ViewSummary } from "./view.js";

export { membersDigest, summarize, type View, type ViewSummary } from "./view.js";

export type Reachability = "alive" | "suspect" | "unreachable" | "down";
export type ViewEventName = MembershipEventName;
export type { Member };

export interface PeerRecord {
  readonly incarnation: number;
  readonly state: Reachability;
  /** When it was last heard (heartbeat or probe answer). */
  readonly lastHeard: number;
  /** When it entered its current state. */
  readonly since: number;
  /** When it was last probed, while late. */
  readonly probedAt: number | undefined;
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
  readonly phase: "joining" | "member";
  readonly linkUp: boolean;
  readonly startedAt: number;
  readonly lastTick: number;
  /** Keyed by node id (as a string, so the context stays plain CBOR-able data). */
  readonly peers: Readonly<Record<string, PeerRecord>>;
  readonly view: View;
  /** Size of the last view in which every known live member was reachable. */
  readonly fullViewSize: number;
  readonly minority: boolean;
  /** While joining: the highest view heard, so the first view continues the cluster's numbering. */
  readonly heardView: ViewSummary | undefined;
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
  /** Something outside the heartbeats (NATS's DISCONNECT advisory) says node `node` may be gone: probe it now. */
  | { type: "peer.suspected"; node: number; at: number }
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

/** What one step leads to: the next context, and what the runtime must do. */
export interface MembershipStepResult {
  readonly context: MembershipContext;
  readonly outputs: MembershipOutput[];
}

/**
 * The context one step builds, starting as a shallow copy of the one it was
 * given. The peer table is copied at the step's first change to a peer, and a
 * changed peer is a new record: the given context is never written to, and the
 * peers the step leaves alone stay shared between the two. (A copy of every
 * peer on every heartbeat would make each one cost the whole table twice.)
 */
class NextContext {
  readonly ctx: { -readonly [K in keyof MembershipContext]: MembershipContext[K] };
  readonly out: MembershipOutput[] = [];
  #ownsPeers = false;

  constructor(from: MembershipContext) {
    this.ctx = { ...from };
  }

  /** Gives `key` the record `peer`, or adds it. */
  setPeer(key: string | number, peer: PeerRecord): void {
    if (!this.#ownsPeers) {
      this.ctx.peers = { ...this.ctx.peers };
      this.#ownsPeers = true;
    }
    (this.ctx.peers as Record<string, PeerRecord>)[key] = peer;
  }

  /** The record of `key` with `changes` applied, now in the table. */
  changePeer(key: string | number, peer: PeerRecord, changes: Partial<PeerRecord>): PeerRecord {
    const changed = { ...peer, ...changes };
    this.setPeer(key, changed);
    return changed;
  }

  forgetPeers(): void {
    this.ctx.peers = {};
    this.#ownsPeers = true;
  }
}

/**
 * One step of the membership logic: the context after `event`, and what the
 * runtime must do. Never writes to `ctx` or anything reachable from it.
 */
export function step(ctx: MembershipContext, event: MembershipEvent): MembershipStepResult {
  const next = new NextContext(ctx);
  apply(next, event);
  return { context: next.ctx, outputs: next.out };
}

function apply(next: NextContext, event: MembershipEvent): void {
  const { ctx } = next;
  const announce = (name: ViewEventName, changed: Member[], cause: string, at: number) => {
    if (ctx.phase === "joining") return; // the first view is announced when the join window closes
    commitView(next, name, changed, cause, at);
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
        if (listedDown && handleListedDown(next, event)) break;
      }
      const peer = ctx.peers[from.node];
      if (!peer) {
        next.setPeer(from.node, heardAt(from, at));
        announce("JOIN", [from], "new node", at);
      } else if (from.incarnation < peer.incarnation) {
        // A late message from an incarnation that is already gone.
      } else if (from.incarnation > peer.incarnation) {
        // A restart: the old incarnation leaves the view first, then the new one enters it.
        const wasLive = peer.state !== "down";
        if (wasLive) {
          const old: Member = { node: from.node, incarnation: peer.incarnation };
          next.changePeer(from.node, peer, { state: "down", since: at });
          announce("DISCONNECT", [old], "restarted as a new incarnation", at);
        }
        next.setPeer(from.node, heardAt(from, at));
        announce("JOIN", [from], wasLive ? "restarted" : "rejoined as a new incarnation", at);
      } else if (peer.state === "down") {
        // Declared down: not merged back. Our heartbeats list it, so it learns and rejoins.
      } else {
        const wasUnreachable = peer.state === "unreachable";
        // The heartbeat path, N times a period: one new record, no spread.
        next.setPeer(from.node, {
          incarnation: peer.incarnation,
          state: "alive",
          lastHeard: at,
          since: peer.state === "alive" ? peer.since : at,
          probedAt: undefined,
        });
        if (wasUnreachable) announce("MERGE", [from], "reachable again", at);
      }
      if (event.type === "peer.heartbeat") {
        // While joining, start numbering from the highest id the cluster has
        // reached, so our first view and the others' next one carry the same id.
        if (ctx.phase === "joining" && event.view.id > (ctx.heardView?.id ?? ctx.view.id)) {
          ctx.heardView = { ...event.view };
        }
        syncViewId(next, event.from, event.view);
      }
      break;
    }

    case "peer.leave": {
      const peer = ctx.peers[event.from.node];
      if (!peer || peer.incarnation !== event.from.incarnation || peer.state === "down") break;
      const wasMember = peer.state === "alive" || peer.state === "suspect";
      next.changePeer(event.from.node, peer, { state: "down", since: event.at });
      // A member that leaves on purpose no longer counts toward a majority.
      if (wasMember) ctx.fullViewSize = Math.max(1, ctx.fullViewSize - 1);
      announce("DISCONNECT", [event.from], "left", event.at);
      break;
    }

    case "probe.noResponders": {
      const peer = ctx.peers[event.peer.node];
      if (!ctx.linkUp || !peer || peer.incarnation !== event.peer.incarnation) break;
      if (peer.state !== "alive" && peer.state !== "suspect") break;
      next.changePeer(event.peer.node, peer, { state: "unreachable", since: event.at });
      announce("PARTITION", [event.peer], "no responders: its subscriptions are gone", event.at);
      break;
    }

    case "peer.suspected": {
      const peer = ctx.peers[event.node];
      if (!ctx.linkUp || !peer || (peer.state !== "alive" && peer.state !== "suspect")) break;
      const changed = next.changePeer(event.node, peer, { probedAt: event.at });
      next.out.push({ type: "probe", peer: memberOf(String(event.node), changed) });
      break;
    }

    case "link.down": {
      ctx.linkUp = false;
      if (ctx.phase === "joining") {
        // Nothing was announced about them yet: forget them, and hear them again after the link is back.
        next.forgetPeers();
        ctx.heardView = undefined;
        break;
      }
      const lost = markUnreachable(next, event.at);
      if (lost.length) announce("PARTITION", lost, "lost own NATS link", event.at);
      break;
    }

    case "link.up":
      ctx.linkUp = true;
      break;

    case "clock.tick":
      tick(next, event.at);
      break;
  }
}

/** A peer incarnation heard for the first time at `at`. */
const heardAt = (from: Member, at: number): PeerRecord => ({
  incarnation: from.incarnation,
  state: "alive",
  lastHeard: at,
  since: at,
  probedAt: undefined,
});

const memberOf = (key: string, peer: PeerRecord): Member => ({
  node: Number(key),
  incarnation: peer.incarnation,
});

function tick(next: NextContext, at: number): void {
  const { ctx } = next;
  const t = ctx.timings;
  const gap = at - ctx.lastTick;
  ctx.lastTick = at;
  if (gap > Math.max(3 * t.tickMs, t.heartbeatMs)) {
    // This node itself was stalled (overload, SIGSTOP): the silence is ours, not
    // the peers'. Credit them the stall and let queued heartbeats arrive first.
    const credit = gap - t.tickMs;
    for (const [key, peer] of Object.entries(ctx.peers)) {
      next.changePeer(key, peer, { lastHeard: peer.lastHeard + credit, since: peer.since + credit });
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
    commitView(next, "JOIN", joined, "started", at);
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
        newlyUnreachable.push(memberOf(key, next.changePeer(key, peer, { state: "unreachable", since: at })));
        continue;
      }
      const suspect = peer.state === "alive" && silence >= t.suspectAfterMissed * t.heartbeatMs;
      const probe =
        ctx.linkUp &&
        silence >= t.probeAfterMs &&
        (peer.probedAt === undefined || at - peer.probedAt >= t.heartbeatMs);
      if (suspect || probe) {
        const changed = next.changePeer(key, peer, {
          ...(suspect ? { state: "suspect", since: at } : {}),
          ...(probe ? { probedAt: at } : {}),
        });
        if (probe) next.out.push({ type: "probe", peer: memberOf(key, changed) });
      }
    } else if (peer.state === "unreachable" && at - peer.since >= t.downAfterMs) {
      newlyDown.push(memberOf(key, next.changePeer(key, peer, { state: "down", since: at })));
    }
  }
  if (newlyUnreachable.length) commitView(next, "PARTITION", newlyUnreachable, "stopped answering", at);
  if (newlyDown.length) commitView(next, "DISCONNECT", newlyDown, "unreachable longer than downAfter", at);
}

/**
 * A heartbeat says we were declared down. If we also lost the sender (mutual
 * partition), the winning component stays and declares the sender down;
 * otherwise this node rejoins as a new incarnation. Returns true when the
 * heartbeat must not be processed further.
 */
function handleListedDown(
  next: NextContext,
  event: Extract<MembershipEvent, { type: "peer.heartbeat" }>,
): boolean {
  const { ctx } = next;
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
      next.changePeer(event.from.node, peer, { state: "down", since: event.at });
      if (ctx.phase === "member") {
        commitView(next, "DISCONNECT", [event.from], "declared us down; its side rejoins", event.at);
      }
    }
    return true;
  }
  next.out.push({ type: "rejoin", reason: `declared down by node ${event.from.node}`, viewId: ctx.view.id });
  return true;
}

/** Every live peer becomes unreachable (this node lost its own link); returns them. */
function markUnreachable(next: NextContext, at: number): Member[] {
  const lost: Member[] = [];
  for (const [key, peer] of Object.entries(next.ctx.peers)) {
    if (peer.state === "alive" || peer.state === "suspect") {
      next.changePeer(key, peer, { state: "unreachable", since: at });
      lost.push({ node: Number(key), incarnation: peer.incarnation });
    }
  }
  return lost;
}

/** Every announced change is a new view: its id grows by one. */
function commitView(
  next: NextContext,
  event: ViewEventName,
  changed: Member[],
  cause: string,
  at: number,
): void {
  const { ctx } = next;
  const members = membersOf(ctx);
  const view = { id: ctx.view.id + 1, members };
  ctx.view = view;
  // The last full view only shrinks where this node holds a majority of it (or
  // by graceful leaves, see peer.leave): a minority that declares the others
  // down must not come to see itself as the whole cluster.
  const unreachable = Object.values(ctx.peers).some((p) => p.state === "unreachable");
  if (!unreachable && (members.length >= ctx.fullViewSize || members.length * 2 > ctx.fullViewSize)) {
    ctx.fullViewSize = members.length;
  }
  ctx.minority = ctx.quorum && members.length * 2 <= ctx.fullViewSize && ctx.fullViewSize > 1;
  next.out.push({ type: "announce", change: { event, view, changed, cause, at } });
}

/**
 * Nodes that agree on the members converge on one view id: the highest any of
 * them has reached. Adopting a higher id is not a change of members, so it is
 * not announced.
 */
function syncViewId(next: NextContext, from: Member, view: ViewSummary): void {
  const { ctx } = next;
  if (ctx.phase !== "member" || view.id <= ctx.view.id) return;
  const peer = ctx.peers[from.node];
  if (!peer || peer.incarnation !== from.incarnation || peer.state === "down" || peer.state === "unreachable")
    return;
  if (sameSummary(view, ctx.view.members)) ctx.view = { id: view.id, members: ctx.view.members };
}

export type MembershipStep = (ctx: MembershipContext, event: MembershipEvent) => MembershipStepResult;

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
      /**
       * The step's next context. A named assign, made once here: `enqueue.assign`
       * would create one per event, which XState warns about whenever the event
       * arrives from inside another actor's action.
       */
      setContext: assign((_, params: MembershipContext) => params),
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
          const { context: next, outputs } = stepFn(context, event);
          enqueue({ type: "setContext", params: next });
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
