// A one-line progress bar on stderr for dvsctl's long transfers (file commit
// and update): `renderProgress` draws the line from the figures alone, and
// `ProgressBar` redraws it in place with `\r`, at most every 100 ms.
import type { Clock } from "../../client/connection.js";
import { bytes } from "./host.js";

/** Files larger than this get a bar by default (when stderr is a terminal). */
export const PROGRESS_THRESHOLD_BYTES = 1024 * 1024;

/** Least time between two redraws: about ten a second. */
const REDRAW_EVERY_MS = 100;

/** Narrower than this, the line is the figures alone, without a bar. */
const MIN_BAR_CELLS = 10;

/**
 * The progress line for `done` of `total` bytes, at most `width` characters:
 * `[#######-------------]  35%  1.2 MiB / 3.5 MiB`. The figures come first when
 * the width does not leave room for a useful bar.
 */
export function renderProgress(done: number, total: number, width: number): string {
  const fraction = total <= 0 ? 1 : Math.min(1, Math.max(0, done / total));
  const percent = `${Math.floor(fraction * 100)}%`.padStart(4);
  const shown = Math.min(Math.max(0, done), Math.max(0, total));
  const figures = `${percent}  ${bytes(shown)} / ${bytes(Math.max(0, total))}`;
  const cells = width - figures.length - 4;
  if (cells < MIN_BAR_CELLS) return figures.slice(0, Math.max(0, width));
  const filled = Math.floor(fraction * cells);
  return `[${"#".repeat(filled)}${"-".repeat(cells - filled)}]  ${figures}`;
}

/** Whether to draw a bar: `--progress`/`--no-progress` decide, else a terminal and a large file. */
export function wantsProgress(option: boolean | undefined, isTTY: boolean, size: number): boolean {
  return option ?? (isTTY && size > PROGRESS_THRESHOLD_BYTES);
}

export interface ProgressBarOptions {
  readonly stream: Pick<NodeJS.WriteStream, "write"> & { readonly columns?: number };
  readonly clock: Clock;
  /** Used when the stream is not a terminal (no `columns`). */
  readonly width?: number;
}

/** A progress line redrawn in place; `finish` leaves it complete on its own line. */
export class ProgressBar {
  readonly #o: ProgressBarOptions;
  #drawnAt: number | undefined;
  #last = { done: 0, total: 0 };
  #visible = false;

  constructor(options: ProgressBarOptions) {
    this.#o = options;
  }

  /** Records the figures; redraws unless the last redraw was under 100 ms ago. */
  update(done: number, total: number): void {
    this.#last = { done, total };
    const now = this.#o.clock.now();
    if (this.#drawnAt !== undefined && now - this.#drawnAt < REDRAW_EVERY_MS) return;
    this.#drawnAt = now;
    this.#draw();
  }

  /** Draws the last figures (so a complete transfer shows 100%) and ends the line. */
  finish(): void {
    if (this.#drawnAt === undefined) return;
    this.#draw();
    this.#o.stream.write("\n");
    this.#visible = false;
  }

  /** Wipes the line, so that an error message starts on a clean one. */
  clear(): void {
    if (!this.#visible) return;
    this.#o.stream.write(`\r${" ".repeat(this.#width())}\r`);
    this.#visible = false;
  }

  #width(): number {
    // A terminal of unknown size reports 0 columns. One column short of the terminal:
    // writing the last column wraps on some terminals.
    const columns = this.#o.stream.columns;
    return Math.max(1, (columns !== undefined && columns > 0 ? columns : (this.#o.width ?? 80)) - 1);
  }

  #draw(): void {
    const line = renderProgress(this.#last.done, this.#last.total, this.#width());
    this.#o.stream.write(`\r${line.padEnd(this.#width())}`);
    this.#visible = true;
  }
}
