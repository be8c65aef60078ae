// How a message reaches its process: numbered per sender, delivered here or
// passed on through the proxies toward the next hop, accepted in per-sender
// order by the process's mailbox, and handed to its actor one at a time. Every
// route ends in a settlement: the message is durably in its process's mailbox
// (or acknowledged by the next hop), or refused for good; that is what the
// proxies acknowledge and what a SEND answers. The proxies resend what is
// lost, so a gap only stays open when its sender gave up: after
// `gapTimeoutMs` (longer than the proxies' give-up) it is skipped.
import type { DvsEvent, Sender } from "../../machines/processEvents.js";
import { decode, encode } from "../../protocol/codec.js";
import type { ErrorName, NodeId } from "../../protocol/messages.js";
import { type Envelope, MAX_HOPS } from "../../protocol/processes.js";
import type { Clock } from "../../transport/clock.js";
import type { Transport } from "../../transport/transport.js";
import { describe, type Failure } from "./failures.js";
import type { Hosted, HostedTable, ProcessRuntimeStats, Warn } from "./hosted.js";
import { procKey } from "./locations.js";
import type { Persistence } from "./persistence.js";
import type { Proxies, Settlement } from "./proxy.js";

/** A message on its way: refused at once, or a promise of its settlement. */
export type Routed = { readonly error: ErrorName } | { readonly settled: Promise<Settlement> };

export interface RouterOptions {
  readonly self: NodeId;
  readonly table: HostedTable;
  readonly proxies: Proxies;
  readonly transport: Transport;
  readonly clock: Clock;
  readonly warn: Warn;
  readonly stats: ProcessRuntimeStats;
  readonly persistence: Persistence;
  /** How long a gap in one sender's sequence may stay open. */
  readonly gapTimeoutMs: number;
  /** Whether `node` is this node or a member of its view. */
  readonly inView: (node: NodeId) => boolean;
  /** Whether DC `dcid` is known to have ended: nothing is sent to it. */
  readonly dcEnded: (dcid: number) => boolean;
}

export class Router {
  readonly #o: RouterOptions;

  constructor(options: RouterOptions) {
    this.#o = options;
  }

  /**
   * Numbers and sends one message from `sender`; the seq is used only when the
   * message leaves, so a refused send leaves no gap behind.
   */
  sendFrom(
    sender: Sender,
    seqs: Record<string, number>,
    dcid: number,
    endpoint: number,
    body: unknown,
  ): Failure | { seq: number; node: NodeId; settled: Promise<Settlement> } {
    const { self, table, transport } = this.#o;
    const dest = procKey(dcid, endpoint);
    if (this.#o.dcEnded(dcid)) return { error: "ENOENT", message: `DC ${dcid} has ended` };
    const host = table.hosted.has(dest) ? self : table.nextHop(dest);
    if (host === undefined)
      return { error: "ENOENT", message: `no process at endpoint ${endpoint} of DC ${dcid}` };
    if (!this.#o.inView(host)) {
      return { error: "EHOSTDOWN", message: `node ${host}, host of ${dest}, is not in the view` };
    }
    let carried = body;
    if (host === self) {
      // Local deliveries go through the codec too: the receiver gets a copy, as from the wire.
      try {
        const bytes = encode(body);
        if (bytes.byteLength > transport.maxPayload) {
          return { error: "EMSGSIZE", message: `body of ${bytes.byteLength} bytes is too large` };
        }
        const decoded = decode(bytes, "cbor", Number.MAX_SAFE_INTEGER);
        carried = decoded.ok ? decoded.value : body;
      } catch (error) {
        return { error: "EINVAL", message: `body cannot be encoded: ${describe(error)}` };
      }
    }
    const previous = seqs[dest] ?? 0;
    const seq = previous + 1;
    seqs[dest] = seq;
    const routed = this.route({ sender, seq, dcid, endpoint, body: carried, hops: 0 });
    if ("error" in routed) {
      if (seqs[dest] === seq) seqs[dest] = previous;
      return { error: routed.error, message: `could not send to ${dest} on node ${host}` };
    }
    return { seq, node: host, settled: routed.settled };
  }

  /**
   * Delivers a message to a process hosted here, or passes it on toward its
   * host; settled once it is durably in the mailbox, or once the next hop
   * acknowledged it (which it does on the same terms).
   */
  route(msg: Envelope): Routed {
    const { self, table } = this.#o;
    const key = procKey(msg.dcid, msg.endpoint);
    const h = table.hosted.get(key);
    if (h !== undefined) return { settled: this.take(h, msg) };
    const next = table.nextHop(key);
    if (next === undefined || next === self || msg.hops >= MAX_HOPS) {
      this.#o.stats.undeliverable++;
      this.#o.warn(
        `undeliverable:${key}`,
        { dcid: msg.dcid, endpoint: msg.endpoint, sender: msg.sender.key, hops: msg.hops },
        "dropped a message for a process that is not here and has no known host",
      );
      return { error: "ENOENT" };
    }
    return this.#o.proxies.send(next, { ...msg, hops: msg.hops + 1 });
  }

