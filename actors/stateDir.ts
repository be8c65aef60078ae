// The node's state directory: what must survive a restart. Here, the
// incarnation, raised and fsynced at every start so each run of a node is told
// apart from every earlier one (SPEC 4: a restart is a new incarnation).
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { join } from "node:path";

/** Writes a file atomically: temp file, fsync, rename, fsync of the directory. */
export function writeFileDurable(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, "w");
  try {
    writeSync(fd, typeof data === "string" ? Buffer.from(data) : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  const dir = openSync(join(path, ".."), "r");
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

/** Unix seconds of 2024-01-01T00:00:00Z: clock-derived incarnations count from there, so they fit 32 bits for a century. */
export const INCARNATION_EPOCH_S = 1_704_067_200;

/**
 * Returns this start's incarnation: one more than the last one recorded in
 * `dir`, or the start time in seconds since 2024-01-01 when that is higher.
 * The clock part keeps incarnations growing when the state directory was
 * emptied or lost (a rebuilt host, a restored image): the peers still hold
 * the old, higher-than-1 incarnation and would take a lower one for a ghost.
 * It holds while a node starts at most once a second on average and the
 * wall clock does not step back past its last start (docs/operations.md).
 */
export function nextIncarnation(dir: string, nowMs: number): number {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, "incarnation");
  let last = 0;
  try {
    const parsed = Number.parseInt(readFileSync(file, "utf8").trim(), 10);
    if (Number.isSafeInteger(parsed) && parsed >= 0) last = parsed;
  } catch {
    // first start, or the directory was emptied: the clock part decides
  }
  const fromClock = Math.floor(nowMs / 1000) - INCARNATION_EPOCH_S;
  const next = Math.max(last + 1, fromClock);
  writeFileDurable(file, `${next}\n`);
  return next;
}
