// The quorum checks of the file store model (docs/protocol.md 9.5): each
// node's minority mark as the harness saw it after every simulated event; a
// node marked minority records no COMMIT sent while it was marked, and never
// refuses a read as read-only.
import type { NodeRuntime } from "../../actors/node.js";
import type { NodeId } from "../../protocol/messages.js";
import { type CatalogWrite, FILES_INVARIANTS, InvariantViolation, short } from "./filesInvariants.js";

/** Where each node's minority mark stood, and what the quorum checks found. */
export class MinorityWatch {
  /** Per running node: since when it has been marked minority without a break (absent: not marked now). */
  readonly #since = new Map<NodeId, number>();
  /** Versions whose first catalog write was checked (later writes of one version are repairs). */
  readonly #recorded = new Set<string>();

  /** After a simulated event: who is marked now. Returns the changes, for the trace. */
  observe(now: number, nodes: ReadonlyMap<number, NodeRuntime>): string[] {
    const changes: string[] = [];
    for (const id of [...this.#since.keys()]) {
      if (nodes.get(id)?.membership?.context.minority !== true) {
        this.#since.delete(id);
        changes.push(`n${id} is no longer a minority`);
      }
    }
    for (const [id, node] of nodes) {
      if (node.membership?.context.minority === true && !this.#since.has(id)) {
        this.#since.set(id, now);
        changes.push(
          `n${id} marks itself minority (view [${node.membership.context.view.members.join(",")}])`,
        );
      }
    }
    return changes;
  }

  /** Nodes marked minority now. */
  marked(): NodeId[] {
    return [...this.#since.keys()].sort();
  }

  /**
   * A new version's catalog write: its coordinator must not have been marked
   * minority since before its COMMIT was sent (every attempt of that commit
   * then reached it while it was marked, and was to be refused).
   */
  checkRecorded(write: CatalogWrite, sentAt: number | undefined): void {
    const key = `${write.name}@${write.version}:${write.sha256}`;
    if (this.#recorded.has(key)) return;
    this.#recorded.add(key);
    const id = Number(/^node-(\d+)$/.exec(write.host)?.[1]);
    const since = this.#since.get(id);
    if (since === undefined || sentAt === undefined || since > sentAt) return;
    throw new InvariantViolation(
      FILES_INVARIANTS.minorityCommit,
      `n${id} recorded ${write.name} v${write.version} (${short(write.sha256)}, commit ${write.commit}) at t=${write.at}, a COMMIT sent at t=${sentAt}, while marked minority since t=${since}`,
    );
  }

  /** An UPDATE's failure: never the minority's refusal. */
  checkRead(seq: number, name: string, error: unknown): void {
    if ((error as { code?: unknown }).code !== "EROFS") return;
    throw new InvariantViolation(
      FILES_INVARIANTS.minorityReads,
      `update #${seq} of ${name} was refused as read-only (marked minority: [${this.marked().join(",")}])`,
    );
  }
}
