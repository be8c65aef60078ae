// Expensive host probes (systeminformation runs ps, df and friends) shared
// between requests: callers that arrive while one runs get its result, and a
// result is reused for a short while. A flood of PS requests then costs one
// `ps` per freshness period instead of one each, so it cannot starve the
// node's heartbeats.
import type { Clock } from "../../transport/clock.js";
import type { HostContext } from "./context.js";

export interface SharedProbes {
  run<T>(key: string, work: () => Promise<T>): Promise<T>;
}

/** How long a probe's result is served again (ms). */
export const PROBE_FRESH_MS = 1_000;

export function sharedProbes(clock: Clock, freshMs = PROBE_FRESH_MS): SharedProbes {
  const entries = new Map<string, { at: number; value: Promise<unknown> }>();
  return {
    run<T>(key: string, work: () => Promise<T>): Promise<T> {
      const now = clock.now();
      const entry = entries.get(key);
      if (entry && now - entry.at < freshMs) return entry.value as Promise<T>;
      const value = work();
      entries.set(key, { at: now, value });
      // A failed probe is not kept: the next caller tries again.
      value.catch(() => {
        if (entries.get(key)?.value === value) entries.delete(key);
      });
      return value;
    },
  };
}

/** Runs `work` through the context's shared probes, or directly when it has none (tests). */
export function shared<T>(ctx: HostContext, key: string, work: () => Promise<T>): Promise<T> {
  return ctx.probes ? ctx.probes.run(key, work) : work();
}
