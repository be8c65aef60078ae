// A requester's cost is bounded: rate and ALL gathers in flight, per role.
import { describe, expect, it } from "vitest";
import { RequestBudget } from "../../actors/requestBudget.js";

const budgets = {
  viewer: { ratePerSecond: 10, burst: 5, concurrentAll: 2 },
  admin: { ratePerSecond: 100, burst: 100, concurrentAll: 10 },
};

describe("request budget", () => {
  it("a viewer past its burst is refused with EAGAIN until tokens come back", () => {
    let now = 0;
    const budget = new RequestBudget({ now: () => now }, budgets);
    for (let i = 0; i < 5; i++) expect(budget.admit("viewer", false).ok).toBe(true);
    const refused = budget.admit("viewer", false);
    expect(refused).toMatchObject({ ok: false, error: "EAGAIN" });
    // The admin's budget is its own.
    expect(budget.admit("admin", false).ok).toBe(true);
    now += 100; // one token at 10/s
    expect(budget.admit("viewer", false).ok).toBe(true);
    expect(budget.admit("viewer", false).ok).toBe(false);
  });

  it("ALL gathers of a role past its limit are EBUSY until one is released", () => {
    const budget = new RequestBudget({ now: () => 0 }, budgets);
    const a = budget.admit("viewer", true);
    const b = budget.admit("viewer", true);
    expect(a.ok && b.ok).toBe(true);
    expect(budget.admit("viewer", true)).toMatchObject({ ok: false, error: "EBUSY" });
    if (a.ok) {
      a.release();
      a.release(); // twice is once
    }
    expect(budget.gathers("viewer")).toBe(1);
    expect(budget.admit("viewer", true).ok).toBe(true);
  });
});
