import { describe, expect, it } from "vitest";
import {
  PROGRESS_THRESHOLD_BYTES,
  ProgressBar,
  renderProgress,
  wantsProgress,
} from "../../bin/dvsctl/progress.js";
import { SimClock } from "../../transport/sim/index.js";

const MiB = 1024 * 1024;

describe("dvsctl's progress line", () => {
  it("shows a bar, the percentage and the bytes done of the total, in the width given", () => {
    const line = renderProgress(1.5 * MiB, 3 * MiB, 60);
    expect(line).toBe(`[${"#".repeat(16)}${"-".repeat(17)}]   50%  1.5 MiB / 3.0 MiB`);
    expect(line).toHaveLength(60);
  });

  it("is empty at the start and full at the end", () => {
    expect(renderProgress(0, 2_048, 40)).toBe(`[${"-".repeat(17)}]    0%  0 B / 2.0 KiB`);
    expect(renderProgress(2_048, 2_048, 40)).toBe(`[${"#".repeat(13)}]  100%  2.0 KiB / 2.0 KiB`);
  });

  it("rounds the percentage down, so 100% means every byte", () => {
    expect(renderProgress(MiB - 1, MiB, 80)).toContain(" 99%");
  });

  it("keeps done within 0 and the total, and takes an empty file as complete", () => {
    expect(renderProgress(5_000, 1_000, 40)).toBe(renderProgress(1_000, 1_000, 40));
    expect(renderProgress(-5, 1_000, 40)).toBe(renderProgress(0, 1_000, 40));
    expect(renderProgress(0, 0, 40)).toContain("100%  0 B / 0 B");
  });

  it("drops the bar when the width leaves no room for one, and never exceeds the width", () => {
    expect(renderProgress(MiB, 2 * MiB, 30)).toBe(" 50%  1.0 MiB / 2.0 MiB");
    for (const width of [0, 1, 5, 12, 25, 33, 34, 35, 80, 200]) {
      expect(renderProgress(MiB, 3 * MiB, width).length).toBeLessThanOrEqual(width);
    }
  });

  it("is drawn by default only on a terminal and for files over 1 MiB; the flags decide otherwise", () => {
    expect(wantsProgress(undefined, true, PROGRESS_THRESHOLD_BYTES + 1)).toBe(true);
    expect(wantsProgress(undefined, true, PROGRESS_THRESHOLD_BYTES)).toBe(false);
    expect(wantsProgress(undefined, false, 100 * MiB)).toBe(false);
    expect(wantsProgress(true, false, 10)).toBe(true);
    expect(wantsProgress(false, true, 100 * MiB)).toBe(false);
  });
});

describe("the progress bar on a stream", () => {
  const setup = () => {
    const clock = new SimClock();
    const written: string[] = [];
    const bar = new ProgressBar({ stream: { write: (s: string) => written.push(s) > 0 }, clock, width: 41 });
    return { clock, written, bar };
  };

  it("redraws in place at most every 100 ms, and finishes with the last figures on their own line", async () => {
    const { clock, written, bar } = setup();
    bar.update(0, 1_000);
    bar.update(100, 1_000);
    bar.update(200, 1_000);
    expect(written).toHaveLength(1);
    await clock.advance(100);
    bar.update(300, 1_000);
    expect(written).toHaveLength(2);
    expect(written.every((w) => w.startsWith("\r") && w.length === 41)).toBe(true);
    expect(written[1]).toContain(" 30%");
    bar.update(1_000, 1_000);
    bar.finish();
    expect(written.slice(-2)).toEqual([`\r${renderProgress(1_000, 1_000, 40)}`, "\n"]);
  });

  it("wipes its line before an error message, and draws nothing if it never drew", async () => {
    const { written, bar } = setup();
    bar.finish();
    bar.clear();
    expect(written).toEqual([]);
    bar.update(10, 100);
    bar.clear();
    expect(written.at(-1)).toBe(`\r${" ".repeat(40)}\r`);
  });
});
