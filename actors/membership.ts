// The membership runtime of one node: runs the membership machine as an actor
// and gives it the world — its own heartbeat out on `_hb.<self>`, the
// heartbeats of the few peers it observes in (one subscription each, changed
// when the machine's watch set does), the membership broadcasts on `_ms.*`
// (hello, leave, alerts, the leader's beacon), probes of late peers (NATS "no
// responders" says at once that a peer's subscriptions are gone), the node's
// own link status, and one timer on the injected clock for whatever is due
// next. View changes go out on `dvs.<c>.events` and to the caller.
import { type Actor, createActor } from "xstate";
import type { z } from "zod";
import {
  downList,
  leads,
  type Member,
  type MembershipContext,
  type MembershipMachine,
  type MembershipOutput,
  type MembershipTimings,
  membershipMachine,
  nextDeadline,
  type ViewChange,
  viewMembers,
} from "../machines/membership.js";
import { decode, encode } from "../protocol/codec.js";
import {
  type AlertState,
  beaconMembersSchema,
  type Heartbeat,
  heartbeatSchema,
  type MembershipBroadcast,
  membershipBroadcastSchema,
  probeReplySchema,
} from "../protocol/membershipMessages.js";
import { type EventMessage, PROTOCOL_VERSION } from "../protocol/messages.js";
import { publishNodeEvent } from "../protocol/nodeEvents.js";
import { Responder, refusalLog } from "../protocol/responder.js";
import type { Subjects } from "../protocol/subjects.js";
import type { Clock, TimerHandle } from "../transport/clock.js";
import { NoRespondersError, TimeoutError } from "../transport/errors.js";
import { header, type Message, type Subscription, type Transport } from "../transport/transport.js";
import { type Logger, throttledWarn } from "./logger.js";
import type { MembershipMetrics } from "./metrics.js";

export interface MembershipOptions {
  readonly self: Member;
  readonly subjects: Subjects;
  readonly timings: MembershipTimings;
  readonly quorum: boolean;
  /** The view id to continue from after a rejoin. */
  readonly viewId?: number;
  /** The machine to run; tests pass mutated ones (createMembershipMachine). */
  readonly machine?: MembershipMachine;
  readonly transport: Transport;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Every view change, in order, after it was published. */
  readonly onChange?: (change: ViewChange, event: EventMessage) => void;
  /** This incarnation was declared down by the others: the caller must rejoin as a new one. */
  readonly onRejoin?: (reason: string, viewId: number) => void;
  /** Where heartbeats, probes and broadcasts sent and received are counted (default: nowhere). */
  readonly metrics?: MembershipMetrics;
}

/**
 * What a payload decoded and checked to, by payload identity. A broadcast is
 * one buffer delivered to every subscriber of the process (the simulated
 * network hands every node the same bytes), so it is decoded and checked once,
 * not once per node; over a real connection each message is a buffer of its
 * own and the cache only ever misses. Entries go with their buffers. Values
 * are read-only: the machine never writes to an event.
 */
const parseCache = new WeakMap<
  Uint8Array,
  { schema: z.ZodType; result: z.ZodSafeParseResult<unknown> | undefined }
>();

function parseOnce<T>(data: Uint8Array, schema: z.ZodType<T>): z.ZodSafeParseResult<T> | undefined {
  const hit = parseCache.get(data);
  if (hit?.schema === schema) return hit.result as z.ZodSafeParseResult<T> | undefined;
  const decoded = decode(data, "cbor");
  const result = decoded.ok ? schema.safeParse(decoded.value) : undefined;
  parseCache.set(data, { schema, result });
  return result;
}

