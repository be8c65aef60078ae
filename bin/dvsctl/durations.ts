// How dvsctl shows a time a thing took: whole milliseconds under a second,
// tenths of a second under a minute, then minutes and seconds, then hours and
// minutes (`12 ms`, `1.2 s`, `4 min 5 s`, `2 h 3 min`), never a long float.

/** An elapsed time in milliseconds as dvsctl prints it; undefined (a `-` in a table) for anything but a number ≥ 0. */
export function elapsed(ms: unknown): string | undefined {
  if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0) return undefined;
  const whole = Math.round(ms);
  if (whole < 1_000) return `${whole} ms`;
  const tenths = Math.round(ms / 100);
  if (tenths < 600) return `${(tenths / 10).toFixed(1)} s`;
  const seconds = Math.round(ms / 1_000);
  if (seconds < 3_600) return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
  const minutes = Math.round(ms / 60_000);
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}
