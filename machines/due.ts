// Deadlines instead of a fixed-rate tick: each machine that acts on
// `clock.tick` says when its next tick would change anything, and its runtime
// arms one timer at the earliest of them. These are the small pieces they share.

/** An instant in ms on the injected clock, or null when nothing is due. */
export type Due = number | null;

/** Whether something due at `due` is due at `at`. */
export const isDue = (due: Due, at: number): boolean => due !== null && at >= due;

/** The earliest of some instants, or null when none is given. */
export function earliest(...instants: readonly Due[]): Due {
  let first: Due = null;
  for (const at of instants) if (at !== null && (first === null || at < first)) first = at;
  return first;
}
