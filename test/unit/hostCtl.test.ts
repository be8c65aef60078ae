import { describe, expect, it } from "vitest";
import {
  bytes,
  commandOutput,
  duration,
  endpointOf,
  hostTable,
  instant,
  NETSTAT_VIEW,
  PS_VIEW,
  percent,
  VMSTAT_VIEW,
} from "../../bin/dvsctl/host.js";
import type { Rply } from "../../protocol/messages.js";

const rply = (src: number, rcode: number, data: unknown): Rply => ({
  v: 1,
  type: "PS",
  src,
  dst: "me",
  seq: 1,
  rcode,
  count: Array.isArray(data) ? data.length : 1,
  data,
});

describe("dvsctl host tables", () => {
  it("shows sizes in binary units, percentages with one decimal and durations as clocks", () => {
    expect(bytes(512)).toBe("512 B");
    expect(bytes(1536)).toBe("1.5 KiB");
    expect(bytes(25_276_502_016)).toBe("23.5 GiB");
    expect(bytes(null)).toBeUndefined();
    expect(percent(3.96)).toBe("4.0%");
    expect(percent(null)).toBeUndefined();
    expect(duration(65)).toBe("01:05");
    expect(duration(6570)).toBe("01:49:30");
    expect(duration(3 * 86_400 + 4 * 3_600 + 5)).toBe("3d 04:00:05");
    expect(instant(1_700_000_000_000)).toBe("2023-11-14T22:13:20Z");
    expect(endpointOf("::1", 22)).toBe("[::1]:22");
    expect(endpointOf("0.0.0.0", 0)).toBe("0.0.0.0:*");
  });

  it("has a node column and one row per process, and notes a list cut at its limit", () => {
    const ps = (pid: number) => ({
      pid,
      ppid: 1,
      user: "root",
      state: "sleeping",
      name: "sh",
      command: "/bin/sh",
      cpu: 1.25,
      mem: 0.5,
      rss: 2048,
      vsz: 4096,
      started: 0,
    });
    const table = hostTable([rply(1, 70, [ps(10), ps(11)]), rply(2, 1, [ps(20)])], PS_VIEW);
    const lines = table.split("\n");
    expect(lines[0]).toMatch(
      /^node\s+pid\s+ppid\s+user\s+state\s+cpu%\s+mem%\s+rss\s+vsz\s+started\s+command$/,
    );
    expect(lines.slice(1, 4).map((l) => l.split(/\s+/).slice(0, 2))).toEqual([
      ["1", "10"],
      ["1", "11"],
      ["2", "20"],
    ]);
    expect(lines[1]).toContain("1.3%");
    expect(lines[1]).toContain("2.0 KiB");
    expect(lines[4]).toBe("node 1: 2 of 70 shown (raise --limit to see more)");
    expect(lines).toHaveLength(5);
  });

  it("shows a node that answered an error as one row with the reason", () => {
    const table = hostTable(
      [
        rply(1, 0, [
          {
            protocol: "tcp",
            localAddress: "127.0.0.1",
            localPort: 80,
            peerAddress: "0.0.0.0",
            peerPort: 0,
            state: "LISTEN",
          },
        ]),
        rply(2, -110, { error: "ETIMEDOUT", message: "node 2 did not answer in time" }),
      ],
      NETSTAT_VIEW,
    );
    const lines = table.split("\n");
    expect(lines[0]).toMatch(/error$/);
    expect(lines[1]).toMatch(/^1\s+tcp\s+127\.0\.0\.1:80\s+0\.0\.0\.0:\*\s+LISTEN/);
    expect(lines[2]).toMatch(/^2\s+ETIMEDOUT \(-110\): node 2 did not answer in time$/);
  });

  it("shows VMSTAT as one row per node", () => {
    const data = {
      memory: {
        total: 8 * 1024 ** 3,
        free: 1024 ** 3,
        used: 2 * 1024 ** 3,
        available: 6 * 1024 ** 3,
        buffers: 0,
        cached: 1024 ** 3,
      },
      swap: { total: 0, used: 0, free: 0 },
      cpu: { cores: 2, busy: 12.34, user: 10, system: 2.34, nice: 0, idle: 87.66, irq: 0, steal: 0 },
      load: { one: 0.5, five: 0.25, fifteen: 0.125 },
      procs: { running: 2, blocked: 0 },
      uptime: 90_061,
    };
    const [header, row] = hostTable([rply(3, 0, data)], VMSTAT_VIEW).split("\n");
    expect(header?.split(/\s{2,}/)).toEqual([
      "node",
      "mem total",
      "used",
      "free",
      "available",
      "buff/cache",
      "swap used",
      "swap total",
      "cpu%",
      "us%",
      "sy%",
      "id%",
      "load",
      "r/b",
      "uptime",
    ]);
    expect(row?.split(/\s{2,}/)).toEqual([
      "3",
      "8.0 GiB",
      "2.0 GiB",
      "1.0 GiB",
      "6.0 GiB",
      "1.0 GiB",
      "0 B",
      "0 B",
      "12.3%",
      "10.0%",
      "2.3%",
      "87.7%",
      "0.50 0.25 0.13",
      "2/0",
      "1d 01:01:01",
    ]);
  });

  it("prints each node's command output under a line with its exit status", () => {
    const out = commandOutput([
      rply(1, 0, {
        exitCode: 0,
        signal: null,
        timedOut: false,
        durationMs: 4,
        stdout: "up 3 days\n",
        stderr: "",
        stdoutTruncated: false,
        stderrTruncated: false,
      }),
      rply(2, 0, {
        exitCode: null,
        signal: "SIGTERM",
        timedOut: true,
        durationMs: 150,
        stdout: "",
        stderr: "oops\n",
        stdoutTruncated: true,
        stderrTruncated: false,
      }),
      rply(3, -1, { error: "EPERM", message: 'command "x" is not in this node\'s allow-list' }),
    ]);
    expect(out.split("\n")).toEqual([
      "--- node 1: exit 0 in 4 ms",
      "up 3 days",
      "--- node 2: timed out, killed by SIGTERM in 150 ms",
      "(stdout truncated at the node's maxOutputBytes)",
      "stderr:",
      "oops",
      `--- node 3: EPERM (-1): command "x" is not in this node's allow-list`,
    ]);
  });
});
