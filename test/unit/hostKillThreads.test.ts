// KILL against thread ids: kill(2) given a thread id signals its whole process,
// so a thread of the daemon or of a protected process is refused like the
// process itself.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { readdirSync } from "node:fs";
import { setTimeout as delay } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { ConfigError } from "../../daemon/errors.js";
import { PROTECTED_PIDS_ENV, protectedPidsFromEnv } from "../../daemon/hostRequests.js";
import { hostHandlers, hostRqst } from "../support/hostHandlers.js";

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
});

/** The thread ids of `pid` other than its main thread. */
function threadsOf(pid: number): number[] {
  return readdirSync(`/proc/${pid}/task`)
    .map(Number)
    .filter((tid) => tid !== pid);
}

/** A Node.js child (several threads: V8 and libuv) that stays up until killed. */
async function threadedChild(): Promise<{ child: ChildProcess; pid: number; threads: number[] }> {
  const child = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
  children.push(child);
  const pid = child.pid ?? 0;
  for (let i = 0; i < 100 && threadsOf(pid).length === 0; i++) await delay(20);
  return { child, pid, threads: threadsOf(pid) };
}

const alive = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;

describe("KILL and threads", () => {
  it("refuses a thread id of the daemon with EPERM, like the daemon's own pid", async () => {
    const threads = threadsOf(process.pid);
    expect(threads.length).toBeGreaterThan(0);
    // SIGCONT: were the refusal missing, the signal would reach this process harmlessly.
    for (const tid of threads.slice(0, 4)) {
      expect(await hostHandlers().KILL(hostRqst("KILL", { pid: tid, signal: "SIGCONT" }))).toMatchObject({
        error: "EPERM",
      });
    }
  });

  it("refuses a protected process and every thread of it, and the process lives on", async () => {
    const { child, pid, threads } = await threadedChild();
    expect(threads.length).toBeGreaterThan(0);
    const kill = hostHandlers({ protectedPids: [pid] }).KILL;
    expect(await kill(hostRqst("KILL", { pid, signal: "SIGKILL" }))).toMatchObject({ error: "EPERM" });
    for (const tid of threads) {
      expect(await kill(hostRqst("KILL", { pid: tid, signal: "SIGKILL" }))).toMatchObject({ error: "EPERM" });
    }
    await delay(50);
    expect(alive(child)).toBe(true);
  });

  it("refuses the threads of whichever pid is configured as the daemon's own", async () => {
    const { child, threads } = await threadedChild();
    const kill = hostHandlers({ selfPid: child.pid ?? 0 }).KILL;
    expect(await kill(hostRqst("KILL", { pid: threads[0] ?? 0, signal: "SIGKILL" }))).toMatchObject({
      error: "EPERM",
    });
    await delay(50);
    expect(alive(child)).toBe(true);
  });

  it("still signals an unprotected process through one of its thread ids", async () => {
    const { child, threads } = await threadedChild();
    const exited = once(child, "exit");
    expect(
      await hostHandlers().KILL(hostRqst("KILL", { pid: threads[0] ?? 0, signal: "SIGKILL" })),
    ).toMatchObject({ rcode: 0 });
    expect((await exited)[1]).toBe("SIGKILL");
  });

  it("reads the protected pids from DVS_PROTECTED_PIDS and refuses a malformed list", () => {
    expect(protectedPidsFromEnv({})).toEqual([]);
    expect(protectedPidsFromEnv({ [PROTECTED_PIDS_ENV]: "" })).toEqual([]);
    expect(protectedPidsFromEnv({ [PROTECTED_PIDS_ENV]: "4242, 17" })).toEqual([4242, 17]);
    for (const bad of ["42,x", "0", "-1", "1.5", "42,,43"]) {
      expect(() => protectedPidsFromEnv({ [PROTECTED_PIDS_ENV]: bad })).toThrow(ConfigError);
    }
  });
});
