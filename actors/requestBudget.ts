// What one class of requester may cost a node (SPEC 6.5, "a requester's cost
// is bounded"): a request rate (token bucket) and a number of `dst: ALL`
// gathers in flight, per role. The role is what the server-checked subject a
// request arrived on says (viewer or admin), so a viewer cannot buy more by
// naming another `src`. Refusals are EAGAIN (rate) and EBUSY (fan-out).

import type { ErrorName, Role } from "../protocol/messages.js";
import type { Clock } from "../transport/clock.js";

export interface RoleBudget {
  /** Requests per second a node takes from this role, on average. */
  readonly ratePerSecond: number;
  /** Requests the role may send at once above the average. */
  readonly burst: number;
  /** `dst: ALL` requests of this role a node gathers at once. */
  readonly concurrentAll: number;
}

export type RequestBudgets = Readonly<Record<Role, RoleBudget>>;

/**
 * Defaults: a viewer (dashboards, read-only tools) gets a few hundred requests
 * a second and 8 ALL gathers in flight per node; an admin ten times that.
 */
export const DEFAULT_BUDGETS: RequestBudgets = {
  viewer: { ratePerSecond: 200, burst: 400, concurrentAll: 8 },
  admin: { ratePerSecond: 2_000, burst: 4_000, concurrentAll: 64 },
};

/** What the budget says about one request. */
export type Admission =
  | { readonly ok: true; readonly release: () => void }
  | { readonly ok: false; readonly error: Extract<ErrorName, "EAGAIN" | "EBUSY">; readonly message: string };

interface Bucket {
  tokens: number;
  at: number;
  gathers: number;
}

export class RequestBudget {
  readonly #buckets = new Map<Role, Bucket>();

  constructor(
    readonly clock: Pick<Clock, "now">,
    readonly budgets: RequestBudgets = DEFAULT_BUDGETS,
  ) {}

  /** Takes one request of `role`; an ALL request also takes a gather slot until `release()`. */
  admit(role: Role, all: boolean): Admission {
    const budget = this.budgets[role];
    const now = this.clock.now();
    let bucket = this.#buckets.get(role);
    if (!bucket) {
      bucket = { tokens: budget.burst, at: now, gathers: 0 };
      this.#buckets.set(role, bucket);
    }
    const elapsed = Math.max(0, now - bucket.at);
    bucket.tokens = Math.min(budget.burst, bucket.tokens + (elapsed * budget.ratePerSecond) / 1_000);
    bucket.at = now;
    if (bucket.tokens < 1)
      return {
        ok: false,
        error: "EAGAIN",
        message: `too many requests from ${role}s on this node (${budget.ratePerSecond}/s): try again later`,
      };
    if (all && bucket.gathers >= budget.concurrentAll)
      return {
        ok: false,
        error: "EBUSY",
        message: `${budget.concurrentAll} ALL requests from ${role}s are already in flight on this node: try again when one ends`,
      };
    bucket.tokens -= 1;
    if (!all) return { ok: true, release: () => {} };
    bucket.gathers++;
    let released = false;
    const held = bucket;
    return {
      ok: true,
      release: () => {
        if (released) return;
        released = true;
        held.gathers--;
      },
    };
  }

  /** ALL gathers of `role` in flight. */
  gathers(role: Role): number {
    return this.#buckets.get(role)?.gathers ?? 0;
  }
}
