// Structured logs with pino, and a throttle so that a flood of bad input is
// logged once per interval with a count rather than once per message.
import { type Logger, pino } from "pino";
import type { Clock } from "../transport/clock.js";

export type { Logger } from "pino";

export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";

export function createLogger(options: { level: LogLevel; node?: number; name?: string }): Logger {
  return pino({
    level: options.level,
    base: { ...(options.node !== undefined ? { node: options.node } : {}), pid: process.pid },
    ...(options.name ? { name: options.name } : {}),
  });
}

/** A logger that writes nothing, for tests and simulations. */
export const silentLogger: Logger = pino({ level: "silent" });

/**
 * Logs at most one line per key per interval; the line carries how many were
 * suppressed since the previous one.
 */
export function throttledWarn(logger: Logger, clock: Clock, intervalMs = 10_000) {
  const last = new Map<string, { at: number; suppressed: number }>();
  return (key: string, fields: Record<string, unknown>, message: string): void => {
    const now = clock.now();
    const entry = last.get(key);
    if (entry && now - entry.at < intervalMs) {
      entry.suppressed++;
      return;
    }
    logger.warn({ ...fields, suppressed: entry?.suppressed ?? 0 }, message);
    if (last.size > 1_000) last.clear();
    last.set(key, { at: now, suppressed: 0 });
  };
}