export class Membership {
  readonly actor: Actor<MembershipMachine>;
  readonly #o: MembershipOptions;
  readonly #warn: ReturnType<typeof throttledWarn>;
  readonly #responder: Responder;
  #subscriptions: Subscription[] = [];
  /** The heartbeat subscriptions of the peers this node watches, by node id. */
  readonly #watched = new Map<number, Subscription>();
  #watching: readonly number[] = [];
  /**
   * One timer, on the injected clock, for whatever is due first: this node's
   * next heartbeat, its next beacon when it leads, or the machine's next
   * deadline. Nothing runs at a fixed rate beyond the heartbeat itself.
   */
  #timer: TimerHandle | undefined;
  #timerAt = Number.POSITIVE_INFINITY;
  #nextHeartbeatAt = 0;
  #nextBeaconAt = 0;
  #seq = 0;
  #helloAt = Number.NEGATIVE_INFINITY;
  /** When each alert (node/incarnation/state) last went out. */
  readonly #alerted = new Map<string, number>();
  #stopped = false;
  /** The down list of the last peer table seen (heartbeats carry it; the table rarely changes). */
  #down: { peers: MembershipContext["peers"] | undefined; list: Member[] } = { peers: undefined, list: [] };
  /**
   * Events not yet confirmed by a flush (bounded). A link that breaks silently
   * swallows what was published just before; those are published again when
   * the link is back, so delivery is at least once (dedupe by node, incarnation, view id).
   */
  #outbox: EventMessage[] = [];
  /** Bumped at every link loss: a flush that completes across a loss confirms nothing. */
  #linkEpoch = 0;
  #rejoining = false;

