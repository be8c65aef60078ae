import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { silentLogger } from "../../actors/logger.js";
import { ConfigError } from "../../daemon/errors.js";
import {
  type ScriptEvent,
  ScriptQueueTimeoutError,
  type ScriptResult,
  ScriptRunner,
  type ScriptRunnerOptions,
  ScriptSpawnError,
  type ScriptsConfigInput,
  scriptsConfigSchema,
} from "../../daemon/scripts.js";
import type { MembershipEventName } from "../../protocol/messages.js";
import { systemClock } from "../../transport/clock.js";

const recordEnv = fileURLToPath(new URL("../fixtures/scripts/record-env.mjs", import.meta.url));
const tempDir = () => mkdtempSync(join(tmpdir(), "dvs-scripts-"));

function event(viewId: number, type: MembershipEventName = "JOIN"): ScriptEvent {
  return {
    v: 1,
    node: 3,
    incarnation: 7,
    event: type,
    view: { id: viewId, members: [1, 3, 4] },
    changed: [
      { node: 4, incarnation: 2 },
      { node: 1, incarnation: 5 },
    ],
    cause: "heartbeat",
    at: 1_700_000_000_000,
  };
}

/** A runner on the system clock that records its results and log lines. */
function runner(config: ScriptsConfigInput, options: Partial<ScriptRunnerOptions> = {}) {
  const results: ScriptResult[] = [];
  const logs: { level: number; msg: string; [k: string]: unknown }[] = [];
  const logger = pino({ level: "debug" }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  const scripts = new ScriptRunner(config, {
    logger,
    clock: systemClock,
    onRun: (r) => results.push(r),
    ...options,
  });
  return { scripts, results, logs };
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("membership event scripts", () => {
  it("the config fills its defaults and names the path of a bad value", () => {
    expect(scriptsConfigSchema.parse({})).toEqual({
      timeoutMs: 10_000,
      maxOutputBytes: 65_536,
      maxQueue: 1_000,
    });
    expect(scriptsConfigSchema.safeParse({ JOIN: [] }).success).toBe(false);
    expect(scriptsConfigSchema.safeParse({ JOIN: ["x"], JION: ["x"] }).success).toBe(false);
    try {
      new ScriptRunner({ timeoutMs: 5 }, { logger: silentLogger, clock: systemClock });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).issues.map((i) => i.path)).toEqual(["scripts.timeoutMs"]);
    }
  });

  it("the environment variables and the stdin JSON reach the script", async () => {
    const out = join(tempDir(), "seen.json");
    const { scripts, results } = runner({ PARTITION: [process.execPath, recordEnv, out] });
    const sent = event(12, "PARTITION");
    expect(scripts.enqueue(sent)).toBe("queued");
    await scripts.drain(10_000);

    expect(results.map((r) => r.outcome)).toEqual(["ok"]);
    const seen = JSON.parse(readFileSync(out, "utf8"));
    expect(seen.env).toEqual({
      DVS_EVENT: "PARTITION",
      DVS_NODE: "3",
      DVS_INCARNATION: "7",
      DVS_VIEW_ID: "12",
      DVS_MEMBERS: "1,3,4",
      DVS_CHANGED: "4:2,1:5",
    });
    expect(seen.stdin).toBe(`${JSON.stringify(sent)}\n`);
    expect(JSON.parse(seen.stdin)).toEqual(sent);
  });

  it("events run in order and one at a time, and enqueue returns at once while a slow script runs", async () => {
    const log = join(tempDir(), "order.log");
    const { scripts, results } = runner({
      JOIN: [
        "/bin/sh",
        "-c",
        'echo "start $DVS_VIEW_ID" >> "$1"; if [ "$DVS_VIEW_ID" = 0 ]; then sleep 0.3; fi; echo "end $DVS_VIEW_ID" >> "$1"',
        "sh",
        log,
      ],
    });
    scripts.enqueue(event(0));
    await nextTurn();

    const before = performance.now();
    for (let id = 1; id <= 100; id++) scripts.enqueue(event(id));
    expect(performance.now() - before).toBeLessThan(50);
    expect(scripts.pending).toBe(100);

    await scripts.drain(20_000);
    const expected = Array.from({ length: 101 }, (_, id) => [`start ${id}`, `end ${id}`]).flat();
    expect(readFileSync(log, "utf8").trim().split("\n")).toEqual(expected);
    expect(results.map((r) => r.event.view.id)).toEqual(Array.from({ length: 101 }, (_, id) => id));
    expect(scripts.stats).toMatchObject({ ran: 101, failed: 0, dropped: 0 });
  });

  it("a script that outlives timeoutMs is killed and reported as timed out", async () => {
    const { scripts, results, logs } = runner({ JOIN: ["/bin/sh", "-c", "sleep 5"], timeoutMs: 200 });
    scripts.enqueue(event(1));
    await scripts.drain(5_000);

    const [result] = results;
    expect(result).toMatchObject({ outcome: "timedOut", timedOut: true, code: null, signal: "SIGTERM" });
    expect(result!.durationMs).toBeGreaterThanOrEqual(190);
    expect(result!.durationMs).toBeLessThan(2_000);
    expect(scripts.stats).toMatchObject({ ran: 1, failed: 1, timedOut: 1 });
    expect(logs.find((l) => l.msg === "membership script timedOut")?.level).toBe(40);
  });

  it("a script that ignores SIGTERM is killed with SIGKILL after the grace", async () => {
    const { scripts, results } = runner(
      { JOIN: ["/bin/sh", "-c", "trap '' TERM; sleep 5"], timeoutMs: 200 },
      { killGraceMs: 200 },
    );
    scripts.enqueue(event(1));
    await scripts.drain(5_000);
    expect(results[0]).toMatchObject({ outcome: "timedOut", timedOut: true, signal: "SIGKILL" });
    expect(results[0]!.durationMs).toBeLessThan(2_000);
  });

  it("stdout and stderr are each capped at maxOutputBytes and the truncation is noted", async () => {
    const { scripts, results } = runner({
      JOIN: ["/bin/sh", "-c", "head -c 100000 /dev/zero | tr '\\0' a; printf err >&2"],
      maxOutputBytes: 1_000,
    });
    scripts.enqueue(event(1));
    await scripts.drain(5_000);
    expect(results[0]).toMatchObject({ outcome: "ok", code: 0, truncated: true, stderr: "err" });
    expect(results[0]!.stdout).toBe("a".repeat(1_000));
  });

  it("a missing program is reported with an error and the next event still runs", async () => {
    const { scripts, results, logs } = runner({
      JOIN: ["/nonexistent/dvs-script", "arg"],
      MERGE: ["/bin/sh", "-c", "echo merged"],
    });
    expect(scripts.enqueue(event(1, "JOIN"))).toBe("queued");
    expect(scripts.enqueue(event(2, "MERGE"))).toBe("queued");
    await scripts.drain(5_000);

    expect(results.map((r) => r.outcome)).toEqual(["spawnFailed", "ok"]);
    expect(results[0]!.error).toBeInstanceOf(ScriptSpawnError);
    expect(results[0]!.error?.code).toBe("ENOENT");
    expect(results[1]!.stdout).toBe("merged\n");
    expect(scripts.stats).toMatchObject({ ran: 2, failed: 1 });
    const levels = logs.filter((l) => l.msg.startsWith("membership script")).map((l) => [l.level, l.outcome]);
    expect(levels).toEqual([
      [40, "spawnFailed"],
      [30, "ok"],
    ]);
  });

  it("a full queue drops the new event, counts it and logs an error", async () => {
    const { scripts, results, logs } = runner({ JOIN: ["/bin/sh", "-c", "exit 0"], maxQueue: 3 });
    const outcomes = [1, 2, 3, 4, 5].map((id) => scripts.enqueue(event(id)));
    expect(outcomes).toEqual(["queued", "queued", "queued", "dropped", "dropped"]);
    expect(scripts.pending).toBe(3);
    await scripts.drain(5_000);

    expect(results.map((r) => r.event.view.id)).toEqual([1, 2, 3]);
    expect(scripts.stats).toMatchObject({ ran: 3, dropped: 2 });
    const errors = logs.filter((l) => l.level === 50);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ dropped: 1, maxQueue: 3 });
  });

  it("an event type with no script is skipped and counted", async () => {
    const { scripts, results } = runner({ JOIN: ["/bin/sh", "-c", "exit 3"] });
    expect(scripts.enqueue(event(1, "DISCONNECT"))).toBe("skipped");
    expect(scripts.enqueue(event(2, "JOIN"))).toBe("queued");
    await scripts.drain(5_000);
    expect(results.map((r) => [r.event.event, r.outcome, r.code])).toEqual([["JOIN", "failed", 3]]);
    expect(scripts.stats).toMatchObject({ ran: 1, failed: 1, skipped: 1 });
  });

  it("no shell runs: an argument with ; or $(...) reaches the program literally", async () => {
    const dir = tempDir();
    const args = [`; touch ${dir}/semicolon`, `$(touch ${dir}/substitution)`, "`id`", "$HOME", "a|b"];
    const { scripts, results } = runner({ JOIN: ["/bin/echo", ...args] });
    scripts.enqueue(event(1));
    await scripts.drain(5_000);
    expect(results[0]!.stdout).toBe(`${args.join(" ")}\n`);
    expect(existsSync(join(dir, "semicolon"))).toBe(false);
    expect(existsSync(join(dir, "substitution"))).toBe(false);
  });

  it("drain times out with a named error, and stop kills the running script and clears the queue", async () => {
    const { scripts, results } = runner({ JOIN: ["/bin/sh", "-c", "sleep 5"] });
    for (const id of [1, 2, 3]) scripts.enqueue(event(id));
    await nextTurn();
    await expect(scripts.drain(50)).rejects.toBeInstanceOf(ScriptQueueTimeoutError);

    const draining = scripts.drain(5_000);
    const before = performance.now();
    await scripts.stop();
    expect(performance.now() - before).toBeLessThan(2_000);
    await draining;
    expect(results.map((r) => [r.event.view.id, r.outcome, r.signal])).toEqual([[1, "stopped", "SIGTERM"]]);
    expect(scripts.pending).toBe(0);
    expect(scripts.enqueue(event(4))).toBe("stopped");
  });
});
