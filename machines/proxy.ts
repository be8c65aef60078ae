// One proxy pair of a node toward one peer (SPEC 5, "node & proxy"): the
// sender that carries process traffic to the peer and the receiver that takes
// the peer's traffic, with their statistics. `up` while the peer is in this
// node's view, `down` otherwise. Pure: the runtime (actors/processes/proxy.ts) publishes
// frames and reports what it sent and received as events; time arrives in
// events (`at`). The context is plain data (CBOR round trip safe).
import { assign, setup } from "xstate";

export interface ProxyInput {
  readonly self: number;
  readonly peer: number;
  /** Whether the peer is in the view when the pair is created. */
  readonly up: boolean;
  /** When the peer entered that state (the pair's `since`). */
  readonly at: number;
  /** How many times the peer already left the view (a pair created on first use, after some view changes). */
  readonly downs?: number;
}

/** Counters of one direction of the pair. */
export interface ProxyDirection {
  /** Frames carried. */
  msgs: number;
  /** Payload bytes carried. */
  bytes: number;
  /** Sender: frames that could not be published. Receiver: gaps, duplicates and rejected frames. */
  errors: number;
  /** When the last frame was carried (clock ms), or null. */
  last: number | null;
  /** Sender: the last pair sequence number used. Receiver: the last one received. */
  seq: number;
}

export interface ProxyReceiver extends ProxyDirection {
  /** The sending peer's epoch (its runtime's incarnation) the sequence numbers belong to. */
  epoch: number | null;
  /** Frames missing between two received ones. */
  missing: number;
  /** Frames received twice or out of order. */
  duplicates: number;
  /** Frames that could not be read or were not addressed to this node. */
  rejected: number;
}

export interface ProxyContext {
  readonly self: number;
  readonly peer: number;
  /** Mirrors the state (`up`), so the context alone says it. */
  up: boolean;
  sent: ProxyDirection;
  received: ProxyReceiver;
  /** When the pair entered its current state. */
  since: number;
  /** How many times the peer left the view. */
  downs: number;
}

export type ProxyEvent =
  | { type: "peer.up"; at: number }
  | { type: "peer.down"; at: number }
  /** A frame with pair sequence `seq` (see `nextSendSeq`) was published. */
  | { type: "frame.sent"; seq: number; bytes: number; at: number }
  /** A frame could not be published (too large, transport closed). */
  | { type: "frame.failed"; at: number }
  | { type: "frame.received"; seq: number; epoch: number; bytes: number; at: number }
  /** A frame from this peer that could not be read. */
  | { type: "frame.rejected"; at: number };

/** The pair sequence number of the next frame to send. */
export function nextSendSeq(context: ProxyContext): number {
  return context.sent.seq + 1;
}

const direction = (): ProxyDirection => ({ msgs: 0, bytes: 0, errors: 0, last: null, seq: 0 });

/** A pair before any frame: what the machine starts with, and what a pair not yet created reports. */
export function initialProxyContext(input: ProxyInput): ProxyContext {
  return {
    self: input.self,
    peer: input.peer,
    up: input.up,
    sent: direction(),
    received: { ...direction(), epoch: null, missing: 0, duplicates: 0, rejected: 0 },
    since: input.at,
    downs: input.downs ?? 0,
  };
}

/** The view side of a pair: whether the peer is in the view, since when, and how often it left. */
export interface ProxyLink {
  readonly up: boolean;
  readonly since: number;
  readonly downs: number;
}

/** The link after a view change that puts the peer in the view (`up`) or out of it. */
export function linkAfter(link: ProxyLink, up: boolean, at: number): ProxyLink {
  if (link.up === up) return link;
  return { up, since: at, downs: up ? link.downs : link.downs + 1 };
}

export const proxyMachine = setup({
  types: {
    context: {} as ProxyContext,
    input: {} as ProxyInput,
    events: {} as ProxyEvent,
  },
  guards: {
    peerUp: ({ context }) => context.up,
  },
  actions: {
    viewChanged: assign(({ context, event }) =>
      event.type === "peer.up" || event.type === "peer.down"
        ? linkAfter(context, event.type === "peer.up", event.at)
        : {},
    ),
    countSent: assign({
      sent: ({ context, event }) => {
        if (event.type !== "frame.sent") return context.sent;
        const s = context.sent;
        return { ...s, msgs: s.msgs + 1, bytes: s.bytes + event.bytes, last: event.at, seq: event.seq };
      },
    }),
    countFailed: assign({
      sent: ({ context }) => ({ ...context.sent, errors: context.sent.errors + 1 }),
    }),
    countReceived: assign({
      received: ({ context, event }) => {
        if (event.type !== "frame.received") return context.received;
        return receive(context.received, event.seq, event.epoch, event.bytes, event.at);
      },
    }),
    countRejected: assign({
      received: ({ context }) => ({
        ...context.received,
        errors: context.received.errors + 1,
        rejected: context.received.rejected + 1,
      }),
    }),
  },
}).createMachine({
  id: "proxy",
  context: ({ input }) => initialProxyContext(input),
  initial: "starting",
  states: {
    // Transient: picks `up` or `down` from the input.
    starting: {
      always: [{ guard: "peerUp", target: "up" }, { target: "down" }],
    },
    up: {
      on: {
        "peer.down": { target: "down", actions: "viewChanged" },
      },
    },
    down: {
      on: {
        "peer.up": { target: "up", actions: "viewChanged" },
      },
    },
  },
  on: {
    "frame.sent": { actions: "countSent" },
    "frame.failed": { actions: "countFailed" },
    "frame.received": { actions: "countReceived" },
    "frame.rejected": { actions: "countRejected" },
  },
});

export type ProxyMachine = typeof proxyMachine;

/**
 * The receiver's counters after frame `seq` of epoch `epoch`: the next one in
 * sequence is counted; a jump counts the frames missed as one error per gap; a
 * repeated or older one is a duplicate. A new epoch (the peer restarted) starts over.
 */
export function receive(
  r: ProxyReceiver,
  seq: number,
  epoch: number,
  bytes: number,
  at: number,
): ProxyReceiver {
  const base = r.epoch === epoch ? r : { ...r, epoch, seq: 0 };
  const carried = { ...base, msgs: base.msgs + 1, bytes: base.bytes + bytes, last: at };
  if (seq === base.seq + 1) return { ...carried, seq };
  if (seq > base.seq + 1) {
    return { ...carried, seq, errors: base.errors + 1, missing: base.missing + (seq - base.seq - 1) };
  }
  return { ...carried, errors: base.errors + 1, duplicates: base.duplicates + 1 };
}
