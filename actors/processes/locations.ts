// Where every process runs, as this node knows it: `(dcid, endpoint) → {node,
// epoch}`, learned from the announcements on `dvs.<c>._loc`. A higher epoch
// wins (each migration bumps it); an ended process stays as a tombstone so a
// late announcement cannot bring it back; two spawns of one endpoint at the
// same epoch resolve to the lower node id, the same on every node.
import type { Location } from "../../protocol/processes.js";

export const procKey = (dcid: number, endpoint: number): string => `${dcid}:${endpoint}`;

export class LocationTable {
  readonly #entries = new Map<string, Location>();

  get(dcid: number, endpoint: number): Location | undefined {
    return this.#entries.get(procKey(dcid, endpoint));
  }

  /** Keeps `entry` if it is newer than what is known; returns whether it did. */
  apply(entry: Location): boolean {
    const key = procKey(entry.dcid, entry.endpoint);
    const known = this.#entries.get(key);
    if (known !== undefined && !supersedes(entry, known)) return false;
    this.#entries.set(key, entry);
    return true;
  }

  /** Sets what this node itself decided (it hosts, moved or ended the process). */
  set(entry: Location): void {
    this.#entries.set(procKey(entry.dcid, entry.endpoint), entry);
  }

  /** Whether a live process holds the endpoint. */
  taken(dcid: number, endpoint: number): boolean {
    const entry = this.get(dcid, endpoint);
    return entry !== undefined && !entry.ended;
  }

  /** Live entries of DC `dcid`, by ascending endpoint. */
  liveIn(dcid: number): Location[] {
    return [...this.#entries.values()]
      .filter((e) => e.dcid === dcid && !e.ended)
      .sort((a, b) => a.endpoint - b.endpoint);
  }

  /** Entries whose last known node is `node` (what `node` re-announces). */
  of(node: number): Location[] {
    return [...this.#entries.values()].filter((e) => e.node === node);
  }

  get size(): number {
    return this.#entries.size;
  }
}

/** Whether announced entry `a` replaces known entry `b`. */
export function supersedes(a: Location, b: Location): boolean {
  if (a.epoch !== b.epoch) return a.epoch > b.epoch;
  if (a.ended !== b.ended) return a.ended;
  return !a.ended && a.node < b.node;
}
