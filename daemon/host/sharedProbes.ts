// Expensive host probes (systeminformation runs ps, df and friends; PS and
// PIDSTAT walk all of /proc) shared between requests: callers that arrive
// while one runs await the same promise, and a result is reused for a short
// while after it settles. A flood of PS or PIDSTAT requests then costs one
// walk per freshness period instead of one each, so it cannot starve the
// node's heartbeats.
import type { Clock } from "../../transport/clock.js";
import type { HostContext } from "./context.js";

export interface SharedProbes {
  /** `work`'s result, shared with every caller of the same key while it runs and for a while after. */
  run<T>(key: string, work: () => Promise<T>): Promise<T>;
}

/** How long a probe's result is served again after it settled (ms). */
export const PROBE_FRESH_MS = 1_000;

interface Entry {
  readonly value: Promise<unknown>;
  /** When it settled; undefined while it runs (then every caller shares it, however long it takes). */
  settledAt: number | undefined;
}

/**
 * Keys are fixed probe names chosen by the code (never by a requester), so the
 * map holds at most one entry per probe.
 */
export function sharedProbes(clock: Clock, freshMs = PROBE_FRESH_MS): SharedProbes {
  const entries = new Map<string, Entry>();
  return {
    run<T>(key: string, work: () => Promise<T>): Promise<T> {
      const entry = entries.get(key);
      if (entry && (entry.settledAt === undefined || clock.now() - entry.settledAt < freshMs)) {
        return entry.value as Promise<T>;
      }
      const value = Promise.resolve().then(work);
      const own: Entry = { value, settledAt: undefined };
      entries.set(key, own);
      value.then(
        () => {
          own.settledAt = clock.now();
        },
        // A failed probe is not kept: the next caller tries again.
        () => {
          if (entries.get(key) === own) entries.delete(key);
        },
      );
      return value;
    },
  };
}

/** Runs `work` through the context's shared probes, or directly when it has none. */
export function shared<T>(ctx: HostContext, key: string, work: () => Promise<T>): Promise<T> {
  return ctx.probes ? ctx.probes.run(key, work) : work();
}
