// Who watches whom (SPEC 4, issue 20): each node is watched by K observers,
// chosen from the view so that every node with the same peer table agrees.
// The ring is every node known and not declared down, sorted by id; the
// observers of a node are the K reachable nodes that follow it on the ring
// (Akka's "each node is watched by the next N"). Unreachable nodes stay on the
// ring — their observers keep listening for them, so a heal is a MERGE — but
// never observe: a node whose observers are cut off gets the next reachable
// ones, so a partition is found however the ring is split. Pure functions.

/** The sorted ring: `self` and `nodes`. */
export function buildRing(self: number, nodes: Iterable<number>): number[] {
  const ring = [self];
  for (const n of nodes) if (n !== self) ring.push(n);
  return ring.sort((a, b) => a - b);
}

/** The index of `node` in the sorted `ring`, or -1. */
function indexOf(ring: readonly number[], node: number): number {
  let lo = 0;
  let hi = ring.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const v = ring[mid] as number;
    if (v === node) return mid;
    if (v < node) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

/** The other nodes of the ring, walking from `node` forwards (+1) or backwards (-1); none when `node` is not on it. */
function* walk(ring: readonly number[], node: number, direction: 1 | -1): Generator<number> {
  const at = indexOf(ring, node);
  if (at < 0) return;
  for (let step = 1; step < ring.length; step++) {
    yield ring[(at + direction * step + ring.length * step) % ring.length] as number;
  }
}

/**
 * The nodes `node` observes: walking the ring backwards from it, every node
 * passed while fewer than `k` reachable nodes lie strictly between that node
 * and `node`. Equivalently: X is watched by `node` when `node` is among the
 * first `k` reachable nodes after X. O(k + the unreachable nodes passed).
 */
export function watchedBy(
  ring: readonly number[],
  node: number,
  reachable: (n: number) => boolean,
  k: number,
): number[] {
  const watched: number[] = [];
  let between = 0;
  for (const other of walk(ring, node, -1)) {
    if (between >= k) break;
    watched.push(other);
    if (reachable(other)) between++;
  }
  return watched.sort((a, b) => a - b);
}

/** The observers of `node`: the first `k` reachable nodes after it on the ring. */
export function observersOf(
  ring: readonly number[],
  node: number,
  reachable: (n: number) => boolean,
  k: number,
): number[] {
  const observers: number[] = [];
  for (const other of walk(ring, node, 1)) {
    if (observers.length >= k) break;
    if (reachable(other)) observers.push(other);
  }
  return observers.sort((a, b) => a - b);
}
