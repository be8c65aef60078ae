// One proxy pair of a node toward one peer (SPEC 5, "node & proxy"): the
// sender that carries process traffic to the peer and the receiver that takes
// the peer's traffic, with their statistics. `up` while the peer is in this
// node's view, `down` otherwise. The pair makes delivery reliable: the sender
// keeps every frame until the peer acknowledges it, resends it with backoff
// and gives up after `giveUpMs`; the receiver hands each frame on once and
// acknowledges it when its delivery is settled (docs/processes.md, section 5).
// Pure: what to publish, deliver, acknowledge or report comes out as emitted
// events; the runtime (actors/processes/proxy.ts) carries them out and reports
// back. Time arrives in events (`at`). The context is plain data (CBOR safe).
import { enqueueActions, setup } from "xstate";

/** How much a pair keeps in flight, and how it resends (docs/processes.md, section 5). */
export interface ProxyLimits {
  /** Frames in flight at most: a frame numbered `window` past the oldest unacknowledged one waits. */
  readonly window: number;
  /** Payload bytes in flight at most. */
  readonly windowBytes: number;
  /** First resend of an unacknowledged frame after this long; doubled at each resend… */
  readonly resendMs: number;
  /** …up to this. */
  readonly maxResendMs: number;
  /** A frame still unacknowledged this long after it was queued is given up (ETIMEDOUT to its sender). */
  readonly giveUpMs: number;
}

export const defaultProxyLimits: ProxyLimits = {
  window: 1_024,
  windowBytes: 8 * 1024 * 1024,
  resendMs: 250,
  maxResendMs: 4_000,
  giveUpMs: 30_000,
};

export interface ProxyInput {
  readonly self: number;
  readonly peer: number;
  /** Whether the peer is in the view when the pair is created. */
  readonly up: boolean;
  /** When the peer entered that state (the pair's `since`). */
  readonly at: number;
  /** How many times the peer already left the view (a pair created on first use, after some view changes). */
  readonly downs?: number;
  readonly limits?: ProxyLimits;
}

/** Counters of one direction of the pair. */
export interface ProxyDirection {
  /** Frames carried (the sender counts a frame once, however often it is resent). */
  msgs: number;
  /** Payload bytes carried. */
  bytes: number;
  /** Sender: publish failures and frames given up. Receiver: duplicates, missing and rejected frames. */
  errors: number;
  /** When the last frame was carried (clock ms), or null. */
  last: number | null;
  /** Sender: the last pair sequence number used. Receiver: the highest one received. */
  seq: number;
}

export interface ProxySender extends ProxyDirection {
  /** Frames published again for want of an acknowledgement. */
  resent: number;
  /** Frames the peer acknowledged. */
  acked: number;
  /** Frames given up after `giveUpMs` (their senders were told ETIMEDOUT). */
  gaveUp: number;
}

/** A frame awaiting its acknowledgement. */
export interface OutFrame {
  readonly pseq: number;
  /** The message (an envelope), as plain data. */
  readonly msg: unknown;
  readonly bytes: number;
  readonly queuedAt: number;
  /** When it is resent if still unacknowledged. */
  readonly dueAt: number;
  /** Times published. */
  readonly attempts: number;
}

/** What the receiver knows of one frame above its floor: handed on and not settled yet, or its outcome. */
export interface SeenFrame {
  readonly pseq: number;
  /** `pending`, `ok`, or the error name it was refused with. */
  readonly outcome: string;
}

export interface ProxyReceiver extends ProxyDirection {
  /** The sending peer's epoch (its runtime's incarnation) the sequence numbers belong to. */
  epoch: number | null;
  /** Every frame numbered up to here is settled at the sender (its `base` - 1): forgotten here. */
  floor: number;
  /** Frames above the floor seen so far, by number. */
  seen: SeenFrame[];
  /** Frames the sender gave up on before this node got them. */
  missing: number;
  /** Frames received again (a resend crossing an acknowledgement, or a lost one). */
  duplicates: number;
  /** Frames that could not be read, were not addressed to this node, or lay beyond the window. */
  rejected: number;
}

export interface ProxyContext {
  readonly self: number;
  readonly peer: number;
  readonly limits: ProxyLimits;
  /** Mirrors the state (`up`), so the context alone says it. */
  up: boolean;
  sent: ProxySender;
  /** Frames awaiting an acknowledgement, by number. */
  out: OutFrame[];
  received: ProxyReceiver;
  /** When the pair entered its current state. */
  since: number;
  /** How many times the peer left the view. */
  downs: number;
}