  constructor(options: MembershipOptions) {
    this.#o = options;
    this.#warn = throttledWarn(options.logger, options.clock);
    this.#responder = new Responder(options.transport, {
      onRefused: (reply, subject) => this.#warn("reply-subject", ...refusalLog(reply, subject)),
    });
    const machine = (options.machine ?? membershipMachine).provide({
      actions: { output: (_, output) => this.#output(output) },
    });
    this.actor = createActor(machine, {
      input: {
        self: options.self,
        timings: options.timings,
        quorum: options.quorum,
        at: options.clock.now(),
        ...(options.viewId !== undefined ? { viewId: options.viewId } : {}),
      },
    });
  }

  get self(): Member {
    return this.#o.self;
  }

  get context(): MembershipContext {
    return this.actor.getSnapshot().context;
  }

  start(): void {
    const { transport, subjects, self, clock } = this.#o;
    this.actor.start();
    this.#subscriptions = [
      transport.subscribe(subjects.memberships, (msg) => this.#onBroadcast(msg)),
      transport.subscribe(subjects.probe(self.node), (msg) => {
        this.#o.metrics?.membershipMessage("probe", "received");
        this.#responder.answer(msg, encode({ node: self.node, incarnation: self.incarnation }));
      }),
    ];
    this.#broadcast({ kind: "hello", ...this.#base() });
    this.#nextHeartbeatAt = clock.now();
    this.#wake();
  }

  /** The node's own NATS link went down or came back. */
  link(up: boolean): void {
    if (this.#stopped) return;
    if (!up) this.#linkEpoch++;
    this.#send({ type: up ? "link.up" : "link.down", at: this.#o.clock.now() });
    if (!up) return;
    // What the link swallowed goes out first, so the wire keeps the events' order.
    for (const event of [...this.#outbox]) this.#sendEvent(event);
    this.#nextHeartbeatAt = this.#o.clock.now();
    this.#wake();
  }

  /**
   * Node `node` may be gone (its NATS connection closed, says the server's
   * DISCONNECT advisory): probe it now rather than wait for its heartbeats to
   * be late. The probe's answer decides; the advisory alone changes nothing.
   */
  suspect(node: number): void {
    if (this.#stopped || node === this.#o.self.node) return;
    this.#send({ type: "peer.suspected", node, at: this.#o.clock.now() });
  }

  /** Stops heartbeating; with `leave`, first tells the others so they see DISCONNECT at once. */
  async stop(options: { leave: boolean }): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    const { transport, clock } = this.#o;
    clock.clearTimeout(this.#timer);
    if (options.leave && transport.status === "connected") {
      try {
        this.#broadcast({ kind: "leave", ...this.#base() });
        await transport.flush();
      } catch (error) {
        this.#o.logger.warn({ err: error }, "could not announce the leave");
      }
    }
    for (const sub of this.#subscriptions) sub.unsubscribe();
    for (const sub of this.#watched.values()) sub.unsubscribe();
    this.#subscriptions = [];
    this.#watched.clear();
    this.actor.stop();
  }

  /** Every event goes through here: after it, the watch subscriptions and the timer follow the context. */
  #send(event: Parameters<Actor<MembershipMachine>["send"]>[0]): void {
    this.actor.send(event);
    if (this.#stopped) return;
    const ctx = this.context;
    if (ctx.watching !== this.#watching) this.#syncWatched(ctx.watching);
    const due = nextDeadline(ctx);
    if (due !== undefined && due < this.#timerAt) this.#arm(due);
  }

  #syncWatched(watching: readonly number[]): void {
    const { transport, subjects } = this.#o;
    this.#watching = watching;
    const keep = new Set(watching);
    for (const [node, sub] of this.#watched) {
      if (!keep.has(node)) {
        sub.unsubscribe();
        this.#watched.delete(node);
      }
    }
    for (const node of watching) {
      if (this.#watched.has(node)) continue;
      this.#watched.set(
        node,
        transport.subscribe(subjects.heartbeat(node), (msg) => this.#onHeartbeat(msg, node)),
      );
    }
  }

  #arm(at: number): void {
    const { clock } = this.#o;
    clock.clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = clock.setTimeout(() => this.#wake(), Math.max(0, at - clock.now()));
  }

  /** The timer fired: send what is due, tick the machine, and arm for the next thing due. */
  #wake(): void {
    if (this.#stopped) return;
    const { clock, timings } = this.#o;
    const meantFor = Number.isFinite(this.#timerAt) ? this.#timerAt : undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
    const now = clock.now();
    if (now >= this.#nextHeartbeatAt) {
      this.#heartbeat();
      this.#nextHeartbeatAt = now + timings.heartbeatMs;
    }
    this.#send({ type: "clock.tick", at: now, ...(meantFor !== undefined ? { due: meantFor } : {}) });
    if (this.#stopped) return;
    const ctx = this.context;
    if (leads(ctx)) {
      if (now >= this.#nextBeaconAt) this.#beacon(now);
    } else {
      this.#nextBeaconAt = 0;
    }
    let due = this.#nextHeartbeatAt;
    if (leads(ctx)) due = Math.min(due, this.#nextBeaconAt);
    const machineDue = nextDeadline(ctx);
    if (machineDue !== undefined) due = Math.min(due, machineDue);
    // Never a zero-delay loop: whatever was due now has just been ticked.
    this.#arm(Math.max(due, now + 1));
  }

  #output(output: MembershipOutput): void {
    switch (output.type) {
      case "announce":
        this.#announce(output.change);
        break;
      case "probe":
        this.#probe(output.peer);
        break;
      case "rejoin":
        if (this.#rejoining) return;
        this.#rejoining = true;
        this.#o.logger.warn(
          { reason: output.reason },
          "declared down by the cluster; rejoining as a new incarnation",
        );
        this.#o.onRejoin?.(output.reason, output.viewId);
        break;
      case "alert":
        this.#alert(output.about, output.state, output.cause);
        break;
      case "hello": {
        // At most one a heartbeat period: many beacons that lack this node call for one hello.
        const now = this.#o.clock.now();
        if (now - this.#helloAt < this.#o.timings.heartbeatMs / 2) return;
        this.#helloAt = now;
        this.#broadcast({ kind: "hello", ...this.#base() });
        break;
      }
      case "beacon":
        // Soon, not now: a burst of hellos (a cluster starting) costs one beacon.
        this.#nextBeaconAt = this.#o.clock.now() + Math.min(20, this.#o.timings.heartbeatMs / 4);
        if (this.#nextBeaconAt < this.#timerAt) this.#arm(this.#nextBeaconAt);
        break;
    }
  }

  #base() {
    const ctx = this.context;
    return {
      v: PROTOCOL_VERSION,
      node: this.#o.self.node,
      incarnation: this.#o.self.incarnation,
      view: ctx.summary,
    } as const;
  }

  #downList(ctx: MembershipContext): Member[] {
    if (this.#down.peers !== ctx.peers) this.#down = { peers: ctx.peers, list: downList(ctx) };
    return this.#down.list;
  }

  #heartbeatMessage(): Heartbeat {
    const ctx = this.context;
    return {
      v: PROTOCOL_VERSION,
      node: this.#o.self.node,
      incarnation: this.#o.self.incarnation,
      seq: ++this.#seq,
      view: ctx.summary,
      down: this.#downList(ctx),
    };
  }

  #heartbeat(): void {
    const { transport, subjects, self } = this.#o;
    if (transport.status !== "connected") return;
    try {
      transport.publish(subjects.heartbeat(self.node), encode(this.#heartbeatMessage()));
      this.#o.metrics?.membershipMessage("heartbeat", "sent");
    } catch (error) {
      this.#warn("heartbeat", { err: error }, "could not publish a heartbeat");
    }
  }

  #beacon(now: number): void {
    const ctx = this.context;
    this.#nextBeaconAt = now + this.#o.timings.beaconMs;
    this.#broadcast({
      kind: "beacon",
      ...this.#base(),
      members: viewMembers(ctx),
      down: this.#downList(ctx),
    });
  }

  #alert(about: Member, state: AlertState, cause: string): void {
    // The same alert at most once a half heartbeat: a burst of messages that call for it (hellos
    // of a declared-down node, forged or not) costs one broadcast.
    const key = `${about.node}/${about.incarnation}/${state}`;
    const now = this.#o.clock.now();
    const last = this.#alerted.get(key);
    if (last !== undefined && now - last < this.#o.timings.heartbeatMs / 2) return;
    if (this.#alerted.size >= 4_096) this.#alerted.clear();
    this.#alerted.set(key, now);
    this.#broadcast({ kind: "alert", ...this.#base(), about, state, cause: cause.slice(0, 256) });
  }

  #broadcast(message: MembershipBroadcast): void {
    const { transport, subjects, self } = this.#o;
    if (transport.status !== "connected") return;
    try {
      transport.publish(subjects.membership(self.node), encode(message));
      this.#o.metrics?.membershipMessage(message.kind, "sent");
    } catch (error) {
      this.#warn("broadcast", { err: error, kind: message.kind }, "could not publish a membership broadcast");
    }
  }

  /** A heartbeat of node `node`, which this node watches. */
  #onHeartbeat(msg: Message, node: number): void {
    const hb = this.#read(msg, heartbeatSchema, "heartbeat");
    if (!hb) return;
    const { incarnation, view, down } = hb;
    // The subject is what nats.conf lets only node `node` publish to: a body naming another node is forged.
    if (hb.node !== node) {
      this.#warn(
        "forged-heartbeat",
        { subject: msg.subject, node: hb.node },
        "ignored a heartbeat whose subject names another node",
      );
      return;
    }
    this.#o.metrics?.membershipMessage("heartbeat", "received");
    this.#send({ type: "peer.heartbeat", from: { node, incarnation }, view, down, at: this.#o.clock.now() });
  }

  #onBroadcast(msg: Message): void {
    const m = this.#read(msg, membershipBroadcastSchema, "broadcast");
    if (!m) return;
    if (m.node === this.#o.self.node) return;
    // Only node `m.node` may publish on its own subject (nats.conf): a body naming another node is forged.
    if (msg.subject !== this.#o.subjects.membership(m.node)) {
      this.#warn(
        "forged-broadcast",
        { subject: msg.subject, node: m.node },
        "ignored a membership broadcast whose subject names another node",
      );
      return;
    }
    this.#o.metrics?.membershipMessage(m.kind, "received");
    const from = { node: m.node, incarnation: m.incarnation };
    const at = this.#o.clock.now();
    switch (m.kind) {
      case "hello":
        this.#send({ type: "peer.hello", from, view: m.view, at });
        break;
      case "leave":
        this.#send({ type: "peer.leave", from, at });
        break;
      case "alert":
        this.#send({
          type: "peer.alert",
          from,
          view: m.view,
          about: m.about,
          state: m.state,
          cause: m.cause,
          at,
        });
        break;
      case "beacon": {
        // A beacon of the view this node holds says nothing new of its members: they are not even read.
        const own = this.context.summary;
        let members: readonly Member[] | "same" = "same";
        if (m.view.digest !== own.digest || m.view.size !== own.size) {
          const parsed = beaconMembersSchema.safeParse(m.members);
          if (!parsed.success) {
            this.#warn("bad-broadcast", { node: m.node }, "ignored a beacon with malformed members");
            return;
          }
          members = parsed.data;
        }
        this.#send({ type: "peer.beacon", from, view: m.view, members, down: m.down, at });
        break;
      }
    }
  }

  /**
   * The checked body of a membership message, or undefined (warned) when it is
   * malformed or is JetStream speaking: a stream's republish (or a consumer's
   * delivery) onto a membership subject is not the node's own publish.
   */
  #read<T>(msg: Message, schema: z.ZodType<T>, what: "heartbeat" | "broadcast"): T | undefined {
    if (this.#stopped) return undefined;
    if (header(msg, "Nats-Stream") !== undefined) {
      this.#warn(
        `republished-${what}`,
        { subject: msg.subject },
        `ignored a ${what} republished by JetStream`,
      );
      return undefined;
    }
    const parsed = parseOnce(msg.data, schema);
    if (parsed?.success) return parsed.data;
    const text =
      what === "heartbeat" ? "ignored a malformed heartbeat" : "ignored a malformed membership broadcast";
    this.#warn(`bad-${what}`, { bytes: msg.data.byteLength }, text);
    return undefined;
  }

  #probe(peer: Member): void {
    const { transport, subjects, clock, timings } = this.#o;
    this.#o.metrics?.membershipMessage("probe", "sent");
    transport
      .request(subjects.probe(peer.node), encode({ node: this.#o.self.node }), {
        timeoutMs: timings.heartbeatMs,
      })
      .then(
        (reply) => {
          const decoded = decode(reply.data, "cbor");
          const who = decoded.ok ? probeReplySchema.safeParse(decoded.value) : undefined;
          // Only the peer asked for may answer for it.
          if (who?.success && who.data.node === peer.node && !this.#stopped) {
            this.#send({ type: "probe.answered", from: who.data, at: clock.now() });
          }
        },
        (error: unknown) => {
          if (this.#stopped) return;
          if (error instanceof NoRespondersError) {
            this.#send({ type: "probe.noResponders", peer, at: clock.now() });
          } else if (error instanceof TimeoutError) {
            // For a watched peer the machine judges by heartbeats; the link may be cut.
            this.#send({ type: "probe.timedOut", peer, at: clock.now() });
          }
        },
      );
  }

  #announce(change: ViewChange): void {
    const { self, logger } = this.#o;
    const event: EventMessage = {
      v: PROTOCOL_VERSION,
      node: self.node,
      incarnation: self.incarnation,
      event: change.event,
      view: { id: change.view.id, members: [...change.view.members] },
      changed: change.changed.map((m) => ({ node: m.node, incarnation: m.incarnation })),
      cause: change.cause,
      at: change.at,
    };
    logger.info(
      { event: event.event, view: event.view, changed: event.changed, cause: event.cause },
      `membership ${event.event}`,
    );
    this.#publishEvent(event);
    this.#o.onChange?.(change, event);
  }

  #publishEvent(event: EventMessage): void {
    if (this.#outbox.length >= 1_000) {
      this.#outbox.shift();
      this.#warn(
        "outbox",
        {},
        "dropped the oldest unconfirmed membership event: too many while the link is down",
      );
    }
    this.#outbox.push(event);
    this.#sendEvent(event);
  }

  /** On its CBOR subject and its JSON twin; kept for a retry unless both went out. */
  #sendEvent(event: EventMessage): void {
    const { transport, subjects } = this.#o;
    if (transport.status !== "connected") return;
    const sent = publishNodeEvent(transport, subjects, event);
    if (!sent.ok) {
      this.#warn("event", { err: sent.error, subject: sent.subject }, "could not publish a membership event");
      return;
    }
    const epoch = this.#linkEpoch;
    transport.flush().then(
      () => {
        if (epoch !== this.#linkEpoch) return;
        const i = this.#outbox.indexOf(event);
        if (i >= 0) this.#outbox.splice(i, 1);
      },
      () => {},
    );
  }
}
