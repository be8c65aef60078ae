// Reads of /proc, /sys and the like. A file that is absent or forbidden is a
// fact about the host (a process that just exited, /proc/<pid>/io of another
// user), not a failure: every read answers undefined instead of throwing.
import { readdir, readFile, readlink, stat } from "node:fs/promises";

/** The file's text, or undefined when it cannot be read for any reason. */
export async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch {
    return undefined;
  }
}

/** The names in a directory, or undefined when it cannot be listed. */
export async function listDir(path: string): Promise<string[] | undefined> {
  try {
    return await readdir(path);
  } catch {
    return undefined;
  }
}

/** The subdirectories of a directory (empty when it cannot be listed). */
export async function listSubdirs(path: string): Promise<string[]> {
  try {
    const entries = await readdir(path, { withFileTypes: true });
    return entries.filter((e) => e.isDirectory()).map((e) => e.name);
  } catch {
    return [];
  }
}

/** A symbolic link's target, or undefined. */
export async function readLink(path: string): Promise<string | undefined> {
  try {
    return await readlink(path);
  } catch {
    return undefined;
  }
}

/** Whether something exists at the path (false when its directory cannot be searched). */
export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** The numeric entries of /proc: one per process. */
export async function listPids(procRoot: string): Promise<number[]> {
  const names = (await listDir(procRoot)) ?? [];
  return names
    .filter((n) => /^\d+$/.test(n))
    .map(Number)
    .sort((a, b) => a - b);
}

/** Runs `fn` over `items`, at most `width` at a time, keeping the order of the input. */
export async function mapInBatches<T, R>(
  items: readonly T[],
  width: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += width) {
    out.push(...(await Promise.all(items.slice(i, i + width).map(fn))));
  }
  return out;
}
