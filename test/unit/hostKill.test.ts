import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { afterEach, describe, expect, it } from "vitest";
import { silentLogger } from "../../actors/logger.js";
import { commandsConfigSchema } from "../../daemon/host/command.js";
import { KILL_SIGNALS, killSignal } from "../../daemon/host/ps.js";
import { createHostHandlers } from "../../daemon/hostRequests.js";
import type { Rqst } from "../../protocol/messages.js";
import { systemClock } from "../../transport/clock.js";

const kill = createHostHandlers({
  clock: systemClock,
  logger: silentLogger,
  commands: commandsConfigSchema.parse({}),
}).KILL;

const rqst = (params: { pid: number; signal?: string }) =>
  ({ v: 1, type: "KILL", src: "test", dst: 1, seq: 1, params }) as Rqst;

const children: ChildProcess[] = [];
function sleeper(): ChildProcess {
  const child = spawn("sleep", ["30"], { stdio: "ignore" });
  children.push(child);
  return child;
}

afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
});

describe("KILL", () => {
  it("never signals pid 1 or the daemon itself (EPERM)", async () => {
    expect(await kill(rqst({ pid: 1 }))).toMatchObject({ error: "EPERM" });
    expect(await kill(rqst({ pid: process.pid, signal: "SIGKILL" }))).toMatchObject({ error: "EPERM" });
  });

  it("refuses whichever pid is configured as the daemon's own", async () => {
    const child = sleeper();
    const guarded = createHostHandlers({
      clock: systemClock,
      logger: silentLogger,
      commands: commandsConfigSchema.parse({}),
      selfPid: child.pid ?? 0,
    }).KILL;
    expect(await guarded(rqst({ pid: child.pid ?? 0 }))).toMatchObject({ error: "EPERM" });
  });

  it("sends SIGTERM by default and the child dies of it", async () => {
    const child = sleeper();
    const exited = once(child, "exit");
    expect(await kill(rqst({ pid: child.pid ?? 0 }))).toEqual({
      rcode: 0,
      data: { pid: child.pid, signal: "SIGTERM" },
    });
    const [code, signal] = await exited;
    expect({ code, signal }).toEqual({ code: null, signal: "SIGTERM" });
  });

  it("sends the named signal, with or without the SIG prefix and in any case", async () => {
    const child = sleeper();
    const exited = once(child, "exit");
    expect(await kill(rqst({ pid: child.pid ?? 0, signal: "kill" }))).toMatchObject({
      data: { signal: "SIGKILL" },
    });
    expect((await exited)[1]).toBe("SIGKILL");
  });

  it("answers ENOENT for a process that has exited", async () => {
    const child = spawn("true", { stdio: "ignore" });
    await once(child, "exit");
    expect(await kill(rqst({ pid: child.pid ?? 0 }))).toMatchObject({ error: "ENOENT" });
  });

  it("refuses a signal outside the allow-list with EINVAL and signals nothing", async () => {
    const child = sleeper();
    for (const signal of ["SIGSEGV", "9", "SIGTERM; rm -rf /", ""]) {
      expect(await kill(rqst({ pid: child.pid ?? 0, signal }))).toMatchObject({ error: "EINVAL" });
    }
    expect(child.exitCode).toBeNull();
    expect(child.signalCode).toBeNull();
  });

  it("knows exactly the nine signals of the allow-list", () => {
    expect(KILL_SIGNALS).toHaveLength(9);
    expect(killSignal(undefined)).toBe("SIGTERM");
    expect(killSignal("usr1")).toBe("SIGUSR1");
  });
});
