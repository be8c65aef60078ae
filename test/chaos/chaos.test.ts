// The chaos run, bounded for CI: the real processes (3 nats-servers with
// cuttable routes, 6 dvsd nodes, the client workload) under a short fixed-seed
// schedule that holds every kind of fault; it must end with zero violations.
// `npm run chaos -- --seed S --minutes M` runs the long version.
import { describe, expect, it } from "vitest";
import { requireBuild } from "../support/cli.js";
import { runChaos } from "./runner.js";
import { FAULT_KINDS } from "./schedule.js";

/** A seed whose first minute holds each of the five fault kinds at least once (checked below). */
const SEED = 6;
const DURATION_MS = Number(process.env.DVS_CHAOS_MS ?? 60_000);

describe("the chaos run", () => {
  it(
    "ends a fixed-seed schedule of every fault kind with one view, one coordinator and no violation",
    async () => {
      requireBuild();
      const lines: string[] = [];
      const result = await runChaos({ seed: SEED, durationMs: DURATION_MS, log: (l) => lines.push(l) });
      const report = `${lines.join("\n")}\nviolations:\n${result.violations.map((v) => `[${v.check}] ${v.message}`).join("\n")}\nlogs: ${result.dir}`;
      // nats-server 2.9's replica desync is reported, not failed on: it is not dvsd's to fix (docs/operations.md).
      for (const d of result.serverDefects)
        console.warn(`nats-server defect under the chaos run: ${d.message}`);
      expect(new Set(result.schedule.map((e) => e.fault.kind)), report).toEqual(new Set(FAULT_KINDS));
      expect(result.violations, report).toEqual([]);
      // The workload ran through it: every kind of operation was answered at least once.
      for (const kind of ["all", "commit", "update", "who"]) {
        expect(result.counts[kind]?.ok ?? 0, `${kind} answered\n${report}`).toBeGreaterThan(0);
      }
    },
    DURATION_MS * 3 + 120_000,
  );
});
