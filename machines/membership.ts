// The membership view of one node (SPEC 4): per-peer reachability
// (alive → suspect → unreachable → down), the view `{ id, members }`, and the
// view changes it announces (JOIN, DISCONNECT, PARTITION, MERGE), one per
// change. Liveness without all-to-all heartbeats (issue 20): a node hears the
// heartbeats of the few peers it observes (machines/observers.ts), probes them
// when late, and broadcasts an alert when one changes; everyone else changes
// its view on the alert. A component's leader beacons its members once a
// period, which is how joiners learn the cluster, how a component learns it
// agrees, and how two components find each other after a heal.
// Pure: time arrives in events (`at`), each step returns the next context
// without touching the last, and every effect is an output the runtime
// (actors/membership.ts) carries out.
import { assign, enqueueActions, setup } from "xstate";
import {
  initialContext,
  isLive,
  type Member,
  type MembershipContext,
  type MembershipEvent,
  type MembershipInput,
  type MembershipOutput,
  NextContext,
  type PeerRecord,
  type ViewChange,
  type ViewEventName,
} from "./membershipContext.js";
import { tick } from "./membershipTick.js";
import { notProvided } from "./notProvided.js";
import { observersOf } from "./observers.js";
import { summarize, type ViewSummary } from "./view.js";

/** The cause of the DISCONNECT of a member that left on purpose (DVSEND, a graceful stop). */
export const LEFT_CAUSE = "left";
export * from "./membershipContext.js";
export { nextDeadline } from "./membershipTick.js";
export { membersDigest, summarize, type View, type ViewSummary } from "./view.js";

/** The members a node's own peer table puts in its view: itself and every alive or suspect peer. */
export function membersOf(ctx: Pick<MembershipContext, "self" | "peers">): number[] {
  const members = [ctx.self.node];
  for (const node in ctx.peers) if (isLive(ctx.peers[node])) members.push(Number(node));
  return members.sort((a, b) => a - b);
}

/** The incarnations a node has declared down, as its heartbeats and beacons carry them. */
export function downList(ctx: Pick<MembershipContext, "peers">): Member[] {
  const down: Member[] = [];
  for (const [node, peer] of Object.entries(ctx.peers)) {
    if (peer.state === "down") down.push({ node: Number(node), incarnation: peer.incarnation });
  }
  return down;
}

/** The members of a view with their incarnations, as a beacon carries them. */
export function viewMembers(ctx: Pick<MembershipContext, "self" | "peers" | "view">): Member[] {
  return ctx.view.members.map((node) =>
    node === ctx.self.node ? ctx.self : { node, incarnation: ctx.peers[node]?.incarnation ?? 0 },
  );
}

/** Whether this node leads its component: the smallest member of its view publishes the beacon. */
export const leads = (ctx: Pick<MembershipContext, "phase" | "view" | "self" | "linkUp">): boolean =>
  ctx.phase === "member" && ctx.linkUp && ctx.view.members[0] === ctx.self.node;

/**
 * When two components have declared each other down, exactly one must rejoin
 * as new incarnations. Both sides evaluate this with the views their
 * messages carry, so they agree: the larger view wins, then the one with
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
 * One step of the membership logic: the context after `event`, and what the
 * runtime must do. Never writes to `ctx` or anything reachable from it.
 */
export function step(ctx: MembershipContext, event: MembershipEvent): MembershipStepResult {
  const next = new NextContext(ctx, event.at);
  apply(next, event);
  return { context: next.ctx, outputs: next.out };
}

/** How a node was heard: by this node's own observation, or by a broadcast everyone got. */
type Heard = "observed" | "broadcast" | "reported";

