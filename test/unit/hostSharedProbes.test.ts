// Host probes shared between requests: a flood of PIDSTAT or PS requests in
// flight costs one walk of /proc, and a result is reused only for a short
// window on the injected clock.
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { PidstatEntry, PsEntry } from "../../daemon/host/ps.js";
import { PROBE_FRESH_MS, type SharedProbes, sharedProbes } from "../../daemon/host/sharedProbes.js";
import { type Clock, systemClock } from "../../transport/clock.js";
import { hostHandlers, hostRqst, succeeded } from "../support/hostHandlers.js";

/** A clock the test moves by hand; timers are the system's (no probe here arms one on a fixture /proc). */
function manualClock(start = 1_000_000): Clock & { advance(ms: number): void } {
  let now = start;
  return {
    now: () => now,
    setTimeout: systemClock.setTimeout,
    clearTimeout: systemClock.clearTimeout,
    advance(ms) {
      now += ms;
    },
  };
}

/** Shared probes that count how many times each probe's work actually ran. */
function countingProbes(clock: Clock): SharedProbes & { runs: Map<string, number> } {
  const inner = sharedProbes(clock);
  const runs = new Map<string, number>();
  return {
    runs,
    run(key, work) {
      return inner.run(key, () => {
        const name = key.split(":")[0] ?? key;
        runs.set(name, (runs.get(name) ?? 0) + 1);
        return work();
      });
    },
  };
}

/** A /proc with `count` processes 100, 101, … */
function fakeProc(count: number): string {
  const root = mkdtempSync(join(tmpdir(), "dvs-proc-"));
  for (let i = 0; i < count; i++) {
    const pid = 100 + i;
    mkdirSync(join(root, String(pid)));
    writeFileSync(
      join(root, String(pid), "stat"),
      `${pid} (worker) S 1 ${pid} ${pid} 0 -1 0 10 0 0 0 ${i} 1 0 0 20 0 1 0 500 1048576 10 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0`,
    );
    writeFileSync(join(root, String(pid), "status"), `Uid:\t0\t0\t0\t0\nVmRSS:\t${(i + 1) * 1024} kB\n`);
    writeFileSync(join(root, String(pid), "cmdline"), `/usr/bin/worker\0--n\0${i}\0`);
  }
  writeFileSync(join(root, "stat"), "btime 1700000000\n");
  writeFileSync(join(root, "uptime"), "1000.00 1900.00\n");
  writeFileSync(join(root, "meminfo"), "MemTotal:       1024000 kB\n");
  return root;
}

const deferred = <T>() => {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
};

describe("shared host probes", () => {
  it("sixteen concurrent PIDSTATs of every process walk /proc once and all get the same table", async () => {
    const clock = manualClock();
    const probes = countingProbes(clock);
    const host = hostHandlers({ clock, probes, procRoot: fakeProc(30) });
    const replies = await Promise.all(
      Array.from({ length: 16 }, (_, i) => host.PIDSTAT(hostRqst("PIDSTAT", { limit: 5 + i, sort: "mem" }))),
    );
    expect(probes.runs.get("proc.table")).toBe(1);
    for (const [i, reply] of replies.entries()) {
      const out = succeeded<PidstatEntry[]>(reply);
      expect(out.rcode).toBe(30);
      expect(out.data).toHaveLength(5 + i);
      expect(out.data[0]).toMatchObject({ pid: 129, rss: 30 * 1024 * 1024 });
    }
  });

  it("sixteen concurrent PS requests build the process table once", async () => {
    const clock = manualClock();
    const probes = countingProbes(clock);
    const host = hostHandlers({ clock, probes, procRoot: fakeProc(12) });
    const replies = await Promise.all(
      Array.from({ length: 16 }, () => host.PS(hostRqst("PS", { sort: "pid" }))),
    );
    expect(probes.runs.get("ps.table")).toBe(1);
    expect(probes.runs.get("proc.table")).toBe(1);
    for (const reply of replies) {
      const out = succeeded<PsEntry[]>(reply);
      expect(out.data.map((p) => p.pid)).toEqual(Array.from({ length: 12 }, (_, i) => 100 + i));
      expect(out.data[3]?.command).toBe("/usr/bin/worker --n 3");
    }
  });

  it("a PIDSTAT walk is reused within the freshness window on the injected clock and redone after it", async () => {
    const clock = manualClock();
    const probes = countingProbes(clock);
    const host = hostHandlers({ clock, probes, procRoot: fakeProc(3) });
    const pidstat = () => host.PIDSTAT(hostRqst("PIDSTAT"));
    await pidstat();
    clock.advance(PROBE_FRESH_MS - 1);
    await pidstat();
    expect(probes.runs.get("proc.table")).toBe(1);
    clock.advance(1);
    await pidstat();
    expect(probes.runs.get("proc.table")).toBe(2);
  });

  it("a PIDSTAT of one pid reads only that process, not the shared walk", async () => {
    const clock = manualClock();
    const probes = countingProbes(clock);
    const host = hostHandlers({ clock, probes, procRoot: fakeProc(3) });
    expect(
      succeeded<PidstatEntry[]>(await host.PIDSTAT(hostRqst("PIDSTAT", { pid: 101 }))).data,
    ).toHaveLength(1);
    expect(probes.runs.get("proc.table")).toBeUndefined();
  });

  it("a probe that runs longer than the freshness window is still shared by every caller that arrives meanwhile", async () => {
    const clock = manualClock();
    const probes = sharedProbes(clock, 250);
    const slow = deferred<number>();
    let runs = 0;
    const work = () => {
      runs++;
      return slow.promise;
    };
    const first = probes.run("walk", work);
    clock.advance(5_000);
    const second = probes.run("walk", work);
    slow.resolve(7);
    expect(await Promise.all([first, second])).toEqual([7, 7]);
    await Promise.resolve();
    clock.advance(249);
    expect(await probes.run("walk", async () => -1)).toBe(7);
    clock.advance(1);
    expect(await probes.run("walk", async () => 8)).toBe(8);
    expect(runs).toBe(1);
  });

  it("a failed probe is not kept: the next caller probes again", async () => {
    const probes = sharedProbes(manualClock());
    await expect(probes.run("walk", async () => Promise.reject(new Error("EIO")))).rejects.toThrow("EIO");
    await Promise.resolve();
    expect(await probes.run("walk", async () => 3)).toBe(3);
  });
});
