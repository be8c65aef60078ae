// A child process's output, kept up to a byte limit: event scripts and the
// COMMAND request both run programs whose output must never grow without bound.

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
