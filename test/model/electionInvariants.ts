// The invariants of the election model (SPEC 7, 9), as checks over what the
// harness observes: each running node's election state, the store's history of
// writes, and the topology the commands set. Each failure is an
// InvariantViolation naming the invariant, the harness adds the trace.
import type { ElectionState } from "../../actors/election.js";
import { decode } from "../../protocol/codec.js";
import { coordinatorRecordSchema, type NodeId } from "../../protocol/messages.js";
import type { KvEntry } from "../../transport/kv.js";
import { InvariantViolation } from "./invariants.js";

export { InvariantViolation };

/** The invariants by the names their violations carry (tests match on these). */
export const ELECTION_INVARIANTS = {
  oneTerm: "at most one node holds a valid term",
  holderNamed: "the holder of a term is the coordinator the store's record names",
  granted: "every term a node holds or names was granted to that coordinator by the store",
  epochsGrow: "epochs only grow",
  renewals: "only the holder of a term renews it",
  minority: "a minority never elects",
  agreement: "after stabilisation every node names one coordinator, which alone holds a term",
} as const;

/** One revision of the coordinator record, as the store holds it, with its epoch resolved. */
export interface StoredRecord {
  readonly revision: number;
  readonly coordinator: NodeId | null;
  /** The term: the revision of its opening write. */
  readonly epoch: number;
  /** The write opened this term (its `epoch` field was null). */
  readonly opens: boolean;
}

/** One write of the store's history, as the model reads `SimKv.writes`. */
export interface ObservedWrite extends StoredRecord {
  readonly at: number;
  readonly host: string;
}

/** What the harness reads of one running node at one instant. */
export interface NodeObservation {
  readonly node: NodeId;
  readonly incarnation: number;
  readonly state: ElectionState;
}

export const hostOf = (node: NodeId): string => `node-${node}`;

export function decodeRecord(entry: KvEntry): StoredRecord {
  const decoded = decode(entry.value, "json");
  const parsed = decoded.ok ? coordinatorRecordSchema.safeParse(decoded.value) : undefined;
  if (!parsed?.success) {
    throw new InvariantViolation(
      "the store holds well-formed coordinator records",
      `revision ${entry.revision} does not parse`,
    );
  }
  const { coordinator, epoch } = parsed.data;
  return { revision: entry.revision, coordinator, epoch: epoch ?? entry.revision, opens: epoch === null };
}

export const describeRecord = (r: StoredRecord | undefined): string =>
  r === undefined
    ? "no record"
    : `rev ${r.revision}: ${r.coordinator === null ? "no coordinator" : `n${r.coordinator}`} epoch ${r.epoch}${
        r.opens ? " (opens the term)" : ""
      }`;

export const describeWho = (who: ElectionState["who"]): string =>
  who.type === "OK" ? `OK n${who.coordinator}@${who.epoch}` : who.type;

/**
 * The store's history as the model has read it so far: which node each term
 * was granted to, and the epoch of the last write. `absorb` checks each new
 * write as it is read (the harness reads after every simulated event, so the
 * topology is the one the write took effect in).
 */
export class StoreHistory {
  /** Term epoch → the node its opening write named. */
  readonly grants = new Map<number, NodeId>();
  readonly writes: ObservedWrite[] = [];
  #lastOpened = 0;
  #lastEpoch = 0;

  /**
   * - an opening write names the node whose host wrote it, and its epoch is
   *   higher than every term opened before; no later write carries a lower epoch;
   * - a write that keeps a term (a renewal naming a coordinator, or a graceful
   *   stop giving it back, naming none) keeps one the store granted, and a
   *   renewal comes from the host of the node the term was granted to;
   * - the writer was on the side that holds the store's quorum: its link not
   *   cut and its server in a majority of servers.
   */
  absorb(write: ObservedWrite, side: (host: string) => string | null): void {
    this.writes.push(write);
    const what = `${describeRecord(write)} written by ${write.host} at t=${write.at}`;
    const away = side(write.host);
    if (away !== null) {
      throw new InvariantViolation(ELECTION_INVARIANTS.minority, `${what}, while ${away}`);
    }
    if (write.epoch < this.#lastEpoch) {
      throw new InvariantViolation(
        ELECTION_INVARIANTS.epochsGrow,
        `${what} after a write of epoch ${this.#lastEpoch}`,
      );
    }
    this.#lastEpoch = write.epoch;
    if (write.opens) {
      if (write.coordinator === null || write.host !== hostOf(write.coordinator)) {
        throw new InvariantViolation(ELECTION_INVARIANTS.granted, `${what}: a term opened for another node`);
      }
      if (write.epoch <= this.#lastOpened) {
        throw new InvariantViolation(
          ELECTION_INVARIANTS.epochsGrow,
          `${what} after term ${this.#lastOpened} was opened`,
        );
      }
      this.#lastOpened = write.epoch;
      this.grants.set(write.epoch, write.coordinator);
      return;
    }
    const holder = this.grants.get(write.epoch);
    if (holder === undefined) {
      throw new InvariantViolation(ELECTION_INVARIANTS.granted, `${what}: the store never opened that term`);
    }
    if (write.coordinator !== null && (write.coordinator !== holder || write.host !== hostOf(holder))) {
      throw new InvariantViolation(
        ELECTION_INVARIANTS.renewals,
        `${what}: term ${write.epoch} was granted to n${holder}`,
      );
    }
  }
}

