// The process message model in CI: a bounded number of scenarios (link cuts,
// route cuts, crashes, MIGRATE); `npm run model:processes -- --runs 1000` for more.
import { describe, expect, it } from "vitest";
import { checkProcessMessages } from "./processMessages.js";

const RUNS = Number(process.env.PROCESS_MODEL_RUNS ?? 100);

describe("process message model", () => {
  it("loses no SEND answered OK and delivers none twice, across link cuts, crashes and MIGRATE", async () => {
    const details = await checkProcessMessages({ seed: 4_242, numRuns: RUNS, maxCommands: 40 });
    expect(details.failed, String(details.errorInstance ?? "")).toBe(false);
  }, 600_000);
});
