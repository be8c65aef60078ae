// How dvsctl prints a time a thing took: whole units, never a long float.
import { describe, expect, it } from "vitest";
import { elapsed } from "../../bin/dvsctl/durations.js";

describe("elapsed", () => {
  it("shows whole milliseconds under a second", () => {
    expect(elapsed(0)).toBe("0 ms");
    expect(elapsed(12.345678)).toBe("12 ms");
    expect(elapsed(999.4)).toBe("999 ms");
  });

  it("shows tenths of a second under a minute, a rounded-up 999.6 ms included", () => {
    expect(elapsed(999.6)).toBe("1.0 s");
    expect(elapsed(1_234.5678)).toBe("1.2 s");
    expect(elapsed(59_949)).toBe("59.9 s");
  });

  it("shows minutes and seconds under an hour, then hours and minutes", () => {
    expect(elapsed(59_960)).toBe("1 min 0 s");
    expect(elapsed(245_400)).toBe("4 min 5 s");
    expect(elapsed(3_599_600)).toBe("1 h 0 min");
    expect(elapsed(7_380_000)).toBe("2 h 3 min");
  });

  it("gives nothing for a value that is not a duration", () => {
    for (const v of [undefined, null, "12", -1, Number.NaN, Number.POSITIVE_INFINITY])
      expect(elapsed(v)).toBeUndefined();
  });
});
