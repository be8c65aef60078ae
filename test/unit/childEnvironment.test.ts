// Programs the node runs for others (COMMAND, membership event scripts) see a
// clean environment: a fixed PATH, LANG=C and their documented DVS_* variables,
// never the daemon's own (where DVS_NATS_PASS lives).
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { silentLogger } from "../../actors/logger.js";
import { SAFE_PATH } from "../../daemon/host/childEnvironment.js";
import type { CommandResult } from "../../daemon/host/command.js";
import { commandsConfigSchema } from "../../daemon/host/command.js";
import { type ScriptEvent, type ScriptResult, ScriptRunner } from "../../daemon/scripts.js";
import { systemClock } from "../../transport/clock.js";
import { hostHandlers, hostRqst, succeeded } from "../support/hostHandlers.js";

const SECRET = "hunter2-do-not-leak";

/** `env`'s output as variables. */
function parseEnv(text: string): Record<string, string> {
  return Object.fromEntries(
    text
      .split("\n")
      .filter((line) => line.includes("="))
      .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
  );
}

const event: ScriptEvent = {
  v: 1,
  node: 2,
  incarnation: 5,
  event: "DISCONNECT",
  view: { id: 4, members: [1, 2] },
  changed: [{ node: 3, incarnation: 1 }],
  cause: "left",
  at: 1_700_000_000_000,
};

describe("the environment of programs the node runs for others", () => {
  beforeEach(() => {
    process.env.DVS_NATS_PASS = SECRET;
    process.env.DVS_TEST_TOKEN = SECRET;
  });
  afterEach(() => {
    delete process.env.DVS_NATS_PASS;
    delete process.env.DVS_TEST_TOKEN;
  });

  it("a COMMAND that prints its environment sees PATH and LANG=C, not the daemon's secrets", async () => {
    const commands = commandsConfigSchema.parse({ allowed: { env: { argv: ["/usr/bin/env"] } } });
    const out = succeeded<CommandResult>(
      await hostHandlers({ commands }).COMMAND(hostRqst("COMMAND", { command: "env" })),
    );
    expect(out.data.exitCode).toBe(0);
    expect(out.data.stdout).not.toContain(SECRET);
    expect(parseEnv(out.data.stdout)).toEqual({ PATH: SAFE_PATH, LANG: "C" });
  });

  it("an event script that prints its environment sees PATH, LANG=C and its DVS_* variables only", async () => {
    const results: ScriptResult[] = [];
    const scripts = new ScriptRunner(
      { DISCONNECT: ["/usr/bin/env"] },
      { logger: silentLogger, clock: systemClock, onRun: (r) => results.push(r) },
    );
    expect(scripts.enqueue(event)).toBe("queued");
    await scripts.drain(10_000);
    expect(results.map((r) => r.outcome)).toEqual(["ok"]);
    const stdout = results[0]?.stdout ?? "";
    expect(stdout).not.toContain(SECRET);
    expect(parseEnv(stdout)).toEqual({
      PATH: SAFE_PATH,
      LANG: "C",
      DVS_EVENT: "DISCONNECT",
      DVS_NODE: "2",
      DVS_INCARNATION: "5",
      DVS_VIEW_ID: "4",
      DVS_MEMBERS: "1,2",
      DVS_CHANGED: "3:1",
    });
  });
});
