import { describe, expect, it } from "vitest";
import { silentLogger } from "../../actors/logger.js";
import type { Outcome } from "../../actors/requestServer.js";
import { childEnvironment, SAFE_PATH } from "../../daemon/host/childEnvironment.js";
import {
  type CommandResult,
  type CommandsConfigInput,
  commandsConfigSchema,
} from "../../daemon/host/command.js";
import { createHostHandlers } from "../../daemon/hostRequests.js";
import type { Rqst } from "../../protocol/messages.js";
import { systemClock } from "../../transport/clock.js";

function command(config: CommandsConfigInput) {
  const run = createHostHandlers({
    clock: systemClock,
    logger: silentLogger,
    commands: commandsConfigSchema.parse(config),
  }).COMMAND;
  return (name: string, args?: string[]) =>
    run({
      v: 1,
      type: "COMMAND",
      src: "test",
      dst: 1,
      seq: 1,
      params: { command: name, ...(args ? { args } : {}) },
    } as Rqst);
}

function result(outcome: Outcome): CommandResult {
  if ("error" in outcome) throw new Error(`${outcome.error}: ${outcome.message}`);
  expect(outcome.rcode).toBe(0);
  return outcome.data as CommandResult;
}

const config: CommandsConfigInput = {
  allowed: {
    echo: { argv: ["/bin/echo"], allowArgs: true },
    hello: { argv: ["/bin/echo", "hello"] },
    nap: { argv: ["/bin/sleep", "30"], timeoutMs: 150 },
    count: { argv: ["/usr/bin/seq", "1", "100000"], maxOutputBytes: 1000 },
    fails: { argv: ["/bin/ls", "/no/such/dir/for/dvs"] },
    missing: { argv: ["/no/such/program"] },
  },
};

describe("COMMAND", () => {
  it("the config fills its defaults and refuses a relative program or an unknown key", () => {
    expect(commandsConfigSchema.parse({})).toEqual({ allowed: {}, killGraceMs: 2_000 });
    expect(commandsConfigSchema.parse({ allowed: { up: { argv: ["/usr/bin/uptime"] } } }).allowed.up).toEqual(
      {
        argv: ["/usr/bin/uptime"],
        allowArgs: false,
        timeoutMs: 10_000,
        maxOutputBytes: 65_536,
      },
    );
    expect(commandsConfigSchema.safeParse({ allowed: { up: { argv: ["uptime"] } } }).success).toBe(false);
    expect(commandsConfigSchema.safeParse({ allowed: { up: { argv: [] } } }).success).toBe(false);
    expect(commandsConfigSchema.safeParse({ allowed: { up: { argv: ["/x"], shell: true } } }).success).toBe(
      false,
    );
    expect(commandsConfigSchema.safeParse({ allowed: { "bad name": { argv: ["/x"] } } }).success).toBe(false);
  });

  it("runs an allowed command and reports its output and exit code with rcode 0", async () => {
    const r = result(await command(config)("hello"));
    expect(r).toMatchObject({
      command: "hello",
      argv: ["/bin/echo", "hello"],
      exitCode: 0,
      signal: null,
      timedOut: false,
      stdout: "hello\n",
      stderr: "",
      stdoutTruncated: false,
      stderrTruncated: false,
    });
    expect(r.durationMs).toBeGreaterThanOrEqual(0);
  });

  it("refuses a command that is not in the allow-list with EPERM", async () => {
    const run = command(config);
    expect(await run("rm", ["-rf", "/"])).toMatchObject({ error: "EPERM" });
    // Names of Object.prototype are not commands either.
    expect(await run("constructor")).toMatchObject({ error: "EPERM" });
    expect(await run("toString")).toMatchObject({ error: "EPERM" });
  });

  it("refuses arguments for a command that does not allow them with EINVAL", async () => {
    expect(await command(config)("hello", ["world"])).toMatchObject({ error: "EINVAL" });
  });

  it("passes shell metacharacters to the program literally: no shell runs", async () => {
    const args = ["$(id)", "; rm -rf /", "`id`", "|", "cat", "/etc/passwd", "&&", "'\"", "$HOME", "*"];
    const r = result(await command(config)("echo", args));
    expect(r.argv).toEqual(["/bin/echo", ...args]);
    expect(r.stdout).toBe(`${args.join(" ")}\n`);
  });

  it("kills a command that runs past its timeout and says it timed out", async () => {
    const r = result(await command(config)("nap"));
    expect(r).toMatchObject({ timedOut: true, exitCode: null, signal: "SIGTERM" });
    expect(r.durationMs).toBeGreaterThanOrEqual(140);
    expect(r.durationMs).toBeLessThan(2_000);
  });

  it("keeps only maxOutputBytes of output and flags the cut", async () => {
    const r = result(await command(config)("count"));
    expect(Buffer.byteLength(r.stdout)).toBe(1000);
    expect(r.stdout.startsWith("1\n2\n3\n")).toBe(true);
    expect(r).toMatchObject({ stdoutTruncated: true, stderrTruncated: false, exitCode: 0 });
  });

  it("reports a non-zero exit code and the command's stderr, still with rcode 0", async () => {
    const r = result(await command(config)("fails"));
    expect(r.exitCode).toBeGreaterThan(0);
    expect(r.stderr).toMatch(/no\/such\/dir/);
  });

  it("answers ENOENT when the configured program does not exist", async () => {
    expect(await command(config)("missing")).toMatchObject({ error: "ENOENT" });
  });

  it("gives a command a fixed PATH and LANG=C and none of the daemon's variables", () => {
    expect(childEnvironment()).toEqual({ PATH: SAFE_PATH, LANG: "C" });
  });
});
