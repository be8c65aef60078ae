// The chaos run's copy of the build: nodes restarted during a run run the code
// the run started with, even when `dist` is rebuilt meanwhile.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { snapshotBuild } from "../support/cli.js";
import { repoRoot } from "../support/natsServer.js";

describe("snapshotBuild", () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it("copies what a node runs, without the tests and benchmarks, and its dvsd runs from the copy", () => {
    const dir = mkdtempSync(join(tmpdir(), "dvs-build-"));
    dirs.push(dir);
    const bin = snapshotBuild(dir);
    expect(bin).toBe(join(dir, "build/dist/bin/dvsd.js"));
    expect(existsSync(join(dir, "build/dist/actors"))).toBe(true);
    expect(existsSync(join(dir, "build/dist/test"))).toBe(false);
    expect(existsSync(join(dir, "build/dist/bench"))).toBe(false);
    const help = spawnSync(process.execPath, [bin, "run", "--help"], { encoding: "utf8", timeout: 30_000 });
    expect(help.status, help.stderr).toBe(0);
    expect(help.stdout).toContain("--node");
    // Removing the run directory removes the link to node_modules, not node_modules.
    rmSync(dir, { recursive: true, force: true });
    expect(existsSync(join(repoRoot, "node_modules/zod/package.json"))).toBe(true);
  });
});
