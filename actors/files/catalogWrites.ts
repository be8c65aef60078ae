// One catalog write per file at a time on this coordinator. nats-server before
// 2.9.21 checks a compare-and-set's expected revision before the write goes
// through Raft, not as part of it (nats-io/nats-server#4320): two writes of one
// key that expect the same revision and arrive within a few milliseconds of
// each other can both succeed, the later one silently undoing the earlier. A
// commit and a repair of the same file did exactly that under the chaos run
// (an acknowledged version replaced by the repaired record of the version
// before it). So every read-then-write of a file's record runs here, after the
// ones begun before it, and the compare-and-set never has a rival from this node.

export class CatalogWrites {
  /** Per file, the end of the last read-then-write queued here. */
  readonly #tails = new Map<string, Promise<void>>();

  /** Runs `work` (which reads the record of `name` and writes it) after every earlier one of `name`. */
  run<T>(name: string, work: () => Promise<T>): Promise<T> {
    const before = this.#tails.get(name) ?? Promise.resolve();
    const result = before.then(work);
    const tail = result.then(
      () => {},
      () => {},
    );
    this.#tails.set(name, tail);
    void tail.then(() => {
      if (this.#tails.get(name) === tail) this.#tails.delete(name);
    });
    return result;
  }
}
