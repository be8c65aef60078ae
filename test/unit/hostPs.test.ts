import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseProcIo, parseProcStat, parseProcStatus, parseSystemStat } from "../../daemon/host/procfs.js";
import type { PidstatEntry, PsEntry } from "../../daemon/host/ps.js";
import { hostHandlers as handlers, succeeded as ok, hostRqst as rqst } from "../support/hostHandlers.js";

const STAT =
  "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 1500 0 7 0 250 130 0 0 20 0 3 0 12345 104857600 2560 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0";
const STATUS = [
  "Name:\tmy (odd) name",
  "State:\tS (sleeping)",
  "PPid:\t1",
  "Uid:\t1000\t1000\t1000\t1000",
  "VmRSS:\t   10240 kB",
  "Threads:\t3",
  "voluntary_ctxt_switches:\t42",
  "nonvoluntary_ctxt_switches:\t7",
].join("\n");
const IO =
  "rchar: 100\nwchar: 200\nsyscr: 3\nsyscw: 4\nread_bytes: 4096\nwrite_bytes: 8192\ncancelled_write_bytes: 0\n";

/** A /proc with one process (4242) whose io is unreadable, booted at 1 700 000 000 s. */
function fakeProc(): string {
  const root = mkdtempSync(join(tmpdir(), "dvs-proc-"));
  mkdirSync(join(root, "4242"));
  writeFileSync(join(root, "4242", "stat"), STAT);
  writeFileSync(join(root, "4242", "status"), STATUS);
  writeFileSync(join(root, "4242", "cmdline"), "/usr/bin/odd\0--flag\0value\0");
  writeFileSync(join(root, "stat"), "cpu  1 2 3 4\nbtime 1700000000\nprocs_running 2\nprocs_blocked 1\n");
  writeFileSync(join(root, "uptime"), "1000.00 1900.00\n");
  writeFileSync(join(root, "meminfo"), "MemTotal:       1024000 kB\nMemFree:         512000 kB\n");
  return root;
}

describe("/proc parsers", () => {
  it("a stat line whose command name holds spaces and parentheses parses by the last parenthesis", () => {
    expect(parseProcStat(STAT)).toEqual({
      pid: 4242,
      comm: "my (odd) name",
      state: "S",
      ppid: 1,
      minorFaults: 1500,
      majorFaults: 7,
      utime: 250,
      stime: 130,
      threads: 3,
      starttime: 12345,
      vsize: 104_857_600,
    });
    expect(parseProcStat("garbage")).toBeUndefined();
  });

  it("status gives the real uid, the resident size in bytes and the context switches", () => {
    expect(parseProcStatus(STATUS)).toEqual({
      uid: 1000,
      rss: 10_240 * 1024,
      voluntaryCtxSwitches: 42,
      involuntaryCtxSwitches: 7,
    });
    expect(parseProcStatus("Name:\tkthreadd\nUid:\t0\t0\t0\t0\n").rss).toBeNull();
  });

  it("an io file that could not be read gives null fields, not an error", () => {
    expect(parseProcIo(IO)).toEqual({
      readChars: 100,
      writeChars: 200,
      readSyscalls: 3,
      writeSyscalls: 4,
      readBytes: 4096,
      writeBytes: 8192,
      cancelledWriteBytes: 0,
    });
    expect(Object.values(parseProcIo(undefined)).every((v) => v === null)).toBe(true);
  });

  it("/proc/stat gives the boot time in ms and the running and blocked task counts", () => {
    expect(parseSystemStat("cpu 1 2\nbtime 1700000000\nprocs_running 4\nprocs_blocked 0\n")).toEqual({
      bootedAt: 1_700_000_000_000,
      running: 4,
      blocked: 0,
    });
  });
});

