// Planted bugs: the election property must find a counterexample against a
// store or timings that are wrong in one known way, within a bounded number of
// runs, and blame an invariant that the bug breaks. Each check stops at the
// first counterexample and shrinks it.
import { describe, expect, it } from "vitest";
import {
  checkElection,
  describeElectionFailure,
  type ElectionRunDetails,
  leaseOutlivingObservers,
  storeWithoutCompareAndSet,
} from "./election.js";
import { ELECTION_INVARIANTS, InvariantViolation } from "./electionInvariants.js";

const seed = 20_250_702;
const numRuns = 50;
const maxCommands = 20;

function violation(details: ElectionRunDetails, mutation: string): InvariantViolation {
  expect(details.failed, "the planted bug went unnoticed").toBe(true);
  const error = details.errorInstance;
  expect(error, describeElectionFailure(details, { maxCommands, mutation })).toBeInstanceOf(
    InvariantViolation,
  );
  return error as InvariantViolation;
}

/** The first bullet of the model: one valid term at a time, and the store names its holder. */
const oneCoordinator: string[] = [ELECTION_INVARIANTS.oneTerm, ELECTION_INVARIANTS.holderNamed];

describe("the election property against planted bugs", () => {
  it("finds a store that overwrites instead of comparing and setting", async () => {
    const details = await checkElection({
      seed,
      numRuns,
      maxCommands,
      mutation: { store: storeWithoutCompareAndSet },
    });
    const found = violation(details, "no-cas");
    expect(oneCoordinator).toContain(found.invariant);
    // The counterexample comes with a replay line and the trace of the failing run.
    expect(describeElectionFailure(details, { maxCommands, mutation: "no-cas" })).toMatch(
      /replay: .*--seed \d+ --steps 20 --path "[\d:]+".* --mutation no-cas/,
    );
    expect(found.detail).toContain("last 12 writes");
  }, 120_000);

  it("finds a coordinator whose lease outlives the observers' (a negative margin)", async () => {
    const details = await checkElection({
      seed,
      numRuns,
      maxCommands,
      mutation: leaseOutlivingObservers,
    });
    expect(oneCoordinator).toContain(violation(details, "negative-margin").invariant);
  }, 120_000);
});