function apply(next: NextContext, event: MembershipEvent): void {
  const { ctx } = next;
  switch (event.type) {
    case "peer.heartbeat": {
      if (event.from.node === ctx.self.node) break;
      if (listsUs(ctx, event.down) && handleListedDown(next, event.from, event.view, event.at)) break;
      heard(next, event.from, event.at, "observed");
      noteView(next, event.from, event.view);
      break;
    }

    case "probe.answered":
      if (event.from.node === ctx.self.node) break;
      heard(next, event.from, event.at, "observed");
      break;

    case "peer.hello": {
      if (event.from.node === ctx.self.node) break;
      const known = ctx.peers[event.from.node];
      if (tellDown(next, event.from)) break;
      heard(next, event.from, event.at, "broadcast");
      noteView(next, event.from, event.view);
      // A newcomer learns the members from the leader's beacon: send it now.
      if ((known === undefined || known.incarnation < event.from.incarnation) && leads(ctx)) {
        next.out.push({ type: "beacon" });
      }
      break;
    }

    case "peer.alert":
      onAlert(next, event);
      break;

    case "peer.beacon":
      onBeacon(next, event);
      break;

    case "peer.leave": {
      const peer = ctx.peers[event.from.node];
      if (!peer || peer.incarnation !== event.from.incarnation || peer.state === "down") break;
      const wasMember = isLive(peer);
      next.changePeer(event.from.node, peer, { state: "down", since: event.at });
      // A member that leaves on purpose no longer counts toward a majority.
      if (wasMember) ctx.fullViewSize = Math.max(1, ctx.fullViewSize - 1);
      announce(next, "DISCONNECT", [event.from], LEFT_CAUSE);
      break;
    }

    case "probe.noResponders": {
      const peer = ctx.peers[event.peer.node];
      if (!ctx.linkUp || !peer || peer.incarnation !== event.peer.incarnation) break;
      if (isLive(peer)) partition(next, event.peer, peer, "no responders: its subscriptions are gone");
      else reassert(next, event.peer, peer);
      break;
    }

    case "probe.timedOut":
      // A timeout says nothing new: the peer may be slow (a node starting, an
      // overloaded host) or the link cut. Only "no responders" is evidence; a
      // watched peer's silence is judged by its heartbeats. (Acting on
      // timeouts made probes, alerts and more probes feed each other on a
      // loaded machine.)
      break;

    case "peer.suspected": {
      const peer = ctx.peers[event.node];
      const watch = ctx.watch[event.node];
      if (!ctx.linkUp || !peer || !watch || !isLive(peer)) break;
      next.setWatch(event.node, { lastHeard: watch.lastHeard, probedAt: event.at });
      next.out.push({ type: "probe", peer: { node: event.node, incarnation: peer.incarnation } });
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
      const lost: Member[] = [];
      for (const [key, peer] of Object.entries(ctx.peers)) {
        if (isLive(peer))
          lost.push({
            node: Number(key),
            incarnation: next.changePeer(key, peer, { state: "unreachable", since: event.at }).incarnation,
          });
      }
      if (lost.length) announce(next, "PARTITION", lost, "lost own NATS link");
      break;
    }

    case "link.up":
      ctx.linkUp = true;
      next.out.push({ type: "hello" });
      // What this node lost with its own link, others may still count as members:
      // check the peers it watches first-hand, and say what it finds (reassert).
      for (const node of ctx.watching) {
        const peer = ctx.peers[node];
        if (peer?.state === "unreachable")
          next.out.push({ type: "probe", peer: { node, incarnation: peer.incarnation } });
      }
      break;

    case "clock.tick":
      tick(next, event.at, { commitView, partition }, event.due);
      break;
  }
}

const listsUs = (ctx: MembershipContext, down: readonly Member[]): boolean =>
  down.some((m) => m.node === ctx.self.node && m.incarnation === ctx.self.incarnation);

function announce(next: NextContext, name: ViewEventName, changed: Member[], cause: string): void {
  // While joining nothing is announced: the first view is, when the join window closes.
  if (next.ctx.phase === "joining") return;
  commitView(next, name, changed, cause, next.at);
}

/**
 * A live peer becomes unreachable: a PARTITION, and an alert to everyone. A
 * joining node has announced nothing about it: it forgets it instead, and
 * hears it again if it is there.
 */
function partition(next: NextContext, member: Member, peer: PeerRecord, cause: string): void {
  if (next.ctx.phase === "joining") {
    next.deletePeer(member.node);
    return;
  }
  next.changePeer(member.node, peer, { state: "unreachable", since: next.at });
  announce(next, "PARTITION", [member], cause);
  // Only an observer speaks for a node: another that found it gone by its own
  // probe keeps it to itself (the observers say it, or the others probe too).
  if (member.node in next.ctx.watch)
    next.out.push({ type: "alert", about: member, state: "unreachable", cause });
}

/**
 * A node this one declared down speaks (its hello or beacon): tell it, so it
 * rejoins as a new incarnation — it may hear nobody else that declared it
 * down. Returns true when the message must not be processed further.
 */
