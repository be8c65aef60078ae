// Deadlines instead of a fixed-rate tick: each machine that acts on
// `clock.tick` says when its next tick would change anything (undefined:
// nothing is due, as membership's `nextDeadline`), and its runtime arms one
// timer at the earliest of them. These are the small pieces they share.

/** Whether something due at `due` (undefined: nothing is) is due at `at`. */
export const isDue = (due: number | undefined, at: number): boolean => due !== undefined && at >= due;

/** The earliest of some instants, or undefined when none is given. */
export function earliest(...instants: readonly (number | undefined)[]): number | undefined {
  let first: number | undefined;
  for (const at of instants) if (at !== undefined && (first === undefined || at < first)) first = at;
  return first;
}
