// Time and randomness, injected. Everything that also runs in the simulation
// (machines, transport, node runtime) receives a Clock and a Random from here,
// so a simulated run with the same seed is the same run. Only process-level
// tooling (the launcher, the nats-server starter, signal handling) uses the
// wall clock directly.
import { randomBytes } from "node:crypto";

export type TimerHandle = { readonly timer: unknown };

/** The clock every actor and transport is given. XState's `clock` option accepts it as is. */
export interface Clock {
  /** Milliseconds; wall time for the system clock, simulated time in the sim. */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
}

/** A source of uniform numbers in [0, 1); the system one, or a seeded one in the sim. */
export interface Random {
  next(): number;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    return { timer: setTimeout(fn, ms) };
  },
  clearTimeout(handle) {
    if (handle !== undefined) clearTimeout(handle.timer as NodeJS.Timeout);
  },
};

/** Read once: `performance.timeOrigin` is a getter that costs more than `performance.now()` itself. */
const TIME_ORIGIN = performance.timeOrigin;

/**
 * The system clock read monotonically: wall time at process start plus the
 * time elapsed since, so a step of the system clock (a manual `date -s`, an
 * NTP step) can neither stretch nor cut short a coordinator's lease.
 */
export const monotonicClock: Clock = {
  now: () => TIME_ORIGIN + performance.now(),
  setTimeout: (fn, ms) => systemClock.setTimeout(fn, ms),
  clearTimeout: (handle) => systemClock.clearTimeout(handle),
};

export const systemRandom: Random = {
  next: () => randomBytes(4).readUInt32BE(0) / 0x1_0000_0000,
};

/**
 * A small, fast, seeded generator (mulberry32). The same seed gives the same
 * sequence on every platform, which is what the simulated network relies on.
 */
export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  return {
    next() {
      state = (state + 0x6d2b79f5) >>> 0;
      let t = state;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 0x1_0000_0000;
    },
  };
}

/** An integer in [0, n). */
export function randomInt(random: Random, n: number): number {
  return Math.floor(random.next() * n);
}

/** A random token of `length` base-36 characters, for inbox and client ids. */
export function randomToken(random: Random, length = 12): string {
  let out = "";
  for (let i = 0; i < length; i++) out += randomInt(random, 36).toString(36);
  return out;
}

/** A promise that resolves after `ms` on the given clock. */
export function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimeout(resolve, ms));
}