function tellDown(next: NextContext, from: Member): boolean {
  const peer = next.ctx.peers[from.node];
  if (peer?.incarnation !== from.incarnation || peer.state !== "down") return false;
  if (next.ctx.phase === "member" && next.ctx.linkUp) {
    next.out.push({ type: "alert", about: from, state: "down", cause: "declared down before" });
  }
  return true;
}

/**
 * A peer this node watches and holds unreachable did not answer a probe
 * either: say so, for the members that may still count it in (they lost
 * their own link, or missed the first alert).
 */
function reassert(next: NextContext, member: Member, peer: PeerRecord): void {
  if (peer.state !== "unreachable" || next.ctx.phase !== "member" || !(member.node in next.ctx.watch)) return;
  next.out.push({ type: "alert", about: member, state: "unreachable", cause: "still unreachable" });
}

/**
 * Node `from` was heard at `at`: a JOIN when it is new, a DISCONNECT of the old
 * incarnation and a JOIN when it restarted, a MERGE when it was unreachable.
 * An observer that merges a peer it watches says so to everyone.
 */
function heard(next: NextContext, from: Member, at: number, how: Heard): void {
  const { ctx } = next;
  const peer = ctx.peers[from.node];
  const watch = ctx.watch[from.node];
  if (watch !== undefined && (peer === undefined || peer.incarnation <= from.incarnation)) {
    next.setWatch(from.node, { lastHeard: at, probedAt: undefined });
  }
  if (!peer) {
    next.setPeer(from.node, { incarnation: from.incarnation, state: "alive", since: at });
    announce(next, "JOIN", [from], how === "reported" ? "reported by an observer" : "new node");
  } else if (from.incarnation < peer.incarnation) {
    // A late message from an incarnation that is already gone.
  } else if (from.incarnation > peer.incarnation) {
    // A restart: the old incarnation leaves the view first, then the new one enters it.
    const wasLive = peer.state !== "down";
    if (wasLive) {
      next.changePeer(from.node, peer, { state: "down", since: at });
      announce(
        next,
        "DISCONNECT",
        [{ node: from.node, incarnation: peer.incarnation }],
        "restarted as a new incarnation",
      );
    }
    next.setPeer(from.node, { incarnation: from.incarnation, state: "alive", since: at });
    announce(next, "JOIN", [from], wasLive ? "restarted" : "rejoined as a new incarnation");
    // Those that missed its hello learn the new incarnation from its observers.
    if (how === "observed" && ctx.phase === "member") {
      next.out.push({ type: "alert", about: from, state: "alive", cause: "a new incarnation" });
    }
  } else if (peer.state === "down") {
    // Declared down: not merged back. The beacons list it, so it learns and rejoins.
  } else if (peer.state === "unreachable") {
    next.setPeer(from.node, { incarnation: peer.incarnation, state: "alive", since: at });
    announce(
      next,
      "MERGE",
      [from],
      how === "reported" ? "reported reachable by an observer" : "reachable again",
    );
    if (how === "observed" && ctx.phase === "member") {
      next.out.push({ type: "alert", about: from, state: "alive", cause: "reachable again" });
    }
  } else if (peer.state === "suspect") {
    next.setPeer(from.node, { incarnation: peer.incarnation, state: "alive", since: at });
  }
}

/** What a message says of its sender's view: the first view's numbering while joining, the id to adopt after. */
function noteView(next: NextContext, from: Member, view: ViewSummary): void {
  const { ctx } = next;
  // While joining, start numbering from the highest id the cluster has
  // reached, so our first view and the others' next one carry the same id.
  if (ctx.phase === "joining") {
    if (view.id > (ctx.heardView?.id ?? ctx.view.id)) ctx.heardView = { ...view };
    return;
  }
  // Nodes that agree on the members converge on one view id: the highest any
  // of them has reached. Adopting a higher id is not a change of members.
  if (view.id <= ctx.view.id) return;
  const peer = ctx.peers[from.node];
  if (!peer || peer.incarnation !== from.incarnation || !isLive(peer)) return;
  if (view.size === ctx.summary.size && view.digest === ctx.summary.digest) {
    ctx.view = { id: view.id, members: ctx.view.members };
    ctx.summary = { ...ctx.summary, id: view.id };
  }
}

