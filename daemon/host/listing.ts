// How host list replies stay bounded. A reply carries at most `limit` items
// (the params say how many, each type has a default and a maximum), and its
// rcode is how many the host had: `rcode > count` means the list was cut.

export interface Listing<T> {
  readonly items: readonly T[];
  /** How many there were before the cut. */
  readonly total: number;
}

/** The first `limit` items of an already ordered list. */
export function cut<T>(all: readonly T[], limit: number): Listing<T> {
  return { items: all.length > limit ? all.slice(0, limit) : all, total: all.length };
}

/** A number rounded to `digits` decimals (percentages travel with two). */
export function round(value: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
