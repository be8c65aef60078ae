// The proxies of a node: one pair per peer (sender + receiver), carrying
// process messages between nodes on `dvs.<c>._px.<to>` as CBOR frames that
// name the sending node and number the pair's frames, so the receiver can
// count gaps. Each pair's state and statistics live in a proxy machine actor
// (machines/proxy.ts), started when the pair first carries a frame; nothing a
// peer sends can throw out of here.
import { type Actor, createActor } from "xstate";
import {
  initialProxyContext,
  linkAfter,
  nextSendSeq,
  type ProxyContext,
  type ProxyLink,
  type ProxyMachine,
  proxyMachine,
} from "../../machines/proxy.js";
import { decode, encode } from "../../protocol/codec.js";
import { type ErrorName, type NodeId, PROTOCOL_VERSION } from "../../protocol/messages.js";
import { type Envelope, type ProxyFrame, proxyFrameSchema } from "../../protocol/processes.js";
import type { Subjects } from "../../protocol/subjects.js";
import type { Clock } from "../../transport/clock.js";
import { PayloadTooLargeError } from "../../transport/errors.js";
import type { Message, Subscription, Transport } from "../../transport/transport.js";
import { type Logger, throttledWarn } from "../logger.js";

/** One direction's counters, as GETPROXYSTS reports them. */
/** Process traffic through a node's proxies, for GETNODEINFO. */
export interface NodeTraffic {
  readonly proxies: NodeId[];
  readonly msgsSent: number;
  readonly msgsReceived: number;
  readonly lastSent: number | null;
  readonly lastReceived: number | null;
}

export interface ProxyCounters {
  readonly msgs: number;
  readonly bytes: number;
  readonly errors: number;
  /** Clock ms of the last frame, or null. */
  readonly last: number | null;
  readonly seq: number;
}

/** GETPROXYSTS: the statistics of the pair of node `nodeid` toward `peer`. */
export interface ProxyStats {
  readonly nodeid: NodeId;
  readonly peer: NodeId;
  readonly state: "up" | "down";
  readonly since: number;
  readonly downs: number;
  readonly sent: ProxyCounters;
  readonly received: ProxyCounters & {
    readonly missing: number;
    readonly duplicates: number;
    readonly rejected: number;
  };
}

/** GETPROXYINFO: one of the two ends of a pair. */
export interface ProxyInfo {
  readonly role: "sender" | "receiver";
  readonly nodeid: NodeId;
  readonly peer: NodeId;
  readonly state: "up" | "down";
  readonly since: number;
  /** The subject this end publishes to (sender) or listens on (receiver). */
  readonly subject: string;
  /** Sender: last frame number sent. Receiver: last frame number received. */
  readonly seq: number;
  /** The epoch the frame numbers belong to (sender: ours; receiver: the peer's, null before any frame). */
  readonly epoch: number | null;
}

export interface ProxiesOptions {
  readonly node: NodeId;
  readonly subjects: Subjects;
  readonly transport: Transport;
  readonly clock: Clock;
  readonly logger: Logger;
  /** This runtime's epoch: frame numbers restart at 1 in each. */
  readonly epoch: number;
  /** Every message a peer's proxy carried here, after its pair counted it. */
  readonly deliver: (msg: Envelope, from: NodeId) => void;
}

/**
 * Pairs (actors and idle links) a node keeps for peers outside its view. A
 * frame names its sender, so without a cap anyone who may publish on a proxy
 * subject could make a node start one actor per made-up node id; beyond it the
 * oldest outside-view pair is forgotten (only its statistics are lost).
 */
export const MAX_PEERS_OUTSIDE_VIEW = 256;

/** The pair toward one peer: its machine actor, fed with what was sent and received. */
class ProxyPair {
  readonly actor: Actor<ProxyMachine>;

  constructor(peer: NodeId, self: NodeId, link: ProxyLink, clock: Clock) {
    this.actor = createActor(proxyMachine, {
      input: { self, peer, up: link.up, at: link.since, downs: link.downs },
      clock,
    }).start();
  }

  get context(): ProxyContext {
    return this.actor.getSnapshot().context;
  }
}

const stateOf = (c: ProxyContext): "up" | "down" => (c.up ? "up" : "down");

/** GETPROXYSTS of a pair's context. */
function statsOf(c: ProxyContext): ProxyStats {
  const { epoch: _epoch, ...received } = c.received;
  return {
    nodeid: c.self,
    peer: c.peer,
    state: stateOf(c),
    since: c.since,
    downs: c.downs,
    sent: { ...c.sent },
    received,
  };
}