  /**
   * Takes one message for `h`: held while it moves (settled when the move
   * ends), else through its mailbox to its actor (settled once saved). A
   * duplicate settles as its first copy does: it is in the mailbox already.
   */
  take(h: Hosted, msg: Envelope): Promise<Settlement> {
    if (h.actor === undefined || h.provisional !== undefined) {
      // Stopped for a move: held, and shipped with it or delivered here if the move fails.
      // Provisional: held until its old host confirms the move (or dropped with the copy).
      h.stash.push(msg);
      return new Promise((resolve) => h.stashWaiters.push(resolve));
    }
    const accepted = h.mailbox.accept(msg, this.#o.clock.now());
    if (accepted.duplicate) {
      h.duplicates++;
      return this.#o.persistence.durable(h);
    }
    h.queue.push(...accepted.ready);
    this.drain(h);
    this.armGapTimer(h);
    return this.#o.persistence.durable(h);
  }

  /** Hands the queued messages to the actor, one at a time, in order; re-entry only queues. */
  drain(h: Hosted): void {
    if (h.draining) return;
    h.draining = true;
    let delivered = 0;
    try {
      while (
        h.queue.length > 0 &&
        h.actor !== undefined &&
        h.provisional === undefined &&
        this.#o.table.isCurrent(h)
      ) {
        const msg = h.queue.shift()!;
        h.delivered++;
        delivered++;
        h.getfrom = msg.sender.key;
        if (h.failed) continue;
        const event: DvsEvent = { type: "dvs.message", from: msg.sender, seq: msg.seq, body: msg.body };
        h.actor.send(event);
      }
    } finally {
      h.draining = false;
    }
    if (delivered > 0) this.#o.persistence.markDirty(h);
  }

  /** Arms the timer of the oldest open gap in `h`'s mailbox, unless one is armed. */
  armGapTimer(h: Hosted): void {
    if (h.gapTimer !== undefined || h.actor === undefined) return;
    const due = h.mailbox.nextExpiry(this.#o.gapTimeoutMs);
    if (due === undefined) return;
    const { clock } = this.#o;
    h.gapTimer = clock.setTimeout(
      () => {
        h.gapTimer = undefined;
        try {
          this.#expireGaps(h);
        } catch (error) {
          this.#o.warn("gap-timer", { err: error }, "the gap timer of a process failed");
        }
      },
      Math.max(0, due - clock.now()),
    );
  }

  /** Stops `h`'s gap timer (it stops, moves or ends). */
  disarmGapTimer(h: Hosted): void {
    this.#o.clock.clearTimeout(h.gapTimer);
    h.gapTimer = undefined;
  }

  #expireGaps(h: Hosted): void {
    if (!this.#o.table.isCurrent(h) || h.actor === undefined) return;
    const { ready, skipped } = h.mailbox.expire(this.#o.clock.now(), this.#o.gapTimeoutMs);
    if (skipped > 0) {
      h.gaps += skipped;
      this.#o.warn(
        `gap:${h.key}`,
        { dcid: h.dcid, endpoint: h.endpoint, skipped },
        "gave up waiting for messages to a process; delivering the later ones",
      );
    }
    h.queue.push(...ready);
    this.drain(h);
    this.armGapTimer(h);
  }
}
