// Simulated time. Nothing moves until a test calls `advance`/`runUntil` or turns
// on `autoRun`; timers then fire in (due time, insertion order), and the pending
// promise continuations of the process are drained between two timers so that
// async code reacts to one event before the next one happens.
import type { Clock, TimerHandle } from "../clock.js";
import { SimConfigError } from "./errors.js";
import { SimTimer, TimerQueue } from "./timerQueue.js";

export interface SimClockOptions {
  /** Simulated time to start at, in ms (default 0). */
  readonly startMs?: number;
}

/**
 * Lets every queued promise continuation run. Called from a continuation, a
 * nextTick callback runs only once V8 has emptied the microtask queue, so this
 * drains whole promise chains without a costly trip round the event loop.
 */
const settle = (): Promise<void> => new Promise((resolve) => process.nextTick(resolve));

/** A real event-loop turn, so I/O and the test runner's own timers are not starved by a long run. */
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Timers fired between two real event-loop turns. */
const timersPerTurn = 256;

export class SimClock implements Clock {
  readonly #queue = new TimerQueue();
  #now: number;
  #firedSinceTurn = 0;
  /** Serialises advance, runUntil and autoRun batches so two drivers never interleave. */
  #chain: Promise<unknown> = Promise.resolve();
  /** autoRun loops waiting for a timer to appear. */
  readonly #sleepers = new Set<() => void>();

  constructor(options: SimClockOptions = {}) {
    this.#now = options.startMs ?? 0;
    if (!Number.isFinite(this.#now)) throw new SimConfigError("startMs", options.startMs);
  }

  now(): number {
    return this.#now;
  }

  /** Timers scheduled and neither fired nor cleared. */
  get pendingTimers(): number {
    return this.#queue.size;
  }

  /** Due time of the next timer, if any. */
  get nextDue(): number | undefined {
    return this.#queue.peek()?.due;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    return this.schedule(fn, ms, undefined);
  }

  /** setTimeout on behalf of a host's scoped clock. */
  schedule(fn: () => void, ms: number, scope: ScopedClock | undefined): TimerHandle {
    const delay = Number.isFinite(ms) && ms > 0 ? ms : 0;
    const timer = new SimTimer(this.#now + delay, fn, scope);
    this.#queue.push(timer);
    if (this.#sleepers.size > 0) {
      const sleepers = [...this.#sleepers];
      this.#sleepers.clear();
      for (const wake of sleepers) setImmediate(wake);
    }
    return timer;
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    const timer = handle?.timer;
    if (timer instanceof SimTimer && this.#queue.holds(timer)) this.#queue.remove(timer);
  }

  /** A view whose timers can all be cancelled at once (a host that crashes). */
  scope(): ScopedClock {
    return new ScopedClock(this);
  }

  /** Clears every pending timer `scope` scheduled. */
  clearScope(scope: ScopedClock): void {
    for (const timer of this.#queue.filter((t) => t.owner === scope)) this.#queue.remove(timer);
  }

  /** Moves time forward by `ms`, firing every timer due on the way. */
  advance(ms: number): Promise<void> {
    return this.#exclusive(async () => {
      const target = this.#now + (Number.isFinite(ms) && ms > 0 ? ms : 0);
      await this.#drain();
      for (;;) {
        const next = this.#queue.peek();
        if (next === undefined || next.due > target) break;
        this.#fire(next);
        await this.#drain();
      }
      this.#now = target;
    });
  }

  /**
   * Fires timers one by one until `predicate` holds or `maxMs` of simulated time
   * has passed; resolves with whether the predicate held.
   */
  runUntil(predicate: () => boolean, maxMs: number): Promise<boolean> {
    return this.#exclusive(async () => {
      const deadline = this.#now + (Number.isFinite(maxMs) && maxMs > 0 ? maxMs : 0);
      await this.#drain();
      for (;;) {
        if (predicate()) return true;
        const next = this.#queue.peek();
        if (next === undefined || next.due > deadline) break;
        this.#fire(next);
        await this.#drain();
      }
      this.#now = deadline;
      return predicate();
    });
  }

  /**
   * Free-runs: whenever the event loop comes round and no advance/runUntil is
   * running, jumps from timer to timer (a bounded batch per event-loop turn). Lets
   * ordinary async tests await requests with simulated timeouts. Call the returned
   * function to stop.
   */
  autoRun(): () => void {
    let stopped = false;
    const batch = async (): Promise<void> => {
      for (let i = 0; i < timersPerTurn && !stopped; i++) {
        const next = this.#queue.peek();
        if (next === undefined) return;
        this.#fire(next);
        await settle();
      }
    };
    const step = (): void => {
      if (stopped) return;
      if (this.#queue.size === 0) {
        // Nothing to do: sleep, without keeping the event loop alive, until a timer appears.
        this.#sleepers.add(step);
        return;
      }
      // A throwing timer callback surfaces as an unhandled rejection, as a real timer's as an uncaught exception.
      void this.#exclusive(batch).finally(() => setImmediate(step));
    };
    setImmediate(step);
    return () => {
      stopped = true;
      this.#sleepers.delete(step);
    };
  }

  #fire(timer: SimTimer): void {
    this.#queue.remove(timer);
    if (timer.due > this.#now) this.#now = timer.due;
    timer.fn();
  }

  async #drain(): Promise<void> {
    if (++this.#firedSinceTurn >= timersPerTurn) {
      this.#firedSinceTurn = 0;
      await turn();
    }
    await settle();
  }

  #exclusive<T>(run: () => Promise<T>): Promise<T> {
    const result = this.#chain.then(run);
    this.#chain = result.catch(() => undefined);
    return result;
  }
}

/**
 * A Clock scoped to one host: same time as its SimClock, but `cancel()` clears
 * every timer it scheduled and makes later ones inert, so a crashed node's
 * runtime stops instead of acting from beyond the grave.
 */
export class ScopedClock implements Clock {
  readonly #base: SimClock;
  #cancelled = false;

  constructor(base: SimClock) {
    this.#base = base;
  }

  get cancelled(): boolean {
    return this.#cancelled;
  }

  now(): number {
    return this.#base.now();
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    if (this.#cancelled) return { timer: undefined };
    // Tagged rather than wrapped and tracked: a crash finds its timers by the tag.
    return this.#base.schedule(fn, ms, this);
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    this.#base.clearTimeout(handle);
  }

  cancel(): void {
    this.#cancelled = true;
    this.#base.clearScope(this);
  }
}
