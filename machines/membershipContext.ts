// The membership machine's data (SPEC 4): timings, the context one node holds,
// the events it takes and the outputs it asks the runtime for, and the
// copy-on-write builder a step uses. Pure data and functions.

import type { AlertState } from "../protocol/membershipMessages.js";
import type { Member, MembershipEventName } from "../protocol/messages.js";
import { summarize, type View, type ViewSummary } from "./view.js";

export type Reachability = "alive" | "suspect" | "unreachable" | "down";
export type ViewEventName = MembershipEventName;
export type { AlertState, Member };

/** What this node knows of one peer incarnation. Changes only when its state does. */
export interface PeerRecord {
  readonly incarnation: number;
  readonly state: Reachability;
  /** When it entered its current state. */
  readonly since: number;
}

/** What an observer tracks of a node it watches: changes with every heartbeat. */
export interface Watch {
  /** When it was last heard (heartbeat, probe answer, broadcast). */
  readonly lastHeard: number;
  /** When it was last probed, while late. */
  readonly probedAt: number | undefined;
}

export interface MembershipTimings {
  readonly heartbeatMs: number;
  /** Missed heartbeats before a watched peer is suspect (still in the view). */
  readonly suspectAfterMissed: number;
  /** Missed heartbeats before a silent watched peer is unreachable (PARTITION). */
  readonly unreachableAfterMissed: number;
  /** How long a peer may stay unreachable before it is declared down (DISCONNECT). */
  readonly downAfterMs: number;
  /** Silence after which a watched peer is probed, so NATS can say at once that it is gone. */
  readonly probeAfterMs: number;
  /** How long a starting node listens before announcing its first view. */
  readonly joinWindowMs: number;
  /** Observers per node (K): each node is watched by this many others. */
  readonly observers: number;
  /** How often a component's leader publishes its beacon. */
  readonly beaconMs: number;
}

export const defaultTimings = (heartbeatMs = 200): MembershipTimings => ({
  heartbeatMs,
  suspectAfterMissed: 3,
  unreachableAfterMissed: 5,
  downAfterMs: 5_000,
  probeAfterMs: Math.round(heartbeatMs * 1.25),
  joinWindowMs: Math.round(heartbeatMs * 1.5),
  observers: 5,
  beaconMs: Math.max(heartbeatMs, 1_000),
});

/** How long a change of who-watches-whom waits for more changes before the ring is rebuilt. */
export const RING_SETTLE_MS = 5;

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
  /** When the last clock event arrived: a long gap means this node itself was stalled. */
  readonly lastTick: number;
  /** Keyed by node id (as a string, so the context stays plain CBOR-able data). */
  readonly peers: Readonly<Record<string, PeerRecord>>;
  /** The peers this node observes (at most `observers` reachable ones, plus unreachable ones between). */
  readonly watch: Readonly<Record<string, Watch>>;
  /** The watched node ids, sorted: a new array only when the set changes. */
  readonly watching: readonly number[];
  /** The ring the watch set was computed on (every node known and not down). */
  readonly ring: readonly number[];
  /** Since when the ring is out of date (a peer came, went or changed reachability), if it is. */
  readonly ringDirtyAt: number | undefined;
  /** Peers in state unreachable: the only ones with a DISCONNECT timer. */
  readonly unreachable: readonly number[];
  readonly view: View;
  /** `summarize(view)`, kept with it. */
  readonly summary: ViewSummary;
  /** Size of the last view in which every known live member was reachable. */
  readonly fullViewSize: number;
  readonly minority: boolean;
  /** While joining: the highest view heard, so the first view continues the cluster's numbering. */
  readonly heardView: ViewSummary | undefined;
  /** While joining: whether the hello was said again halfway through the window (for nodes that started with us). */
  readonly helloAgain: boolean;
  /** When members a beacon lacked were last probed (a bounded number a beacon period). */
  readonly probedForBeaconAt: number | undefined;
  /**
   * Local health (Lifeguard): 0 when this node's own ticks come on time, up to
   * MAX_LOCAL_HEALTH when they come late. Silence is judged against timeouts
   * multiplied by (1 + localHealth): an overloaded node waits longer before it
   * accuses a peer. Probes are not slowed: "no responders" is NATS's word, not ours.
   */
  readonly localHealth: number;
  /** When localHealth last changed. */
  readonly localHealthAt: number;
}

export const MAX_LOCAL_HEALTH = 4;

export interface ViewChange {
  readonly event: ViewEventName;
  readonly view: View;
  readonly changed: readonly Member[];
  readonly cause: string;
  readonly at: number;
}

export type MembershipEvent =
  | {
      /** From a node this one watches, on `_hb.<node>`. */
      type: "peer.heartbeat";
      from: Member;
      /** The sender's view, summarized. */
      view: ViewSummary;
      /** Incarnations the sender has declared down. */
      down: readonly Member[];
      at: number;
    }
  | { type: "peer.hello"; from: Member; view: ViewSummary; at: number }
  | {
      type: "peer.alert";
      from: Member;
      view: ViewSummary;
      about: Member;
      state: AlertState;
      cause: string;
      at: number;
    }
  | {
      type: "peer.beacon";
      from: Member;
      view: ViewSummary;
      /** The sender's members; "same" when its view summary is this node's own (the runtime did not read them). */
      members: readonly Member[] | "same";
      down: readonly Member[];
      at: number;
    }
  | { type: "peer.leave"; from: Member; at: number }
  | { type: "probe.answered"; from: Member; at: number }
  | { type: "probe.noResponders"; peer: Member; at: number }
  | { type: "probe.timedOut"; peer: Member; at: number }
  /** Something outside the heartbeats (NATS's DISCONNECT advisory) says node `node` may be gone: probe it now. */
  | { type: "peer.suspected"; node: number; at: number }
  /** `due`: when the runtime meant the tick to come; a tick much later says this node is overloaded. */
  | { type: "clock.tick"; at: number; due?: number }
  | { type: "link.down"; at: number }
  | { type: "link.up"; at: number };