function onAlert(next: NextContext, event: Extract<MembershipEvent, { type: "peer.alert" }>): void {
  const { ctx } = next;
  const { from, about, at } = event;
  if (from.node === ctx.self.node) return;
  if (about.node === ctx.self.node) {
    if (about.incarnation !== ctx.self.incarnation) return;
    if (event.state === "down") handleListedDown(next, from, event.view, at);
    // An observer lost us while we are here: say so, and everyone that hears it merges us back.
    else if (event.state === "unreachable" && ctx.linkUp) next.out.push({ type: "hello" });
    return;
  }
  const sender = ctx.peers[from.node];
  if (sender?.incarnation === from.incarnation && sender.state === "down") return; // a declared-down node's word counts for nothing
  heard(next, from, at, "broadcast");
  const peer = ctx.peers[about.node];
  // An event's cause is at most 256 characters, whatever the alert said.
  const cause = `node ${from.node}: ${event.cause}`.slice(0, 256);
  switch (event.state) {
    case "unreachable":
      if (peer?.incarnation !== about.incarnation || !isLive(peer)) break;
      if (ctx.phase === "joining") next.deletePeer(about.node);
      else if (!observes(ctx, from.node, about.node)) {
        // Only an observer of a node speaks for it; another's word is checked first-hand.
        if (ctx.linkUp) next.out.push({ type: "probe", peer: about });
      } else {
        next.changePeer(about.node, peer, { state: "unreachable", since: at });
        announce(next, "PARTITION", [about], cause);
      }
      break;
    case "alive":
      if (peer === undefined || peer.incarnation < about.incarnation || peer.state === "unreachable") {
        heard(next, about, at, "reported");
      }
      break;
    case "down":
      if (peer === undefined) {
        next.setPeer(about.node, { incarnation: about.incarnation, state: "down", since: at });
      } else if (peer.incarnation === about.incarnation && peer.state === "unreachable") {
        next.changePeer(about.node, peer, { state: "down", since: at });
        announce(next, "DISCONNECT", [about], cause);
      } else if (
        peer.incarnation === about.incarnation &&
        isLive(peer) &&
        ctx.phase === "member" &&
        ctx.linkUp
      ) {
        // A member this node still holds live is not declared down on another's
        // word: it is checked first-hand (if it is gone, the probe says so; if it
        // is there, the alert reached it too, and it rejoins as a new incarnation).
        next.out.push({ type: "probe", peer: about });
      }
      break;
  }
}

/** Whether `observer` is one of `node`'s observers on this node's ring (or the ring is being rebuilt). */
function observes(ctx: MembershipContext, observer: number, node: number): boolean {
  if (ctx.ringDirtyAt !== undefined) return true;
  const reachable = (n: number) => n === ctx.self.node || isLive(ctx.peers[n]);
  return observersOf(ctx.ring, node, reachable, ctx.timings.observers).includes(observer);
}