export class Proxies {
  readonly #o: ProxiesOptions;
  readonly #pairs = new Map<NodeId, ProxyPair>();
  /**
   * Peers seen in a view whose pair has carried no frame yet: their view
   * state as plain data, which GETPROXYSTS and GETPROXYINFO report. The pair's
   * actor is created from it on first use, so a node in a cluster of 1,000
   * does not run 999 idle actors (nor a simulation of it a million).
   */
  readonly #idle = new Map<NodeId, ProxyLink>();
  readonly #warn: ReturnType<typeof throttledWarn>;
  #members = new Set<NodeId>();
  #subscription: Subscription | undefined;
  /** Frames that named no readable sender. */
  unattributed = 0;

  constructor(options: ProxiesOptions) {
    this.#o = options;
    this.#warn = throttledWarn(options.logger, options.clock);
  }

  start(members: readonly NodeId[]): void {
    this.onView(members);
    const { transport, subjects, node } = this.#o;
    this.#subscription = transport.subscribe(subjects.proxy(node), (msg) => this.#receive(msg));
  }

  stop(): void {
    this.#subscription?.unsubscribe();
    this.#subscription = undefined;
    for (const pair of this.#pairs.values()) pair.actor.stop();
  }

  /** Peers in the view get a pair that is up; pairs of peers out of it go down. */
  onView(members: readonly NodeId[]): void {
    const at = this.#o.clock.now();
    this.#members = new Set(members);
    for (const peer of members) if (peer !== this.#o.node) this.#viewChange(peer, true, at);
    for (const peer of [...this.#pairs.keys(), ...this.#idle.keys()])
      if (!this.#members.has(peer)) this.#viewChange(peer, false, at);
  }

  /** Sends one message to `peer`'s proxy receiver; an error name when it could not be published. */
  send(peer: NodeId, msg: Envelope): ErrorName | undefined {
    const { transport, subjects, node, epoch, clock } = this.#o;
    const pair = this.#ensure(peer);
    const frame: ProxyFrame = {
      v: PROTOCOL_VERSION,
      from: node,
      to: peer,
      epoch,
      pseq: nextSendSeq(pair.context),
      msg,
    };
    let bytes: Uint8Array;
    try {
      bytes = encode(frame);
      transport.publish(subjects.proxy(peer), bytes);
    } catch (error) {
      pair.actor.send({ type: "frame.failed", at: clock.now() });
      this.#warn(`send:${peer}`, { err: error, peer }, "a proxy could not send a frame");
      return error instanceof PayloadTooLargeError ? "EMSGSIZE" : "EHOSTDOWN";
    }
    pair.actor.send({ type: "frame.sent", seq: frame.pseq, bytes: bytes.byteLength, at: clock.now() });
    return undefined;
  }

  /** How many pairs run an actor; the others have carried nothing yet. */
  get actors(): number {
    return this.#pairs.size;
  }

  /** GETPROXYSTS: the statistics of the pair toward `peer`, or undefined when this node never knew it. */
  stats(peer: NodeId): ProxyStats | undefined {
    const c = this.#contextOf(peer);
    return c && statsOf(c);
  }

  /** GETPROXYSTS of every pair, by peer id. */
  allStats(): ProxyStats[] {
    return this.#contexts().map(statsOf);
  }

  /** GETPROXYINFO: the sender and the receiver of the pair toward `peer`. */
  info(peer: NodeId): [ProxyInfo, ProxyInfo] | undefined {
    const c = this.#contextOf(peer);
    if (c === undefined) return undefined;
    const { subjects, node, epoch } = this.#o;
    const common = { nodeid: node, peer, state: stateOf(c), since: c.since };
    return [
      { role: "sender", ...common, subject: subjects.proxy(peer), seq: c.sent.seq, epoch },
      {
        role: "receiver",
        ...common,
        subject: subjects.proxy(node),
        seq: c.received.seq,
        epoch: c.received.epoch,
      },
    ];
  }

  /** Totals over every pair, for GETNODEINFO. */
  traffic(): NodeTraffic {
    let msgsSent = 0;
    let msgsReceived = 0;
    let lastSent: number | null = null;
    let lastReceived: number | null = null;
    const contexts = this.#contexts();
    for (const { sent, received } of contexts) {
      msgsSent += sent.msgs;
      msgsReceived += received.msgs;
      if (sent.last !== null && (lastSent === null || sent.last > lastSent)) lastSent = sent.last;
      if (received.last !== null && (lastReceived === null || received.last > lastReceived)) {
        lastReceived = received.last;
      }
    }
    return { proxies: contexts.map((c) => c.peer), msgsSent, msgsReceived, lastSent, lastReceived };
  }

  /** The pair's context, or the one an idle pair would start with; undefined for a peer never known. */
  #contextOf(peer: NodeId): ProxyContext | undefined {
    const pair = this.#pairs.get(peer);
    if (pair !== undefined) return pair.context;
    const link = this.#idle.get(peer);
    return link && this.#idleContext(peer, link);
  }

  /** Every pair's context, actors and idle ones, by peer id. */
  #contexts(): ProxyContext[] {
    const contexts = [...this.#pairs.values()].map((p) => p.context);
    for (const [peer, link] of this.#idle) contexts.push(this.#idleContext(peer, link));
    return contexts.sort((a, b) => a.peer - b.peer);
  }

  #idleContext(peer: NodeId, link: ProxyLink): ProxyContext {
    return initialProxyContext({ self: this.#o.node, peer, up: link.up, at: link.since, downs: link.downs });
  }

  /** A view change for one peer: to its actor if it has one, else to its idle link. */
  #viewChange(peer: NodeId, up: boolean, at: number): void {
    const pair = this.#pairs.get(peer);
    if (pair !== undefined) {
      if (pair.context.up !== up) pair.actor.send({ type: up ? "peer.up" : "peer.down", at });
      return;
    }
    const link = this.#idle.get(peer);
    if (link !== undefined) this.#idle.set(peer, linkAfter(link, up, at));
    else if (up) this.#idle.set(peer, { up, since: at, downs: 0 });
  }

  /** The pair's actor, created on first use from its idle link (or, for a peer never in a view, down since now). */
  #ensure(peer: NodeId): ProxyPair {
    let pair = this.#pairs.get(peer);
    if (pair === undefined) {
      if (!this.#members.has(peer) && !this.#idle.has(peer)) this.#makeRoomOutsideView();
      const link = this.#idle.get(peer) ?? {
        up: this.#members.has(peer),
        since: this.#o.clock.now(),
        downs: 0,
      };
      this.#idle.delete(peer);
      pair = new ProxyPair(peer, this.#o.node, link, this.#o.clock);
      this.#pairs.set(peer, pair);
    }
    return pair;
  }

  /** Forgets the oldest pairs of peers outside the view (idle links first) until one more fits the cap. */
  #makeRoomOutsideView(): void {
    const outside = (peer: NodeId) => !this.#members.has(peer);
    const idle = [...this.#idle.keys()].filter(outside);
    const active = [...this.#pairs.keys()].filter(outside);
    let excess = idle.length + active.length - (MAX_PEERS_OUTSIDE_VIEW - 1);
    for (const peer of idle) {
      if (excess <= 0) return;
      this.#idle.delete(peer);
      excess--;
    }
    for (const peer of active) {
      if (excess <= 0) return;
      this.#pairs.get(peer)?.actor.stop();
      this.#pairs.delete(peer);
      excess--;
    }
  }

  /** Pairs (actors and idle links) this node keeps, in and outside its view. */
  get pairs(): number {
    return this.#pairs.size + this.#idle.size;
  }

  #receive(msg: Message): void {
    const { node, clock, transport } = this.#o;
    try {
      const decoded = decode(msg.data, "cbor", transport.maxPayload);
      const parsed = decoded.ok ? proxyFrameSchema.safeParse(decoded.value) : undefined;
      if (parsed === undefined || !parsed.success || parsed.data.to !== node) {
        const from = decoded.ok ? fromOf(decoded.value) : undefined;
        if (from !== undefined && from !== node)
          this.#ensure(from).actor.send({ type: "frame.rejected", at: clock.now() });
        else this.unattributed++;
        this.#warn("bad-frame", { from, bytes: msg.data.byteLength }, "dropped an unreadable proxy frame");
        return;
      }
      const frame = parsed.data;
      this.#ensure(frame.from).actor.send({
        type: "frame.received",
        seq: frame.pseq,
        epoch: frame.epoch,
        bytes: msg.data.byteLength,
        at: clock.now(),
      });
      this.#o.deliver(frame.msg, frame.from);
    } catch (error) {
      this.#warn("frame-handler", { err: error }, "a proxy frame handler failed");
    }
  }
}

function fromOf(value: unknown): NodeId | undefined {
  const from = (value as { from?: unknown } | null)?.from;
  return typeof from === "number" && Number.isInteger(from) && from >= 0 && from <= 65_535 ? from : undefined;
}
