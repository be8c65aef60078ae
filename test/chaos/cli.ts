// `npm run chaos -- --seed S --minutes M`: the chaos run on real processes,
// for long runs outside CI. Prints each episode as it settles, then the
// violations; writes the results files; exits 1 on any violation.
import { parseArgs } from "node:util";
import { writeResults } from "../../bench/results.js";
import { chaosRows } from "./report.js";
import { chaosSchedule, runChaos, SETTLE_BOUND_MS } from "./runner.js";
import { describeFault, fingerprint } from "./schedule.js";

const usage = `usage: npm run chaos -- [--seed S] [--minutes M] [--settle-bound MS] [--keep] [--plan] [--out DIR]

  --seed S           the fault schedule's seed (default 1); the same seed plans the same faults
  --minutes M        how long to plan faults for (default 10; fractions allowed)
  --settle-bound MS  longest wait after a heal for one view and one coordinator (default 60000)
  --keep             keep the run's directory (node logs, JetStream stores) even when it passes
  --plan             print the schedule and its fingerprint, run nothing
  --out DIR          where the results files go (default results/)`;

function main(): Promise<number> | number {
  let values: ReturnType<typeof parse>["values"];
  try {
    values = parse().values;
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : String(error)}\n${usage}`);
    return 2;
  }
  if (values.help) {
    console.log(usage);
    return 0;
  }
  const seed = Number(values.seed ?? "1");
  const minutes = Number(values.minutes ?? "10");
  const settleBoundMs = Number(values["settle-bound"] ?? String(SETTLE_BOUND_MS));
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffff_ffff)
    return bad(`--seed must be an integer 0..2^32-1, got ${values.seed}`);
  if (!(minutes > 0 && minutes <= 24 * 60))
    return bad(`--minutes must be > 0 and at most 1440, got ${values.minutes}`);
  if (!Number.isInteger(settleBoundMs) || settleBoundMs < 1_000)
    return bad(`--settle-bound must be an integer ≥ 1000, got ${values["settle-bound"]}`);
  const durationMs = Math.round(minutes * 60_000);
  if (values.plan) {
    const schedule = chaosSchedule(seed, durationMs);
    for (const e of schedule)
      console.log(`#${e.index} ${describeFault(e.fault)}, hold ${e.holdMs} ms, gap ${e.gapMs} ms`);
    console.log(`schedule ${fingerprint(schedule)} (${schedule.length} episodes)`);
    return 0;
  }
  return (async () => {
    let result: Awaited<ReturnType<typeof runChaos>>;
    try {
      result = await runChaos({
        seed,
        durationMs,
        settleBoundMs,
        keep: values.keep === true,
        log: (line) => console.log(line),
      });
    } catch (error) {
      // The harness itself failed (not a check): say so, with what failed, and exit 2.
      console.error(
        `chaos run aborted: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`,
      );
      return 2;
    }
    const { rows, table } = chaosRows(result);
    console.log(`\n${table}`);
    const written = writeResults(
      {
        name: "chaos",
        rows,
        meta: { seed, minutes, fingerprint: result.fingerprint, violations: result.violations },
      },
      values.out !== undefined ? { dir: values.out } : {},
    );
    console.log(`results: ${Object.values(written).join(", ")}`);
    if (result.serverDefects.length > 0) {
      console.log(
        `\n${result.serverDefects.length} nats-server defect(s) seen under dvsd (docs/operations.md, "Chaos run"):`,
      );
      for (const v of result.serverDefects) console.log(`  [${v.check}] ${v.message}`);
    }
    if (result.violations.length > 0) {
      console.log(`\n${result.violations.length} violation(s); logs kept in ${result.dir}`);
      for (const v of result.violations) console.log(`  [${v.check}] ${v.message}`);
      return 1;
    }
    console.log(`\nno violations (seed ${seed}, schedule ${result.fingerprint})`);
    return 0;
  })();
}

function parse() {
  return parseArgs({
    options: {
      seed: { type: "string" },
      minutes: { type: "string" },
      "settle-bound": { type: "string" },
      keep: { type: "boolean" },
      plan: { type: "boolean" },
      out: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
}

function bad(message: string): number {
  console.error(`${message}\n${usage}`);
  return 2;
}

process.exitCode = await main();
