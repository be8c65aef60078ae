// The process message model catches planted bugs: a proxy that never resends
// (SENDs time out under a lossy link) and a receiver that does not drop
// duplicates. A model that passes with them in would be checking nothing.
import { describe, expect, it } from "vitest";
import { checkProcessMessages, ProcessModelViolation } from "./processMessages.js";
import { processMutations } from "./processMutations.js";

describe("process message model, planted bugs", () => {
  for (const [name, mutation] of processMutations) {
    it(`finds the planted bug ${name}`, async () => {
      const details = await checkProcessMessages({ seed: 11, numRuns: 30, maxCommands: 20, mutation });
      expect(details.failed).toBe(true);
      expect(details.errorInstance).toBeInstanceOf(ProcessModelViolation);
    }, 300_000);
  }
});
