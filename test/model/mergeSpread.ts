// An invariant of observer-based membership (issue 20): when an observer sees
// a peer it had lost reachable again and announces its MERGE, the rest of the
// observer's component follows within a bound — the observer's alert carries
// it, not the next beacon. Checked only when the topology stayed unchanged
// from the MERGE to the bound, since a new cut may rightly stop the alert.
import type { MembershipContext } from "../../machines/membership.js";
import type { EventMessage } from "../../protocol/messages.js";
import { describeEvent, InvariantViolation } from "./invariants.js";

export interface SpreadWorld {
  readonly now: number;
  /** When the topology last changed. */
  readonly lastChange: number;
  /** The running nodes' membership contexts. */
  contexts(): Iterable<MembershipContext>;
  /** Whether two nodes are in one connected component now. */
  together(a: number, b: number): boolean;
}

interface Pending {
  readonly event: EventMessage;
  readonly deadline: number;
}

export class MergeSpread {
  #seen = 0;
  #pending: Pending[] = [];
  checked = 0;

  constructor(readonly boundMs: number) {}

  /** Takes the MERGEs announced since the last call, and checks those whose bound has passed. */
  verify(events: readonly EventMessage[], world: SpreadWorld): void {
    for (; this.#seen < events.length; this.#seen++) {
      const e = events[this.#seen] as EventMessage;
      if (e.event === "MERGE" && e.cause === "reachable again") {
        this.#pending.push({ event: e, deadline: e.at + this.boundMs });
      }
    }
    const due = this.#pending.filter((p) => p.deadline <= world.now);
    this.#pending = this.#pending.filter((p) => p.deadline > world.now);
    for (const p of due) {
      if (world.lastChange >= p.event.at) continue;
      this.checked++;
      this.#check(p.event, world);
    }
  }

  #check(e: EventMessage, world: SpreadWorld): void {
    for (const ctx of world.contexts()) {
      if (ctx.self.node === e.node || ctx.phase !== "member" || !ctx.linkUp) continue;
      if (!world.together(ctx.self.node, e.node)) continue;
      const observer = ctx.peers[e.node];
      if (
        observer?.incarnation !== e.incarnation ||
        observer.state === "down" ||
        observer.state === "unreachable"
      )
        continue;
      for (const m of e.changed) {
        const peer = ctx.peers[m.node];
        if (peer?.incarnation === m.incarnation && peer.state === "unreachable" && peer.since < e.at) {
          throw new InvariantViolation(
            "an observer's MERGE reaches its whole component within the bound",
            `n${ctx.self.node}/${ctx.self.incarnation} still holds ${m.node}/${m.incarnation} unreachable ${world.now - e.at} ms after\n  ${describeEvent(e)}`,
          );
        }
      }
    }
  }
}
