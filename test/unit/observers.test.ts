// Who watches whom (machines/observers.ts): the two directions agree, every
// node gets K observers when there are K reachable others, and unreachable
// nodes stay watched but never watch.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { buildRing, observersOf, watchedBy } from "../../machines/observers.js";

const ringArb = fc
  .uniqueArray(fc.integer({ min: 0, max: 200 }), { minLength: 1, maxLength: 40 })
  .chain((nodes) =>
    fc.record({
      nodes: fc.constant(nodes),
      unreachable: fc.subarray(nodes),
      k: fc.integer({ min: 1, max: 8 }),
    }),
  );

describe("observers on the ring", () => {
  it("X is watched by Y exactly when Y is one of X's observers, for every reachable Y", () => {
    fc.assert(
      fc.property(ringArb, ({ nodes, unreachable, k }) => {
        const ring = buildRing(nodes[0] as number, nodes);
        const out = new Set(unreachable);
        const reachable = (n: number) => !out.has(n);
        for (const y of ring) {
          if (!reachable(y)) continue;
          const watched = new Set(watchedBy(ring, y, reachable, k));
          for (const x of ring) {
            if (x === y) continue;
            expect(watched.has(x)).toBe(observersOf(ring, x, reachable, k).includes(y));
          }
        }
      }),
    );
  });

  it("every node, reachable or not, has min(K, reachable others) observers, all reachable", () => {
    fc.assert(
      fc.property(ringArb, ({ nodes, unreachable, k }) => {
        const ring = buildRing(nodes[0] as number, nodes);
        const out = new Set(unreachable);
        const reachable = (n: number) => !out.has(n);
        for (const x of ring) {
          const others = ring.filter((n) => n !== x && reachable(n)).length;
          const observers = observersOf(ring, x, reachable, k);
          expect(observers).toHaveLength(Math.min(k, others));
          expect(observers.every(reachable)).toBe(true);
        }
      }),
    );
  });

  it("on a ring of 1..6 with K = 2 each node watches the two before it", () => {
    const ring = buildRing(1, [2, 3, 4, 5, 6]);
    expect(watchedBy(ring, 3, () => true, 2)).toEqual([1, 2]);
    expect(watchedBy(ring, 1, () => true, 2)).toEqual([5, 6]);
    // With 2 unreachable, node 3's duty reaches past it to node 6.
    expect(watchedBy(ring, 3, (n) => n !== 2, 2)).toEqual([1, 2, 6]);
  });
});
