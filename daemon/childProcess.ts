// What event scripts and the COMMAND request share about the programs they
// run: output kept up to a byte limit, and signals sent to the program's whole
// process group (it runs detached, so the timeout also ends what it started).
import type { ChildProcess } from "node:child_process";

export class CappedOutput {
  readonly #chunks: Buffer[] = [];
  #kept = 0;
  /** True once anything was dropped. */
  truncated = false;

  constructor(readonly max: number) {}

  push(chunk: Buffer): void {
    const room = this.max - this.#kept;
    if (chunk.length > room) this.truncated = true;
    if (room <= 0) return;
    const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
    this.#chunks.push(part);
    this.#kept += part.length;
  }

  text(): string {
    return Buffer.concat(this.#chunks).toString("utf8");
  }
}

/** Signals the process group of a detached child (or the child alone if that fails); a no-op once it exited. */
export function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    child.kill(signal);
  }
}
