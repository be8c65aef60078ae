// Probes that shell out (systeminformation runs ps, df, docker; COMMAND's
// podman) are raced against a deadline on the injected clock, so a stuck tool
// degrades one reply instead of holding it past the requester's timeout.
import type { Clock } from "../../transport/clock.js";

/** How long one probe may take; a handler stays well under the 2 s a requester waits by default. */
export const PROBE_DEADLINE_MS = 1_500;

export type Probe<T> =
  | { readonly status: "ok"; readonly value: T }
  | { readonly status: "timedOut" }
  | { readonly status: "failed"; readonly error: unknown };

/** Settles with the work's value, its failure, or `timedOut` after `ms` on `clock`; never rejects. */
export function probe<T>(clock: Clock, ms: number, work: () => Promise<T>): Promise<Probe<T>> {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (result: Probe<T>) => {
      if (settled) return;
      settled = true;
      clock.clearTimeout(timer);
      resolve(result);
    };
    const timer = clock.setTimeout(() => settle({ status: "timedOut" }), ms);
    try {
      work().then(
        (value) => settle({ status: "ok", value }),
        (error: unknown) => settle({ status: "failed", error }),
      );
    } catch (error) {
      settle({ status: "failed", error });
    }
  });
}

/** The value of a probe that succeeded, else undefined. */
export function probedValue<T>(result: Probe<T>): T | undefined {
  return result.status === "ok" ? result.value : undefined;
}
