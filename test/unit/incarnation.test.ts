import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { INCARNATION_EPOCH_S, nextIncarnation } from "../../actors/stateDir.js";

const dirs: string[] = [];
const freshDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "dvs-incarnation-"));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Wall-clock milliseconds `s` seconds after the incarnation epoch. */
const at = (s: number) => (INCARNATION_EPOCH_S + s) * 1000;

describe("a node's incarnation", () => {
  it("is the start time in seconds since 2024 when the state directory is new", () => {
    expect(nextIncarnation(freshDir(), at(90_000_000) + 999)).toBe(90_000_000);
  });

  it("is one more than the last when the node restarts within the same second", () => {
    const dir = freshDir();
    const first = nextIncarnation(dir, at(100));
    expect(nextIncarnation(dir, at(100))).toBe(first + 1);
    expect(nextIncarnation(dir, at(100) + 500)).toBe(first + 2);
  });

  it("never goes back when the wall clock steps back, as long as the directory is kept", () => {
    const dir = freshDir();
    const first = nextIncarnation(dir, at(5_000));
    expect(nextIncarnation(dir, at(10))).toBe(first + 1);
  });

  it("is still higher than every earlier one when the state directory was emptied", () => {
    const dir = freshDir();
    let last = 0;
    for (let s = 0; s < 5; s++) last = nextIncarnation(dir, at(1_000 + s));
    rmSync(dir, { recursive: true, force: true });
    expect(nextIncarnation(dir, at(1_010))).toBeGreaterThan(last);
  });

  it("takes a higher stored value over the clock (a node started often in one second)", () => {
    const dir = freshDir();
    writeFileSync(join(dir, "incarnation"), "7777777\n");
    expect(nextIncarnation(dir, at(100))).toBe(7_777_778);
  });

  it("ignores a stored value that is not a count", () => {
    const dir = freshDir();
    writeFileSync(join(dir, "incarnation"), "-3 or garbage\n");
    expect(nextIncarnation(dir, at(42))).toBe(42);
  });
});
