// The proxies of a node: one pair per peer (sender + receiver), carrying
// process messages between nodes on `dvs.<c>._px.<to>` as CBOR frames that
// name the sending node and number the pair's frames. The peer acknowledges
// each frame once its delivery is settled; unacknowledged frames are resent
// with backoff and given up after `giveUpMs` (docs/processes.md, section 5).
// Each pair's state lives in a pure proxy machine actor (machines/proxy.ts),
// started when the pair first carries a frame: it says what to publish, hand
// on, acknowledge and report, and this module does it. Nothing a peer sends
// can throw out of here.
import { type Actor, createActor } from "xstate";
import {
  baseOf,
  defaultProxyLimits,
  hasRoom,
  initialProxyContext,
  linkAfter,
  nextDue,
  type ProxyAck,
  type ProxyContext,
  type ProxyEmitted,
  type ProxyLimits,
  type ProxyLink,
  type ProxyMachine,
  proxyMachine,
} from "../../machines/proxy.js";
import { decode, encode } from "../../protocol/codec.js";
import { type ErrorName, type NodeId, PROTOCOL_VERSION } from "../../protocol/messages.js";
import {
  type Envelope,
  MAX_ACKS,
  type ProxyAckMessage,
  type ProxyFrame,
  proxyMessageSchema,
} from "../../protocol/processes.js";
import type { Subjects } from "../../protocol/subjects.js";
import type { Clock, TimerHandle } from "../../transport/clock.js";
import { PayloadTooLargeError } from "../../transport/errors.js";
import type { Message, Subscription, Transport } from "../../transport/transport.js";
import { type Logger, throttledWarn } from "../logger.js";

/** Process traffic through a node's proxies, for GETNODEINFO. */
export interface NodeTraffic {
  readonly proxies: NodeId[];
  readonly msgsSent: number;
  readonly msgsReceived: number;
  readonly lastSent: number | null;
  readonly lastReceived: number | null;
}

/** One direction's counters, as GETPROXYSTS reports them. */
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
  readonly sent: ProxyCounters & {
    readonly resent: number;
    readonly acked: number;
    readonly gaveUp: number;
    /** Frames awaiting their acknowledgement now. */
    readonly unacked: number;
  };
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
  /** Sender: last frame number sent. Receiver: highest frame number received. */
  readonly seq: number;
  /** The epoch the frame numbers belong to (sender: ours; receiver: the peer's, null before any frame). */
  readonly epoch: number | null;
}

/** How a delivery ended: undefined when the message was delivered, else why it never will be. */
export type Settlement = ErrorName | undefined;

export interface ProxiesOptions {
  readonly node: NodeId;
  readonly subjects: Subjects;
  readonly transport: Transport;
  readonly clock: Clock;
  readonly logger: Logger;
  /** This runtime's epoch: frame numbers restart at 1 in each. */
  readonly epoch: number;
  /** Window, resend and give-up (default: defaultProxyLimits). */
  readonly limits?: ProxyLimits;
  /** The pair machine (default: proxyMachine); tests swap in a faulty one. */
  readonly machine?: ProxyMachine;
  /**
   * Every message a peer's proxy carried here, once: resolves when its delivery
   * is settled (durably in its process's mailbox, or acknowledged by the next
   * hop), with the error that refuses it for good otherwise. The frame is
   * acknowledged then.
   */
  readonly deliver: (msg: Envelope, from: NodeId) => Promise<Settlement>;
}

/**
 * Pairs (actors and idle links) a node keeps for peers outside its view. A
 * frame names its sender, so without a cap anyone who may publish on a proxy
 * subject could make a node start one actor per made-up node id; beyond it the
 * oldest outside-view pair is forgotten (only its statistics are lost).
 */
export const MAX_PEERS_OUTSIDE_VIEW = 256;

