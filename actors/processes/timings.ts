// The delays of the process runtime: how long a move, a gap in a sender's
// sequence, a pending snapshot save and a stop may take, and how the proxies
// resend and give up (docs/processes.md, section 5). Tests shorten them.
import { defaultProxyLimits, type ProxyLimits } from "../../machines/proxy.js";

export interface ProcessTimings extends ProxyLimits {
  /** How long the old host waits for the new one to take a migrating process. */
  readonly migrationTimeoutMs: number;
  /** How long the old host keeps resending the abort of a timed-out move. */
  readonly abortGiveUpMs: number;
  /**
   * How long a gap in one sender's sequence may stay open before it is skipped
   * (and counted). A gap stays open only when its sender gave up (the proxies
   * resend until `giveUpMs`), so it is at least `giveUpMs` + GAP_MARGIN_MS.
   */
  readonly gapTimeoutMs: number;
  /** Delay between a change of a process (delivery, send, SETPRIV) and the save of its snapshot. */
  readonly persistDebounceMs: number;
  /** Delay of a save a message's acknowledgement waits for (group commit). */
  readonly durableDelayMs: number;
  /** Longest `stop()` waits for the snapshots to be saved. */
  readonly stopTimeoutMs: number;
}

/** What the gap timeout exceeds the give-up by: a resend on its way when its sender gave up. */
export const GAP_MARGIN_MS = 5_000;

export const defaultProcessTimings: ProcessTimings = {
  ...defaultProxyLimits,
  migrationTimeoutMs: 2_000,
  abortGiveUpMs: 300_000,
  gapTimeoutMs: defaultProxyLimits.giveUpMs + GAP_MARGIN_MS,
  persistDebounceMs: 1_000,
  durableDelayMs: 5,
  stopTimeoutMs: 2_000,
};

/** The timings with `overrides`; the gap timeout is at least the give-up plus the margin (its default). */
export function processTimings(overrides: Partial<ProcessTimings> = {}): ProcessTimings {
  const t = { ...defaultProcessTimings, ...overrides };
  return { ...t, gapTimeoutMs: Math.max(overrides.gapTimeoutMs ?? 0, t.giveUpMs + GAP_MARGIN_MS) };
}