function onBeacon(next: NextContext, event: Extract<MembershipEvent, { type: "peer.beacon" }>): void {
  const { ctx } = next;
  const { from, at } = event;
  if (from.node === ctx.self.node) return;
  if (listsUs(ctx, event.down) && handleListedDown(next, from, event.view, at)) return;
  if (tellDown(next, from)) return;
  heard(next, from, at, "broadcast");
  noteView(next, from, event.view);
  if (!isLive(ctx.peers[from.node])) return;
  // Anti-entropy: members the leader has that we lack join; incarnations we
  // declared down are declared down again; members we hold unreachable are
  // probed (a few a beacon), and merged if they answer.
  let listsSelf = false;
  let probes = 0;
  // Probing costs a bounded amount a beacon period, however many beacons arrive (a cluster starting splits into many).
  const mayProbe =
    ctx.linkUp && ctx.phase === "member" && at - (ctx.probedForBeaconAt ?? -Infinity) >= ctx.timings.beaconMs;
  const maxProbes = mayProbe ? BEACON_PROBES * ctx.timings.observers : 0;
  const newcomers: Member[] = [];
  // A beacon of our own view (members "same") lists us and nothing we lack: nothing to walk.
  if (event.members === "same") listsSelf = true;
  const members = event.members === "same" ? [] : event.members;
  for (const m of members) {
    if (m.node === ctx.self.node) {
      listsSelf ||= m.incarnation === ctx.self.incarnation;
      continue;
    }
    const peer = ctx.peers[m.node];
    if (peer === undefined) {
      // Every member it has that we never heard of: one JOIN of them all.
      next.setPeer(m.node, { incarnation: m.incarnation, state: "alive", since: at });
      newcomers.push(m);
    } else if (peer.incarnation < m.incarnation) heard(next, m, at, "reported");
    else if (peer.incarnation !== m.incarnation || ctx.phase !== "member") continue;
    else if (peer.state === "down") {
      next.out.push({ type: "alert", about: m, state: "down", cause: "declared down before" });
    } else if (peer.state === "unreachable" && probes < maxProbes) {
      next.out.push({ type: "probe", peer: m });
      probes++;
    }
  }
  if (newcomers.length) announce(next, "JOIN", newcomers, `members of node ${from.node}'s view`);
  if (ctx.phase !== "member") return;
  // A member's beacon should list us: if not, it missed our hello.
  if (!listsSelf) next.out.push({ type: "hello" });
  if (event.members === "same") return;
  if (event.view.digest === ctx.summary.digest && event.members.length === ctx.view.members.length) return;
  // Members we have that it lacks, and that no heartbeat of ours vouches for:
  // probe a few each beacon (its leader may be dead and watched by nobody who
  // knows it, or they left while we were not listening).
  const listed = new Set(event.members.map((m) => m.node));
  const ours = ctx.view.members;
  const start = ours.indexOf(ctx.self.node);
  for (let i = 1; i < ours.length && probes < maxProbes; i++) {
    const node = ours[(start + i) % ours.length] as number;
    const peer = ctx.peers[node];
    if (listed.has(node) || !peer || node in ctx.watch) continue;
    next.out.push({ type: "probe", peer: { node, incarnation: peer.incarnation } });
    probes++;
  }
  if (probes > 0) ctx.probedForBeaconAt = at;
}

/** Members a beacon lacks that one node probes per beacon, in observers (K): bounded work whatever the split. */
const BEACON_PROBES = 2;

/**
 * A message says we were declared down. If we also lost the sender (mutual
 * partition), the winning component stays and declares the sender down;
 * otherwise this node rejoins as a new incarnation. Returns true when the
 * message must not be processed further.
 */
function handleListedDown(next: NextContext, from: Member, view: ViewSummary, at: number): boolean {
  const { ctx } = next;
  const peer = ctx.peers[from.node];
  const mutual =
    peer !== undefined &&
    peer.incarnation === from.incarnation &&
    (peer.state === "unreachable" || peer.state === "down");
  if (mutual && componentWins(ctx.summary, ctx.self.node, view, from.node)) {
    if (peer.state !== "down") {
      next.changePeer(from.node, peer, { state: "down", since: at });
      if (ctx.phase === "member") {
        const cause = "declared us down; its side rejoins";
        commitView(next, "DISCONNECT", [from], cause, at);
        next.out.push({ type: "alert", about: from, state: "down", cause });
      }
    }
    return true;
  }
  next.out.push({ type: "rejoin", reason: `declared down by node ${from.node}`, viewId: ctx.view.id });
  return true;
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
  ctx.summary = summarize(view, ctx.self.node);
  // The last full view only shrinks where this node holds a majority of it (or
  // by graceful leaves, see peer.leave): a minority that declares the others
  // down must not come to see itself as the whole cluster.
  if (
    ctx.unreachable.length === 0 &&
    (members.length >= ctx.fullViewSize || members.length * 2 > ctx.fullViewSize)
  ) {
    ctx.fullViewSize = members.length;
  }
  ctx.minority = ctx.quorum && members.length * 2 <= ctx.fullViewSize && ctx.fullViewSize > 1;
  next.out.push({ type: "announce", change: { event, view, changed, cause, at } });
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
      output: notProvided("action output") as (_: unknown, params: MembershipOutput) => void,
    },
  }).createMachine({
    id: "membership",
    context: ({ input }) => initialContext(input),
    // One state: whether the node is joining, a member or cut off is its
    // context's `phase` and `linkUp`, read by everyone from there. (Eventless
    // transitions that mirrored them cost a third of every step.)
    on: {
      "*": {
        actions: enqueueActions(({ context, event, enqueue }) => {
          const { context: next, outputs } = stepFn(context, event);
          enqueue({ type: "setContext", params: next });
          for (const o of outputs) enqueue({ type: "output", params: o });
        }),
      },
    },
  });

export const membershipMachine = createMembershipMachine();

export type MembershipMachine = typeof membershipMachine;

export type { ViewChange };
