// The one timer a runtime moves to its machines' next deadline
// (transport/deadline.ts), on the simulated clock.
import { describe, expect, it } from "vitest";
import { DeadlineTimer } from "../../transport/deadline.js";
import { SimClock } from "../../transport/sim/clock.js";

function timer() {
  const clock = new SimClock();
  const fired: number[] = [];
  return { clock, fired, timer: new DeadlineTimer(clock, () => fired.push(clock.now())) };
}

describe("deadline timer", () => {
  it("fires once, at the instant it was last set for", async () => {
    const { clock, fired, timer: t } = timer();
    t.set(300);
    t.set(120);
    expect(t.at).toBe(120);
    await clock.advance(1_000);
    expect(fired).toEqual([120]);
    expect(t.at).toBeUndefined();
  });

  it("disarmed or cleared, it does not fire", async () => {
    const { clock, fired, timer: t } = timer();
    t.set(50);
    t.set(undefined);
    t.set(80);
    t.clear();
    await clock.advance(1_000);
    expect(fired).toEqual([]);
  });

  it("set to an instant already passed, it fires a millisecond later, never at once; a fractional one, at the next whole ms", async () => {
    const { clock, fired, timer: t } = timer();
    await clock.advance(100);
    t.set(40);
    await clock.advance(0);
    expect(fired).toEqual([]);
    await clock.advance(1);
    t.set(130.2);
    await clock.advance(100);
    expect(fired).toEqual([101, 131]);
  });

  it("set again to the instant it is armed for, it keeps its timer", async () => {
    const { clock, fired, timer: t } = timer();
    t.set(60);
    await clock.advance(30);
    t.set(60);
    await clock.advance(100);
    expect(fired).toEqual([60]);
  });
});
