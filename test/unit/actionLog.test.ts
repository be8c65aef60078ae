// The in-memory action log runs the contract; the id maker's ordering and uniqueness.
import { describe, expect, it } from "vitest";
import { recordable } from "../../actors/actionRecorder.js";
import { actionIds, MemoryActionLog, summarize } from "../../transport/actionLog.js";
import type { Clock } from "../../transport/clock.js";
import { seededRandom } from "../../transport/clock.js";
import { actionLogContract } from "../contracts/actionLog/contract.js";

actionLogContract("memory", async () => {
  const log = new MemoryActionLog();
  return { log, id: (n) => `A${String(n).padStart(4, "0")}` };
});

describe("action ids", () => {
  it("are unique and sort in the order they were made, within one millisecond and across", () => {
    let now = 1_700_000_000_000;
    const clock = { now: () => now } as Clock;
    const next = actionIds(clock, seededRandom(3));
    const ids: string[] = [];
    for (let i = 0; i < 500; i++) {
      ids.push(next());
      if (i % 100 === 99) now += 1;
    }
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
    expect(ids[0]).toMatch(/^[0-9A-HJKMNP-TV-Z]{26}$/);
  });
});

describe("reply summaries", () => {
  it("keep short data whole and cut long data", () => {
    expect(summarize({ a: 1 })).toBe('{"a":1}');
    const long = summarize("x".repeat(1_000));
    expect(long.length).toBe(257);
    expect(long.endsWith("…")).toBe(true);
  });
});

describe("recorded params", () => {
  it("are kept as JSON, and what JSON cannot hold becomes a note instead of a refusal", () => {
    expect(recordable({ dcid: 1, nodes: [1, 2] })).toEqual({ dcid: 1, nodes: [1, 2] });
    expect(recordable(undefined)).toBeNull();
    expect(recordable({ n: 10n })).toMatchObject({ unrecordable: expect.stringContaining("BigInt") });
    let deep: unknown = 0;
    for (let i = 0; i < 200_000; i++) deep = [deep];
    expect(recordable(deep)).toHaveProperty("unrecordable");
  });
});
