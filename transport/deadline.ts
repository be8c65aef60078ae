// One timer at a deadline that moves, on the injected clock. A runtime that
// ticks its machines only when something is due sets it after every event they
// take, to the earliest instant a tick would change anything.
import type { Clock, TimerHandle } from "./clock.js";

export class DeadlineTimer {
  #handle: TimerHandle | undefined;
  #at: number | undefined;

  constructor(
    readonly clock: Clock,
    readonly fire: () => void,
  ) {}

  /** The instant the timer is armed for; undefined when it is not. */
  get at(): number | undefined {
    return this.#at;
  }

  /**
   * Fires at `at` (undefined disarms it), instead of when it was set for. An
   * instant already passed fires a millisecond from now, never at once: a
   * runtime whose tick did not move its deadline then wakes at 1 kHz instead of
   * spinning (the simulated clock would not advance).
   */
  set(at: number | undefined): void {
    if (at === this.#at) return;
    this.clear();
    if (at === undefined) return;
    this.#at = at;
    const ms = Math.max(1, Math.ceil(at - this.clock.now()));
    this.#handle = this.clock.setTimeout(() => {
      this.#handle = undefined;
      this.#at = undefined;
      this.fire();
    }, ms);
  }

  clear(): void {
    this.clock.clearTimeout(this.#handle);
    this.#handle = undefined;
    this.#at = undefined;
  }
}
