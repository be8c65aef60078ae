// The membership runtime of one node: runs the membership machine as an actor
// and gives it the world — heartbeats in and out, probes of late peers (NATS
// "no responders" says at once that a peer's subscriptions are gone), the
// node's own link status, and a tick from the injected clock. View changes go
// out on `dvs.<c>.events` and to the caller (scripts, the node lifecycle).
import { type Actor, createActor } from "xstate";
import {
  downList,
  type Member,
  type MembershipMachine,
  type MembershipTimings,
  membershipMachine,
  summarize,
  type ViewChange,
} from "../machines/membership.js";
import { decode, encode } from "../protocol/codec.js";
import {
  type EventMessage,
  type Heartbeat,
  heartbeatSchema,
  PROTOCOL_VERSION,
  probeReplySchema,
} from "../protocol/messages.js";
import { Responder, refusalLog } from "../protocol/responder.js";
import type { Subjects } from "../protocol/subjects.js";
import type { Clock, TimerHandle } from "../transport/clock.js";
import { NoRespondersError } from "../transport/errors.js";
import { header, type Message, type Subscription, type Transport } from "../transport/transport.js";
import { type Logger, throttledWarn } from "./logger.js";

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
}

export class Membership {
  readonly actor: Actor<MembershipMachine>;
  readonly #o: MembershipOptions;
  readonly #warn: ReturnType<typeof throttledWarn>;
  readonly #responder: Responder;
  #subscriptions: Subscription[] = [];
  // Both timers run on the injected clock and re-arm themselves from their own
  // callback (a heartbeat sent early, at start or link-up, restarts its period);
  // stop() clears both, and a callback that fires after it does nothing.
  #heartbeatTimer: TimerHandle | undefined;
  #tickTimer: TimerHandle | undefined;
  #seq = 0;
  #stopped = false;
  /**
   * Events not yet confirmed by a flush (bounded). A link that breaks silently
   * swallows what was published just before; those are published again when
   * the link is back, so delivery is at least once (dedupe by node, incarnation, view id).
   */
  #outbox: Uint8Array[] = [];
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
      actions: {
        announce: (_, change) => this.#announce(change),
        probe: (_, peer) => this.#probe(peer),
        rejoin: (_, params) => {
          if (this.#rejoining) return;
          this.#rejoining = true;
          options.logger.warn(
            { reason: params.reason },
            "declared down by the cluster; rejoining as a new incarnation",
          );
          options.onRejoin?.(params.reason, params.viewId);
        },
      },
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

  get context() {
    return this.actor.getSnapshot().context;
  }

  start(): void {
    const { transport, subjects, self } = this.#o;
    this.actor.start();
    this.#subscriptions = [
      transport.subscribe(subjects.heartbeats, (msg) => this.#onHeartbeat(msg)),
      transport.subscribe(subjects.probe(self.node), (msg) => {
        this.#responder.answer(msg, encode({ node: self.node, incarnation: self.incarnation }));
      }),
    ];
    this.#heartbeat();
    this.#scheduleTick();
  }

  /** The node's own NATS link went down or came back. */
  link(up: boolean): void {
    if (this.#stopped) return;
    if (!up) this.#linkEpoch++;
    this.actor.send({ type: up ? "link.up" : "link.down", at: this.#o.clock.now() });
    if (!up) return;
    this.#heartbeat();
    for (const bytes of [...this.#outbox]) this.#sendEvent(bytes);
  }

  /**
   * Node `node` may be gone (its NATS connection closed, says the server's
   * DISCONNECT advisory): probe it now rather than wait for its heartbeats to
   * be late. The probe's answer decides; the advisory alone changes nothing.
   */
  suspect(node: number): void {
    if (this.#stopped || node === this.#o.self.node) return;
    this.actor.send({ type: "peer.suspected", node, at: this.#o.clock.now() });
  }

  /** Stops heartbeating; with `leave`, first tells the others so they see DISCONNECT at once. */
  async stop(options: { leave: boolean }): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    const { transport, clock } = this.#o;
    clock.clearTimeout(this.#heartbeatTimer);
    clock.clearTimeout(this.#tickTimer);
    if (options.leave && transport.status === "connected") {
      try {
        transport.publish(
          this.#o.subjects.heartbeat(this.#o.self.node),
          encode(this.#heartbeatMessage(true)),
        );
        await transport.flush();
      } catch (error) {
        this.#o.logger.warn({ err: error }, "could not announce the leave");
      }
    }
    for (const sub of this.#subscriptions) sub.unsubscribe();
    this.#subscriptions = [];
    this.actor.stop();
  }

  #heartbeatMessage(leaving = false): Heartbeat {
    const ctx = this.context;
    return {
      v: PROTOCOL_VERSION,
      node: this.#o.self.node,
      incarnation: this.#o.self.incarnation,
      seq: ++this.#seq,
      view: summarize(ctx.view, this.#o.self.node),
      down: downList(ctx),
      ...(leaving ? { leaving: true } : {}),
    };
  }

  #heartbeat(): void {
    if (this.#stopped) return;
    const { transport, clock, subjects, self, timings } = this.#o;
    clock.clearTimeout(this.#heartbeatTimer);
    if (transport.status === "connected") {
      try {
        transport.publish(subjects.heartbeat(self.node), encode(this.#heartbeatMessage()));
      } catch (error) {
        this.#warn("heartbeat", { err: error }, "could not publish a heartbeat");
      }
    }
    this.#heartbeatTimer = clock.setTimeout(() => this.#heartbeat(), timings.heartbeatMs);
  }

  #scheduleTick(): void {
    const { clock, timings } = this.#o;
    this.#tickTimer = clock.setTimeout(() => {
      if (this.#stopped) return;
      this.actor.send({ type: "clock.tick", at: clock.now() });
      this.#scheduleTick();
    }, timings.tickMs);
  }

  #onHeartbeat(msg: Message): void {
    if (this.#stopped) return;
    const { subject, data } = msg;
    // A stream's republish (or a consumer's delivery) onto a heartbeat subject is
    // JetStream speaking, not the node: only a node's own publish counts.
    if (header(msg, "Nats-Stream") !== undefined) {
      this.#warn("republished-heartbeat", { subject }, "ignored a heartbeat republished by JetStream");
      return;
    }
    const decoded = decode(data, "cbor");
    const hb = decoded.ok ? heartbeatSchema.safeParse(decoded.value) : undefined;
    if (!hb?.success) {
      this.#warn("bad-heartbeat", { bytes: data.byteLength }, "ignored a malformed heartbeat");
      return;
    }
    const { node, incarnation, view, down, leaving } = hb.data;
    if (node === this.#o.self.node) return;
    // The subject is what nats.conf lets only node `node` publish to: a body naming another node is forged.
    if (subject !== this.#o.subjects.heartbeat(node)) {
      this.#warn(
        "forged-heartbeat",
        { subject, node },
        "ignored a heartbeat whose subject names another node",
      );
      return;
    }
    const at = this.#o.clock.now();
    const from = { node, incarnation };
    if (leaving) this.actor.send({ type: "peer.leave", from, at });
    else this.actor.send({ type: "peer.heartbeat", from, view, down, at });
  }

  #probe(peer: Member): void {
    const { transport, subjects, clock, timings } = this.#o;
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
            this.actor.send({ type: "probe.answered", from: who.data, at: clock.now() });
          }
        },
        (error: unknown) => {
          if (this.#stopped) return;
          if (error instanceof NoRespondersError) {
            this.actor.send({ type: "probe.noResponders", peer, at: clock.now() });
          }
          // A timeout says nothing new: the peer may be slow, or the link cut.
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
    this.#publishEvent(encode(event));
    this.#o.onChange?.(change, event);
  }

  #publishEvent(bytes: Uint8Array): void {
    if (this.#outbox.length >= 1_000) {
      this.#outbox.shift();
      this.#warn(
        "outbox",
        {},
        "dropped the oldest unconfirmed membership event: too many while the link is down",
      );
    }
    this.#outbox.push(bytes);
    this.#sendEvent(bytes);
  }

  #sendEvent(bytes: Uint8Array): void {
    const { transport, subjects } = this.#o;
    if (transport.status !== "connected") return;
    try {
      transport.publish(subjects.nodeEvents(this.#o.self.node), bytes);
    } catch (error) {
      this.#warn("event", { err: error }, "could not publish a membership event");
      return;
    }
    const epoch = this.#linkEpoch;
    transport.flush().then(
      () => {
        if (epoch !== this.#linkEpoch) return;
        const i = this.#outbox.indexOf(bytes);
        if (i >= 0) this.#outbox.splice(i, 1);
      },
      () => {},
    );
  }
}
