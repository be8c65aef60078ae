// The simulated clock's pending timers, in firing order: by due time, then by
// scheduling order. A simulation schedules many timers for few distinct instants
// (integer ms; a fleet's heartbeats and ticks fall on the same ones), so timers
// sit in one bucket per instant, in scheduling order, and only the instants are
// kept in a heap: scheduling is a map look-up and an append, firing a step along
// an array.
import type { TimerHandle } from "../clock.js";

/** A scheduled callback; it is its own TimerHandle, so scheduling one allocates one object. */
export class SimTimer implements TimerHandle {
  /** The bucket holding it, and its place there; no bucket once fired or cleared. */
  bucket: Bucket | undefined = undefined;
  slot = 0;

  constructor(
    readonly due: number,
    readonly fn: () => void,
    /** Who scheduled it (a host's clock), so that all of one owner's timers can be cleared at once. */
    readonly owner: object | undefined,
  ) {}

  get timer(): SimTimer {
    return this;
  }
}

/** The timers due at one instant, in scheduling order; fired and cleared ones leave a hole. */
interface Bucket {
  readonly timers: (SimTimer | undefined)[];
  /** Every slot before this one is a hole. */
  next: number;
  /** Timers still in it; the bucket goes when none is. */
  live: number;
}

export class TimerQueue {
  readonly #buckets = new Map<number, Bucket>();
  /** Due times of the buckets, as a binary min-heap; one whose bucket is gone is skipped when it comes up. */
  readonly #dues: number[] = [];
  #size = 0;

  get size(): number {
    return this.#size;
  }

  /** The next timer to fire. */
  peek(): SimTimer | undefined {
    for (;;) {
      const due = this.#dues[0];
      if (due === undefined) return undefined;
      const bucket = this.#buckets.get(due);
      if (bucket !== undefined) {
        // A bucket still here holds a timer at `next` or after it.
        const timers = bucket.timers;
        while (bucket.next < timers.length) {
          const timer = timers[bucket.next];
          if (timer !== undefined) return timer;
          bucket.next++;
        }
        this.#buckets.delete(due);
      }
      this.#popDue();
    }
  }

  holds(timer: SimTimer): boolean {
    return timer.bucket !== undefined && this.#buckets.get(timer.due) === timer.bucket;
  }

  push(timer: SimTimer): void {
    let bucket = this.#buckets.get(timer.due);
    if (bucket === undefined) {
      bucket = { timers: [], next: 0, live: 0 };
      this.#buckets.set(timer.due, bucket);
      this.#pushDue(timer.due);
    }
    timer.bucket = bucket;
    timer.slot = bucket.timers.length;
    bucket.timers.push(timer);
    bucket.live++;
    this.#size++;
  }

  /** Removes a timer this queue holds. */
  remove(timer: SimTimer): void {
    const bucket = timer.bucket!;
    bucket.timers[timer.slot] = undefined;
    timer.bucket = undefined;
    this.#size--;
    if (--bucket.live === 0) this.#buckets.delete(timer.due);
  }

  /** Timers matching `pick` (a crash clears its host's; rare, so a scan is fine). */
  filter(pick: (timer: SimTimer) => boolean): SimTimer[] {
    const out: SimTimer[] = [];
    for (const bucket of this.#buckets.values()) {
      for (const timer of bucket.timers) if (timer !== undefined && pick(timer)) out.push(timer);
    }
    return out;
  }

  #pushDue(due: number): void {
    const heap = this.#dues;
    let i = heap.length;
    heap.push(due);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const above = heap[parent]!;
      if (above <= due) break;
      heap[i] = above;
      i = parent;
    }
    heap[i] = due;
  }

  #popDue(): void {
    const heap = this.#dues;
    const last = heap.pop()!;
    const n = heap.length;
    if (n === 0) return;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && heap[right]! < heap[left]! ? right : left;
      if (heap[child]! >= last) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = last;
  }
}