/**
 * At one instant: at most one running node holds a valid term; the holder is
 * the one the store's current record names, with that epoch; every term held
 * and every coordinator a registry answers with was granted to that node.
 */
export function checkTerms(
  nodes: readonly NodeObservation[],
  current: StoredRecord | undefined,
  grants: ReadonlyMap<number, NodeId>,
): void {
  const holders = nodes.filter((n) => n.state.term !== null);
  if (holders.length > 1) {
    throw new InvariantViolation(
      ELECTION_INVARIANTS.oneTerm,
      holders
        .map((n) => `n${n.node} holds epoch ${n.state.term?.epoch} until t=${n.state.term?.validUntil}`)
        .join("; "),
    );
  }
  for (const n of nodes) {
    const term = n.state.term;
    if (term !== null && grants.get(term.epoch) !== n.node) {
      throw new InvariantViolation(
        ELECTION_INVARIANTS.granted,
        `n${n.node} holds epoch ${term.epoch}, which the store granted to ${
          grants.has(term.epoch) ? `n${grants.get(term.epoch)}` : "nobody"
        }`,
      );
    }
    const who = n.state.who;
    if (who.type === "OK" && grants.get(who.epoch) !== who.coordinator) {
      throw new InvariantViolation(
        ELECTION_INVARIANTS.granted,
        `n${n.node} answers WHO with ${describeWho(who)}, a term the store granted to ${
          grants.has(who.epoch) ? `n${grants.get(who.epoch)}` : "nobody"
        }`,
      );
    }
  }
  const holder = holders[0];
  if (
    holder?.state.term != null &&
    (current?.coordinator !== holder.node || current.epoch !== holder.state.term.epoch)
  ) {
    throw new InvariantViolation(
      ELECTION_INVARIANTS.holderNamed,
      `n${holder.node} holds epoch ${holder.state.term.epoch} until t=${holder.state.term.validUntil}; the store has ${describeRecord(current)}`,
    );
  }
}

/** A running incarnation's highest epoch never goes down. */
export function checkHighestEpoch(node: NodeId, before: number, now: number): void {
  if (now < before) {
    throw new InvariantViolation(
      ELECTION_INVARIANTS.epochsGrow,
      `n${node}'s highest epoch went from ${before} down to ${now}`,
    );
  }
}

/** A node cut from the store's quorum does not become coordinator. */
export function checkBecameCoordinator(node: NodeId, epoch: number | undefined, away: string | null): void {
  if (away !== null) {
    throw new InvariantViolation(
      ELECTION_INVARIANTS.minority,
      `n${node} became coordinator (epoch ${epoch ?? "?"}) while ${away}`,
    );
  }
}

/** Why the running nodes do not (yet) agree on one coordinator that alone holds a term, or null when they do. */
export function disagreement(nodes: readonly NodeObservation[]): string | null {
  if (nodes.length === 0) return null;
  const first = nodes[0]?.state.who;
  if (first?.type !== "OK") return "no coordinator named";
  const differ = nodes.some(
    (n) =>
      n.state.who.type !== "OK" ||
      n.state.who.coordinator !== first.coordinator ||
      n.state.who.epoch !== first.epoch,
  );
  if (differ) return "WHO answers differ";
  const holders = nodes.filter((n) => n.state.term !== null);
  const holder = holders[0];
  if (
    holders.length !== 1 ||
    holder === undefined ||
    holder.node !== first.coordinator ||
    holder.state.term?.epoch !== first.epoch
  ) {
    return `everyone names ${describeWho(first)}, but the terms held are [${holders
      .map((n) => `n${n.node}@${n.state.term?.epoch}`)
      .join(", ")}]`;
  }
  return null;
}

/** After the stabilisation bound: every running node names the same coordinator, which alone holds a term. */
export function checkAgreement(nodes: readonly NodeObservation[]): void {
  const why = disagreement(nodes);
  if (why !== null) {
    const answers = nodes.map((n) => `n${n.node}: ${describeWho(n.state.who)}`).join(", ");
    throw new InvariantViolation(ELECTION_INVARIANTS.agreement, `${why} (${answers})`);
  }
}
