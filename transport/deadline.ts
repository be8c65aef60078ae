// One timer at a deadline that moves, on the injected clock. A runtime that
// ticks its machines only when something is due sets it after every event they
// take, to the earliest instant a tick would change anything.
import type { Clock, TimerHandle } from "./clock.js";

export class DeadlineTimer {
  #handle: TimerHandle | undefined;
  #at: number | null = null;

  constructor(
    readonly clock: Clock,
    readonly fire: () => void,
  ) {}

  /** The instant the timer is armed for; null when it is not. */
  get at(): number | null {
    return this.#at;
  }

  /** Fires at `at` (at once if it has passed), instead of when it was set for; null disarms it. */
  set(at: number | null): void {
    if (at === this.#at) return;
    this.clear();
    if (at === null) return;
    this.#at = at;
    const ms = Math.max(0, Math.ceil(at - this.clock.now()));
    this.#handle = this.clock.setTimeout(() => {
      this.#handle = undefined;
      this.#at = null;
      this.fire();
    }, ms);
  }

  clear(): void {
    this.clock.clearTimeout(this.#handle);
    this.#handle = undefined;
    this.#at = null;
  }
}