/** The pair toward one peer: its machine actor, and what cannot live in its context. */
class ProxyPair {
  readonly actor: Actor<ProxyMachine>;
  /** Frame number → whoever waits for that frame's fate. */
  readonly waiters = new Map<number, (settled: Settlement) => void>();
  /** Acknowledgements to publish, by the peer's epoch (flushed together, once per microtask). */
  readonly acks = new Map<number, ProxyAck[]>();
  timer: TimerHandle | undefined;
  timerDue: number | undefined;

  constructor(
    readonly peer: NodeId,
    self: NodeId,
    link: ProxyLink,
    limits: ProxyLimits,
    clock: Clock,
    machine: ProxyMachine,
  ) {
    this.actor = createActor(machine, {
      input: { self, peer, up: link.up, at: link.since, downs: link.downs, limits },
      clock,
    });
  }

  get context(): ProxyContext {
    return this.actor.getSnapshot().context;
  }
}

const stateOf = (c: ProxyContext): "up" | "down" => (c.up ? "up" : "down");

/** GETPROXYSTS of a pair's context. */
function statsOf(c: ProxyContext): ProxyStats {
  const { epoch: _epoch, floor: _floor, seen: _seen, ...received } = c.received;
  return {
    nodeid: c.self,
    peer: c.peer,
    state: stateOf(c),
    since: c.since,
    downs: c.downs,
    sent: { ...c.sent, unacked: c.out.length },
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

  readonly #limits: ProxyLimits;

  constructor(options: ProxiesOptions) {
    this.#o = options;
    this.#limits = options.limits ?? defaultProxyLimits;
    this.#warn = throttledWarn(options.logger, options.clock);
  }

  start(members: readonly NodeId[]): void {
    this.onView(members);
    const { transport, subjects, node } = this.#o;
    this.#subscription = transport.subscribe(subjects.proxy(node), (msg) => this.#receive(msg));
  }

  /** Stops every pair; frames still awaiting an acknowledgement settle with EAGAIN. */
  stop(): void {
    this.#subscription?.unsubscribe();
    this.#subscription = undefined;
    for (const pair of this.#pairs.values()) this.#drop(pair, "EAGAIN");
    this.#pairs.clear();
  }

  /** Peers in the view get a pair that is up; pairs of peers out of it go down. */
  onView(members: readonly NodeId[]): void {
    const at = this.#o.clock.now();
    this.#members = new Set(members);
    for (const peer of members) if (peer !== this.#o.node) this.#viewChange(peer, true, at);
    for (const peer of [...this.#pairs.keys(), ...this.#idle.keys()])
      if (!this.#members.has(peer)) this.#viewChange(peer, false, at);
  }

  /**
   * Sends one message to `peer`'s proxy receiver. An error name when it cannot
   * leave (too large, window full); else a promise of its fate: undefined once
   * the peer acknowledged it, the peer's refusal, or ETIMEDOUT when given up.
   */
  send(peer: NodeId, msg: Envelope): { error: ErrorName } | { settled: Promise<Settlement> } {
    const { transport, clock } = this.#o;
    const pair = this.#ensure(peer);
    let bytes: number;
    try {
      bytes = encode(this.#frame(peer, pair.context.sent.seq + 1, baseOf(pair.context), msg)).byteLength;
    } catch (error) {
      this.#warn(`encode:${peer}`, { err: error, peer }, "a proxy could not encode a frame");
      return { error: "EINVAL" };
    }
    if (bytes > transport.maxPayload) return { error: "EMSGSIZE" };
    if (!hasRoom(pair.context, bytes)) {
      this.#warn(`window:${peer}`, { peer }, "a proxy's window is full; refusing a message");
      return { error: "EAGAIN" };
    }
    const pseq = pair.context.sent.seq + 1;
    const settled = new Promise<Settlement>((resolve) => pair.waiters.set(pseq, resolve));
    pair.actor.send({ type: "frame.queue", msg, bytes, at: clock.now() });
    this.#arm(pair);
    return { settled };
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
    return initialProxyContext({
      self: this.#o.node,
      peer,
      up: link.up,
      at: link.since,
      downs: link.downs,
      limits: this.#limits,
    });
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
      pair = new ProxyPair(
        peer,
        this.#o.node,
        link,
        this.#limits,
        this.#o.clock,
        this.#o.machine ?? proxyMachine,
      );
      this.#wire(pair);
      pair.actor.start();
      this.#pairs.set(peer, pair);
    }
    return pair;
  }

  /** Carries out what a pair's machine asks for. */
  #wire(pair: ProxyPair): void {
    const { actor } = pair;
    actor.on("proxy.publish", (e) => this.#publish(pair, e));
    actor.on("proxy.settled", (e) => {
      const waiter = pair.waiters.get(e.pseq);
      pair.waiters.delete(e.pseq);
      if (e.error === "ETIMEDOUT") {
        this.#warn(
          `gave-up:${pair.peer}`,
          {
            peer: pair.peer,
            pseq: e.pseq,
            giveUpMs: this.#limits.giveUpMs,
            gaveUp: pair.context.sent.gaveUp,
          },
          "a proxy gave up a frame its peer never acknowledged; its sender is told ETIMEDOUT",
        );
      }
      waiter?.(e.error as Settlement);
    });
    // Handed on outside the machine's transition: a delivery may send through this very pair.
    actor.on("proxy.deliver", (e) => queueMicrotask(() => this.#deliver(pair, e)));
    actor.on("proxy.ack", (e) => this.#queueAck(pair, e));
  }

  #frame(peer: NodeId, pseq: number, base: number, msg: Envelope): ProxyFrame {
    const { node, epoch } = this.#o;
    return { v: PROTOCOL_VERSION, from: node, to: peer, epoch, pseq, base, msg };
  }

  #publish(pair: ProxyPair, e: Extract<ProxyEmitted, { type: "proxy.publish" }>): void {
    const { transport, subjects, clock } = this.#o;
    if (e.resend) {
      this.#warn(
        `resend:${pair.peer}`,
        { peer: pair.peer, unacked: pair.context.out.length, resent: pair.context.sent.resent },
        "a proxy is resending frames its peer has not acknowledged",
      );
    }
    try {
      transport.publish(
        subjects.proxy(pair.peer),
        encode(this.#frame(pair.peer, e.pseq, e.base, e.msg as Envelope)),
      );
    } catch (error) {
      // Kept and resent: the link may come back before the frame is given up.
      queueMicrotask(() => pair.actor.send({ type: "frame.failed", at: clock.now() }));
      if (!(error instanceof PayloadTooLargeError)) {
        this.#warn(`send:${pair.peer}`, { err: error, peer: pair.peer }, "a proxy could not send a frame");
      }
    }
  }

  #deliver(pair: ProxyPair, e: Extract<ProxyEmitted, { type: "proxy.deliver" }>): void {
    const settle = (error: Settlement): void => {
      if (this.#pairs.get(pair.peer) !== pair) return;
      pair.actor.send({ type: "frame.settled", epoch: e.epoch, pseq: e.pseq, ...(error ? { error } : {}) });
    };
    let settled: Promise<Settlement>;
    try {
      settled = this.#o.deliver(e.msg as Envelope, pair.peer);
    } catch (error) {
      this.#warn("frame-handler", { err: error }, "a proxy frame handler failed");
      return;
    }
    settled.then(settle, (error: unknown) => {
      this.#warn("frame-settle", { err: error }, "the delivery of a proxy frame failed");
    });
  }

  #queueAck(pair: ProxyPair, e: Extract<ProxyEmitted, { type: "proxy.ack" }>): void {
    const first = pair.acks.size === 0;
    const list = pair.acks.get(e.epoch) ?? [];
    pair.acks.set(e.epoch, list);
    list.push({ pseq: e.pseq, ...(e.error !== undefined ? { error: e.error } : {}) });
    if (first) queueMicrotask(() => this.#flushAcks(pair));
  }

  #flushAcks(pair: ProxyPair): void {
    const { transport, subjects, node } = this.#o;
    for (const [epoch, acks] of pair.acks) {
      for (let i = 0; i < acks.length; i += MAX_ACKS) {
        const message = {
          v: PROTOCOL_VERSION,
          kind: "ack",
          from: node,
          to: pair.peer,
          epoch,
          acks: acks.slice(i, i + MAX_ACKS),
        } as ProxyAckMessage;
        try {
          transport.publish(subjects.proxy(pair.peer), encode(message));
        } catch (error) {
          // The peer resends, and the frame is acknowledged again.
          this.#warn(
            `ack:${pair.peer}`,
            { err: error, peer: pair.peer },
            "a proxy could not send an acknowledgement",
          );
        }
      }
    }
    pair.acks.clear();
  }

  /** Arms the pair's timer for its next resend or give-up, unless one is armed as early. */
  #arm(pair: ProxyPair): void {
    const { clock } = this.#o;
    const due = nextDue(pair.context);
    if (due === undefined || (pair.timerDue !== undefined && pair.timerDue <= due)) return;
    clock.clearTimeout(pair.timer);
    pair.timerDue = due;
    pair.timer = clock.setTimeout(
      () => {
        pair.timer = undefined;
        pair.timerDue = undefined;
        if (this.#pairs.get(pair.peer) !== pair) return;
        try {
          pair.actor.send({ type: "resend.tick", at: clock.now() });
          this.#arm(pair);
        } catch (error) {
          this.#warn("resend-timer", { err: error }, "a proxy's resend timer failed");
        }
      },
      Math.max(0, due - clock.now()),
    );
  }

  /** Stops a pair: its timer, its actor, and every frame it still carries settles with `error`. */
  #drop(pair: ProxyPair, error: ErrorName): void {
    this.#o.clock.clearTimeout(pair.timer);
    pair.timer = undefined;
    pair.actor.stop();
    for (const waiter of pair.waiters.values()) waiter(error);
    pair.waiters.clear();
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
      const pair = this.#pairs.get(peer);
      this.#pairs.delete(peer);
      if (pair !== undefined) this.#drop(pair, "EHOSTDOWN");
      excess--;
    }
  }

  /** Pairs (actors and idle links) this node keeps, in and outside its view. */
  get pairs(): number {
    return this.#pairs.size + this.#idle.size;
  }

  #receive(msg: Message): void {
    const { node, clock, transport, epoch } = this.#o;
    try {
      const decoded = decode(msg.data, "cbor", transport.maxPayload);
      const parsed = decoded.ok ? proxyMessageSchema.safeParse(decoded.value) : undefined;
      if (parsed === undefined || !parsed.success || parsed.data.to !== node || parsed.data.from === node) {
        const from = decoded.ok ? fromOf(decoded.value) : undefined;
        if (from !== undefined && from !== node)
          this.#ensure(from).actor.send({ type: "frame.rejected", at: clock.now() });
        else this.unattributed++;
        this.#warn("bad-frame", { from, bytes: msg.data.byteLength }, "dropped an unreadable proxy frame");
        return;
      }
      const m = parsed.data;
      const pair = this.#ensure(m.from);
      if ("kind" in m) {
        // Acknowledgements of an earlier run of this node are for frames it no longer has.
        if (m.epoch === epoch) pair.actor.send({ type: "ack.received", acks: m.acks, at: clock.now() });
      } else {
        pair.actor.send({
          type: "frame.arrived",
          epoch: m.epoch,
          pseq: m.pseq,
          base: Math.min(m.base ?? m.pseq, m.pseq),
          msg: m.msg,
          bytes: msg.data.byteLength,
          at: clock.now(),
        });
      }
      this.#arm(pair);
    } catch (error) {
      this.#warn("frame-handler", { err: error }, "a proxy frame handler failed");
    }
  }
}

function fromOf(value: unknown): NodeId | undefined {
  const from = (value as { from?: unknown } | null)?.from;
  return typeof from === "number" && Number.isInteger(from) && from >= 0 && from <= 65_535 ? from : undefined;
}