/** One acknowledgement: frame `pseq` was delivered (no `error`) or refused for good. */
export interface ProxyAck {
  readonly pseq: number;
  readonly error?: string | undefined;
}

export type ProxyEvent =
  | { type: "peer.up"; at: number }
  | { type: "peer.down"; at: number }
  /** A message to carry (the runtime checked `hasRoom`). */
  | { type: "frame.queue"; msg: unknown; bytes: number; at: number }
  /** Resends what is due and gives up what is too old (armed for `nextDue`). */
  | { type: "resend.tick"; at: number }
  /** A frame could not be published (transport closed): it stays, and is resent. */
  | { type: "frame.failed"; at: number }
  /** Acknowledgements from the peer for frames of this node's current epoch. */
  | { type: "ack.received"; acks: readonly ProxyAck[]; at: number }
  | {
      type: "frame.arrived";
      epoch: number;
      pseq: number;
      base: number;
      msg: unknown;
      bytes: number;
      at: number;
    }
  /** The delivery of a frame handed on (`proxy.deliver`) is settled. */
  | { type: "frame.settled"; epoch: number; pseq: number; error?: string }
  /** A frame from this peer that could not be read. */
  | { type: "frame.rejected"; at: number };

/** What the pair asks the runtime to do. */
export type ProxyEmitted =
  /** Publish frame `pseq` (again, when `resend`) with the sender's current `base`. */
  | { type: "proxy.publish"; pseq: number; base: number; msg: unknown; resend: boolean }
  /** A frame's fate at the sender: acknowledged (no `error`), refused by the peer, or given up (ETIMEDOUT). */
  | { type: "proxy.settled"; pseq: number; error?: string }
  /** Hand a received frame's message on, then report `frame.settled`. */
  | { type: "proxy.deliver"; epoch: number; pseq: number; msg: unknown }
  /** Acknowledge frame `pseq` of the peer's `epoch`. */
  | { type: "proxy.ack"; epoch: number; pseq: number; error?: string };

const direction = (): ProxyDirection => ({ msgs: 0, bytes: 0, errors: 0, last: null, seq: 0 });
const sender = (): ProxySender => ({ ...direction(), resent: 0, acked: 0, gaveUp: 0 });
const receiver = (): ProxyReceiver => ({
  ...direction(),
  epoch: null,
  floor: 0,
  seen: [],
  missing: 0,
  duplicates: 0,
  rejected: 0,
});

