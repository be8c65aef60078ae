// The reorder buffer in front of one process: messages are delivered in
// sequence order per sender, duplicates are dropped, and a gap that does not
// fill within a timeout is skipped (the runtime counts it as an error). Pure
// and synchronous; its state is plain data, so it moves with the process.
import type { Envelope, MailboxState } from "../../protocol/processes.js";

export interface Accepted {
  /** Messages now deliverable, in order (empty when `msg` waits for an earlier one or is a duplicate). */
  readonly ready: Envelope[];
  readonly duplicate: boolean;
}

export interface Expired {
  readonly ready: Envelope[];
  /** Sequence numbers given up on. */
  readonly skipped: number;
}

interface Waiting {
  readonly msg: Envelope;
  readonly since: number;
}

export class Mailbox {
  /** Sender key → last seq delivered. */
  readonly #delivered = new Map<string, number>();
  /** Sender key → seq → message waiting for an earlier one. */
  readonly #pending = new Map<string, Map<number, Waiting>>();

  /** Restores a mailbox; `now` restamps the waiting messages (their wait starts over on this node). */
  constructor(state?: MailboxState, now?: number) {
    if (state === undefined) return;
    for (const [key, seq] of Object.entries(state.delivered)) this.#delivered.set(key, seq);
    for (const [key, list] of Object.entries(state.pending)) {
      const waiting = new Map<number, Waiting>();
      for (const { msg, since } of list) waiting.set(msg.seq, { msg, since: now ?? since });
      if (waiting.size > 0) this.#pending.set(key, waiting);
    }
  }

  /** Takes one message. */
  accept(msg: Envelope, now: number): Accepted {
    const key = msg.sender.key;
    const last = this.#delivered.get(key) ?? 0;
    const waiting = this.#pending.get(key);
    if (msg.seq <= last || waiting?.has(msg.seq)) return { ready: [], duplicate: true };
    if (msg.seq !== last + 1) {
      if (waiting === undefined) this.#pending.set(key, new Map([[msg.seq, { msg, since: now }]]));
      else waiting.set(msg.seq, { msg, since: now });
      return { ready: [], duplicate: false };
    }
    const ready = [msg];
    this.#delivered.set(key, msg.seq);
    this.#release(key, ready);
    return { ready, duplicate: false };
  }

  /**
   * Skips the gaps that have been open for `timeoutMs` or more. A gap is open
   * since the first later message of its sender arrived, so every gap below a
   * message that waited that long goes at once.
   */
  expire(now: number, timeoutMs: number): Expired {
    const ready: Envelope[] = [];
    let skipped = 0;
    for (const [key, waiting] of [...this.#pending]) {
      for (;;) {
        let oldest = Number.POSITIVE_INFINITY;
        for (const w of waiting.values()) oldest = Math.min(oldest, w.since);
        if (waiting.size === 0 || now - oldest < timeoutMs) break;
        const first = Math.min(...waiting.keys());
        skipped += first - (this.#delivered.get(key) ?? 0) - 1;
        this.#delivered.set(key, first - 1);
        this.#release(key, ready);
      }
    }
    return { ready, skipped };
  }

  /** When the oldest gap will have waited `timeoutMs`, or undefined when nothing waits. */
  nextExpiry(timeoutMs: number): number | undefined {
    let oldest: number | undefined;
    for (const waiting of this.#pending.values()) {
      for (const w of waiting.values()) if (oldest === undefined || w.since < oldest) oldest = w.since;
    }
    return oldest === undefined ? undefined : oldest + timeoutMs;
  }

  /** Messages waiting for an earlier one. */
  get pendingCount(): number {
    let n = 0;
    for (const waiting of this.#pending.values()) n += waiting.size;
    return n;
  }

  /** The last seq delivered from `key` (0 when none). */
  deliveredFrom(key: string): number {
    return this.#delivered.get(key) ?? 0;
  }

  state(): MailboxState {
    const pending: MailboxState["pending"] = {};
    for (const [key, waiting] of this.#pending) {
      pending[key] = [...waiting.values()]
        .sort((a, b) => a.msg.seq - b.msg.seq)
        .map((w) => ({ msg: w.msg, since: w.since }));
    }
    return { delivered: Object.fromEntries(this.#delivered), pending };
  }

  /** Moves the messages that now follow in sequence from `pending` to `ready`. */
  #release(key: string, ready: Envelope[]): void {
    const waiting = this.#pending.get(key);
    if (waiting === undefined) return;
    let last = this.#delivered.get(key) ?? 0;
    for (let next = waiting.get(last + 1); next !== undefined; next = waiting.get(last + 1)) {
      waiting.delete(last + 1);
      ready.push(next.msg);
      last++;
    }
    this.#delivered.set(key, last);
    if (waiting.size === 0) this.#pending.delete(key);
  }
}
