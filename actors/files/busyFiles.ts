// Which files' copies a coordinator must not judge as garbage yet: a commit
// under way, or one started or ended lately (its slowest holder may still be
// pulling). A Map the coordinator keeps beside its machine: it grows with the
// files committed lately, and machine context would be copied on every commit.
import { type TransferSettings, transferTimeoutMs } from "../../machines/filePlacement.js";

export interface BusySettings extends TransferSettings {
  /** The election's STATUS period: how stale a server's list of files may be. */
  readonly statusMs: number;
}

export class BusyFiles {
  /** Per file, until when a commit started or ended here may still leave copies that get recorded. */
  readonly #until = new Map<string, number>();

  constructor(readonly settings: BusySettings) {}

  /** A commit of `name` started or ended at `at`: its copies are not judged until its slowest holder is done. */
  hold(name: string, size: number, at: number): void {
    const until = at + transferTimeoutMs(this.settings, size) + 2 * this.settings.statusMs;
    this.#until.set(name, Math.max(until, this.#until.get(name) ?? 0));
  }

  /** The files not judged at `at`: those with commits queued, and those held lately. */
  at(at: number, queued: Iterable<string>): Set<string> {
    const busy = new Set(queued);
    for (const [name, until] of this.#until) if (at < until) busy.add(name);
    return busy;
  }

  /** Forgets the files whose busy time is over at `at`: they are judged like any other from then on. */
  forgetQuiet(at: number): void {
    for (const [name, until] of this.#until) if (at >= until) this.#until.delete(name);
  }

  /** The files still held, for tests and logs. */
  get size(): number {
    return this.#until.size;
  }
}