export type MembershipOutput =
  | { type: "announce"; change: ViewChange }
  | { type: "probe"; peer: Member }
  | { type: "rejoin"; reason: string; viewId: number }
  /** Broadcast an observer's alert about `about`. */
  | { type: "alert"; about: Member; state: AlertState; cause: string }
  /** Broadcast a hello: this node is here (a refutation, or its leader's beacon missed it). */
  | { type: "hello" }
  /** This node leads its component and should publish its beacon soon (a new node said hello). */
  | { type: "beacon" };

export function initialContext(input: MembershipInput): MembershipContext {
  const view = { id: input.viewId ?? 0, members: [input.self.node] };
  return {
    self: input.self,
    timings: input.timings,
    quorum: input.quorum,
    phase: "joining",
    linkUp: true,
    startedAt: input.at,
    lastTick: input.at,
    peers: {},
    watch: {},
    watching: [],
    ring: [input.self.node],
    ringDirtyAt: undefined,
    unreachable: [],
    view,
    summary: summarize(view, input.self.node),
    fullViewSize: 1,
    minority: false,
    heardView: undefined,
    helloAgain: false,
    probedForBeaconAt: undefined,
    localHealth: 0,
    localHealthAt: input.at,
  };
}

export const isLive = (p: PeerRecord | undefined): boolean =>
  p !== undefined && (p.state === "alive" || p.state === "suspect");

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * The context one step builds, starting as a shallow copy of the one it was
 * given. Each table (peers, watch, unreachable) is copied at the step's first
 * change to it, and a changed entry is a new record: the given context is
 * never written to, and what the step leaves alone stays shared. The peer
 * table changes only when a peer's state does; a heartbeat touches the small
 * watch table alone.
 */
export class NextContext {
  readonly ctx: Mutable<MembershipContext>;
  readonly out: MembershipOutput[] = [];
  #ownsPeers = false;
  #ownsWatch = false;

  constructor(
    from: MembershipContext,
    readonly at: number,
  ) {
    this.ctx = { ...from };
  }

  /** Gives `key` the record `peer`, or adds it; keeps the unreachable list and the ring's freshness. */
  setPeer(key: string | number, peer: PeerRecord): void {
    const before = this.ctx.peers[key];
    if (!this.#ownsPeers) {
      this.ctx.peers = { ...this.ctx.peers };
      this.#ownsPeers = true;
    }
    (this.ctx.peers as Record<string, PeerRecord>)[key] = peer;
    if (before?.state === peer.state && before.incarnation === peer.incarnation) return;
    const node = Number(key);
    const wasOut = before?.state === "unreachable";
    const isOut = peer.state === "unreachable";
    if (wasOut && !isOut) this.ctx.unreachable = this.ctx.unreachable.filter((n) => n !== node);
    else if (isOut && !wasOut) this.ctx.unreachable = [...this.ctx.unreachable, node];
    this.ctx.ringDirtyAt ??= this.at;
  }

  /** The record of `key` with `changes` applied, now in the table. */
  changePeer(key: string | number, peer: PeerRecord, changes: Partial<PeerRecord>): PeerRecord {
    const changed = { ...peer, ...changes };
    this.setPeer(key, changed);
    return changed;
  }

  setWatch(key: string | number, watch: Watch): void {
    if (!this.#ownsWatch) {
      this.ctx.watch = { ...this.ctx.watch };
      this.#ownsWatch = true;
    }
    (this.ctx.watch as Record<string, Watch>)[key] = watch;
  }

  /** Replaces the watch table (the ring was rebuilt). */
  replaceWatch(watch: Record<string, Watch>, watching: number[]): void {
    this.ctx.watch = watch;
    this.ctx.watching = watching;
    this.#ownsWatch = true;
  }

  /** Forgets `key` altogether (a joining node drops a peer it has not announced). */
  deletePeer(key: string | number): void {
    if (!(key in this.ctx.peers)) return;
    if (!this.#ownsPeers) {
      this.ctx.peers = { ...this.ctx.peers };
      this.#ownsPeers = true;
    }
    delete (this.ctx.peers as Record<string, PeerRecord>)[key];
    this.ctx.unreachable = this.ctx.unreachable.filter((n) => n !== Number(key));
    this.ctx.ringDirtyAt ??= this.at;
  }

  forgetPeers(): void {
    this.ctx.peers = {};
    this.ctx.watch = {};
    this.ctx.watching = [];
    this.ctx.unreachable = [];
    this.ctx.ring = [this.ctx.self.node];
    this.#ownsPeers = true;
    this.#ownsWatch = true;
  }
}