/** A pair before any frame: what the machine starts with, and what a pair not yet created reports. */
export function initialProxyContext(input: ProxyInput): ProxyContext {
  return {
    self: input.self,
    peer: input.peer,
    limits: input.limits ?? defaultProxyLimits,
    up: input.up,
    sent: sender(),
    out: [],
    received: receiver(),
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

/** The oldest frame number not settled at the sender (the next one when none is in flight). */
export function baseOf(c: ProxyContext): number {
  return c.out[0]?.pseq ?? c.sent.seq + 1;
}

/** Whether one more frame of `bytes` fits the window. */
export function hasRoom(c: ProxyContext, bytes: number): boolean {
  const inFlight = c.out.reduce((n, f) => n + f.bytes, 0);
  return c.sent.seq + 1 - baseOf(c) < c.limits.window && inFlight + bytes <= c.limits.windowBytes;
}

/** When the next resend or give-up is due, or undefined when nothing is in flight. */
export function nextDue(c: ProxyContext): number | undefined {
  let due: number | undefined;
  for (const f of c.out) {
    const at = Math.min(f.dueAt, f.queuedAt + c.limits.giveUpMs);
    if (due === undefined || at < due) due = at;
  }
  return due;
}

/** The delay before the resend that follows `attempts` publications. */
export function backoff(limits: ProxyLimits, attempts: number): number {
  return Math.min(limits.resendMs * 2 ** Math.min(attempts - 1, 30), limits.maxResendMs);
}

export interface Step {
  readonly context: ProxyContext;
  readonly emitted: ProxyEmitted[];
}

/** Sender: numbers and keeps a new frame, and publishes it. */
export function queueFrame(c: ProxyContext, msg: unknown, bytes: number, at: number): Step {
  const pseq = c.sent.seq + 1;
  const frame: OutFrame = { pseq, msg, bytes, queuedAt: at, dueAt: at + backoff(c.limits, 1), attempts: 1 };
  const out = [...c.out, frame];
  const s = c.sent;
  const sent = { ...s, msgs: s.msgs + 1, bytes: s.bytes + bytes, last: at, seq: pseq };
  return {
    context: { ...c, out, sent },
    emitted: [{ type: "proxy.publish", pseq, base: out[0]!.pseq, msg, resend: false }],
  };
}

/** Sender: gives up the frames queued `giveUpMs` ago or more, and resends the others that are due. */
export function resendDue(c: ProxyContext, at: number): Step {
  const emitted: ProxyEmitted[] = [];
  const kept: OutFrame[] = [];
  let gaveUp = 0;
  for (const f of c.out) {
    if (at - f.queuedAt >= c.limits.giveUpMs) {
      gaveUp++;
      emitted.push({ type: "proxy.settled", pseq: f.pseq, error: "ETIMEDOUT" });
    } else kept.push(f);
  }
  const base = kept[0]?.pseq ?? c.sent.seq + 1;
  let resent = 0;
  const out = kept.map((f) => {
    if (f.dueAt > at) return f;
    resent++;
    emitted.push({ type: "proxy.publish", pseq: f.pseq, base, msg: f.msg, resend: true });
    return { ...f, attempts: f.attempts + 1, dueAt: at + backoff(c.limits, f.attempts + 1) };
  });
  if (gaveUp === 0 && resent === 0) return { context: c, emitted };
  const s = c.sent;
  const sent = { ...s, resent: s.resent + resent, gaveUp: s.gaveUp + gaveUp, errors: s.errors + gaveUp };
  return { context: { ...c, out, sent }, emitted };
}

/** Sender: drops the acknowledged frames and reports their fate; acks of frames not in flight are ignored. */
export function takeAcks(c: ProxyContext, acks: readonly ProxyAck[]): Step {
  const byPseq = new Map(acks.map((a) => [a.pseq, a]));
  const emitted: ProxyEmitted[] = [];
  const out = c.out.filter((f) => {
    const ack = byPseq.get(f.pseq);
    if (ack === undefined) return true;
    emitted.push({
      type: "proxy.settled",
      pseq: f.pseq,
      ...(ack.error !== undefined ? { error: ack.error } : {}),
    });
    return false;
  });
  if (emitted.length === 0) return { context: c, emitted };
  return { context: { ...c, out, sent: { ...c.sent, acked: c.sent.acked + emitted.length } }, emitted };
}

/**
 * Receiver: one frame of the peer's `epoch`. A new epoch (the peer restarted)
 * starts over; a frame of an older one is rejected. The sender's `base` raises the floor: frames below it are
 * settled there and forgotten here (those never seen count as `missing`). A
 * frame at or below the floor is stale; one seen before is a duplicate, and
 * acknowledged again once settled; one more than a window above the floor is
 * rejected; any other is handed on (`proxy.deliver`).
 */
export function arrive(
  c: ProxyContext,
  f: { epoch: number; pseq: number; base: number; msg: unknown; bytes: number; at: number },
): Step {
  // A frame of an earlier run of the peer, still in flight: that run is gone, and so is its sender.
  if (c.received.epoch !== null && f.epoch < c.received.epoch) {
    const old = c.received;
    return {
      context: { ...c, received: { ...old, rejected: old.rejected + 1, errors: old.errors + 1 } },
      emitted: [],
    };
  }
  let r =
    c.received.epoch === f.epoch ? c.received : { ...receiver(), ...counters(c.received), epoch: f.epoch };
  if (r.epoch !== c.received.epoch) r = { ...r, floor: f.base - 1 };
  if (f.base - 1 > r.floor) {
    const floor = f.base - 1;
    const seenBelow = r.seen.filter((s) => s.pseq <= floor).length;
    const missing = Math.max(0, floor - r.floor - seenBelow);
    r = {
      ...r,
      floor,
      seen: r.seen.filter((s) => s.pseq > floor),
      missing: r.missing + missing,
      errors: r.errors + missing,
    };
  }
  const emitted: ProxyEmitted[] = [];
  const known = r.seen.find((s) => s.pseq === f.pseq);
  if (f.pseq <= r.floor || known !== undefined) {
    r = { ...r, duplicates: r.duplicates + 1, errors: r.errors + 1 };
    if (known !== undefined && known.outcome !== "pending") emitted.push(ackOf(f.epoch, known));
  } else if (f.pseq > r.floor + c.limits.window) {
    r = { ...r, rejected: r.rejected + 1, errors: r.errors + 1 };
  } else {
    const seen = [...r.seen, { pseq: f.pseq, outcome: "pending" }].sort((a, b) => a.pseq - b.pseq);
    r = { ...r, seen, msgs: r.msgs + 1, bytes: r.bytes + f.bytes, last: f.at, seq: Math.max(r.seq, f.pseq) };
    emitted.push({ type: "proxy.deliver", epoch: f.epoch, pseq: f.pseq, msg: f.msg });
  }
  return { context: { ...c, received: r }, emitted };
}

/** Receiver: a frame handed on is settled; it is acknowledged (unless the peer restarted or gave up on it meanwhile). */
export function settle(c: ProxyContext, epoch: number, pseq: number, error: string | undefined): Step {
  const r = c.received;
  if (r.epoch !== epoch) return { context: c, emitted: [] };
  const at = r.seen.findIndex((s) => s.pseq === pseq && s.outcome === "pending");
  if (at < 0) return { context: c, emitted: [] };
  const entry = { pseq, outcome: error ?? "ok" };
  const seen = r.seen.map((s, i) => (i === at ? entry : s));
  return { context: { ...c, received: { ...r, seen } }, emitted: [ackOf(epoch, entry)] };
}

function ackOf(epoch: number, s: SeenFrame): ProxyEmitted {
  return { type: "proxy.ack", epoch, pseq: s.pseq, ...(s.outcome === "ok" ? {} : { error: s.outcome }) };
}

/** The receiver's running totals, kept across a peer's epochs. */
function counters(r: ProxyReceiver) {
  const { msgs, bytes, errors, last, missing, duplicates, rejected } = r;
  return { msgs, bytes, errors, last, missing, duplicates, rejected };
}

/** The pair's step for one event that carries frames: its next context and what it emits (undefined: not such an event). */
export function proxyStep(c: ProxyContext, e: ProxyEvent): Step | undefined {
  switch (e.type) {
    case "frame.queue":
      return queueFrame(c, e.msg, e.bytes, e.at);
    case "resend.tick":
      return resendDue(c, e.at);
    case "ack.received":
      return takeAcks(c, e.acks);
    case "frame.arrived":
      return arrive(c, e);
    case "frame.settled":
      return settle(c, e.epoch, e.pseq, e.error);
    default:
      return undefined;
  }
}

export const proxyMachine = setup({
  types: {
    context: {} as ProxyContext,
    input: {} as ProxyInput,
    events: {} as ProxyEvent,
    emitted: {} as ProxyEmitted,
  },
  guards: {
    peerUp: ({ context }) => context.up,
  },
  actions: {
    viewChanged: enqueueActions(({ context, event, enqueue }) => {
      if (event.type === "peer.up" || event.type === "peer.down") {
        enqueue.assign(linkAfter(context, event.type === "peer.up", event.at));
      }
    }),
    step: enqueueActions(({ context, event, enqueue }) => {
      const step = proxyStep(context, event);
      if (step === undefined) return;
      if (step.context !== context) enqueue.assign(step.context);
      for (const e of step.emitted) enqueue.emit(e);
    }),
    countFailed: enqueueActions(({ context, enqueue }) => {
      enqueue.assign({ sent: { ...context.sent, errors: context.sent.errors + 1 } });
    }),
    countRejected: enqueueActions(({ context, enqueue }) => {
      const r = context.received;
      enqueue.assign({ received: { ...r, errors: r.errors + 1, rejected: r.rejected + 1 } });
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
  // Frames keep flowing while the peer is out of the view: it may come back before they are given up.
  on: {
    "frame.queue": { actions: "step" },
    "resend.tick": { actions: "step" },
    "ack.received": { actions: "step" },
    "frame.arrived": { actions: "step" },
    "frame.settled": { actions: "step" },
    "frame.failed": { actions: "countFailed" },
    "frame.rejected": { actions: "countRejected" },
  },
});

export type ProxyMachine = typeof proxyMachine;