describe("PS", () => {
  it("lists this very process with its pid, parent, memory and command", async () => {
    const out = ok<PsEntry[]>(await handlers().PS(rqst("PS", { limit: 2000, sort: "pid" })));
    const me = out.data.find((p) => p.pid === process.pid);
    expect(me).toMatchObject({ ppid: process.ppid });
    expect(me?.rss).toBeGreaterThan(0);
    expect(me?.vsz).toBeGreaterThan(0);
    expect(me?.command).toMatch(/node|vitest/);
    expect(out.rcode).toBeGreaterThanOrEqual(out.data.length);
  });

  it("cuts the list at the limit and says in rcode how many processes there were", async () => {
    const out = ok<PsEntry[]>(await handlers().PS(rqst("PS", { limit: 2, sort: "pid" })));
    expect(out.data).toHaveLength(2);
    expect(out.rcode).toBeGreaterThan(2);
    expect(out.data[0]?.pid).toBeLessThan(out.data[1]?.pid ?? 0);
  });

  it("sorts by memory with the largest resident share first", async () => {
    const out = ok<PsEntry[]>(await handlers().PS(rqst("PS", { limit: 20, sort: "mem" })));
    const mems = out.data.map((p) => p.mem ?? -1);
    expect(mems).toEqual([...mems].sort((a, b) => b - a));
  });

  it("builds the same columns from /proc alone when ps gives nothing", async () => {
    const out = ok<PsEntry[]>(await handlers({ procRoot: fakeProc() }).PS(rqst("PS")));
    expect(out.data).toEqual([
      {
        pid: 4242,
        ppid: 1,
        user: expect.any(String),
        state: "sleeping",
        name: "my (odd) name",
        command: "/usr/bin/odd --flag value",
        cpu: expect.any(Number),
        mem: 1,
        rss: 10_240 * 1024,
        vsz: 104_857_600,
        started: 1_700_000_000_000 + 123_450,
      },
    ]);
  });
});

describe("PIDSTAT", () => {
  it("reports this process's cpu time, memory and readable io", async () => {
    const out = ok<PidstatEntry[]>(await handlers().PIDSTAT(rqst("PIDSTAT", { pid: process.pid })));
    expect(out.rcode).toBe(1);
    const [me] = out.data;
    expect(me).toMatchObject({ pid: process.pid, ppid: process.ppid, uid: process.getuid?.() });
    expect(me?.cpuUser).toBeGreaterThan(0);
    expect(me?.rss).toBeGreaterThan(0);
    expect(me?.threads).toBeGreaterThan(0);
    expect(me?.readChars).toBeGreaterThan(0);
  });

  it("answers ENOENT for a pid that does not exist", async () => {
    const out = await handlers({ procRoot: fakeProc() }).PIDSTAT(rqst("PIDSTAT", { pid: 4243 }));
    expect(out).toMatchObject({ error: "ENOENT" });
  });

  it("gives null io fields for a process whose io file is unreadable", async () => {
    const out = ok<PidstatEntry[]>(
      await handlers({ procRoot: fakeProc() }).PIDSTAT(rqst("PIDSTAT", { pid: 4242 })),
    );
    expect(out.data[0]).toMatchObject({
      pid: 4242,
      name: "my (odd) name",
      state: "sleeping",
      uid: 1000,
      threads: 3,
      cpu: null,
      cpuUser: 2.5,
      cpuSystem: 1.3,
      rss: 10_240 * 1024,
      mem: 1,
      minorFaults: 1500,
      majorFaults: 7,
      voluntaryCtxSwitches: 42,
      involuntaryCtxSwitches: 7,
      readBytes: null,
      writeBytes: null,
      readChars: null,
      started: 1_700_000_123_450,
    });
  });

  it("without a pid lists every process, cut at the limit", async () => {
    const out = ok<PidstatEntry[]>(await handlers().PIDSTAT(rqst("PIDSTAT", { limit: 3 })));
    expect(out.data).toHaveLength(3);
    expect(out.rcode).toBeGreaterThan(3);
  });
});
