// Planted bugs: the election property must find a counterexample against a
// store or timings that are wrong in one known way, within a bounded number of
// runs, and blame an invariant that the bug breaks. Each check stops at the
// first counterexample and shrinks it.
import { describe, expect, it } from "vitest";
import { checkElection, describeElectionFailure, type ElectionRunDetails, plantedBugs } from "./election.js";
import { ELECTION_INVARIANTS, InvariantViolation } from "./electionInvariants.js";

const seed = 20_250_702;
const numRuns = 50;
const maxCommands = 20;

async function hunt(name: string): Promise<{ details: ElectionRunDetails; found: InvariantViolation }> {
  const bug = plantedBugs.get(name);
  if (bug === undefined) throw new Error(`no planted bug ${name}`);
  const details = await checkElection({
    seed,
    numRuns,
    maxCommands,
    mutation: bug.mutation,
    ...(bug.config ? { config: bug.config } : {}),
  });
  expect(details.failed, "the planted bug went unnoticed").toBe(true);
  const error = details.errorInstance;
  expect(error, describeElectionFailure(details, { maxCommands, mutation: name })).toBeInstanceOf(
    InvariantViolation,
  );
  return { details, found: error as InvariantViolation };
}

/** The first bullet of the model: one valid term at a time, and the store names its holder. */
const oneCoordinator: string[] = [ELECTION_INVARIANTS.oneTerm, ELECTION_INVARIANTS.holderNamed];

describe("the election property against planted bugs", () => {
  it("finds a store that overwrites instead of comparing and setting", async () => {
    const { details, found } = await hunt("no-cas");
    // Without compare-and-set a term's confirming write can land over a rival's newer term: its epoch goes back.
    expect([...oneCoordinator, ELECTION_INVARIANTS.epochsGrow]).toContain(found.invariant);
    // The counterexample comes with a replay line and the trace of the failing run.
    expect(describeElectionFailure(details, { maxCommands, mutation: "no-cas" })).toMatch(
      /replay: .*--seed \d+ --steps 20 --path "[\d:]+".* --mutation no-cas/,
    );
    expect(found.detail).toContain("last 12 writes");
  }, 120_000);

  it("finds a coordinator whose lease outlives the observers' (a negative margin)", async () => {
    const { found } = await hunt("negative-margin");
    expect(oneCoordinator).toContain(found.invariant);
  }, 120_000);
});
