// The node's state directory: what must survive a restart. For now, the
// incarnation counter, bumped and fsynced at every start so each run of a node
// is told apart from the previous one (SPEC 4: a restart is a new incarnation).
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

/** Returns this start's incarnation: one more than the last one recorded in `dir`. */
export function nextIncarnation(dir: string): number {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, "incarnation");
  let last = 0;
  try {
    const parsed = Number.parseInt(readFileSync(file, "utf8").trim(), 10);
    if (Number.isSafeInteger(parsed) && parsed >= 0) last = parsed;
  } catch {
    // first start: no file yet
  }
  const next = last + 1;
  writeFileDurable(file, `${next}\n`);
  return next;
}
