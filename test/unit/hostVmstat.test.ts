import { describe, expect, it } from "vitest";
import { silentLogger } from "../../actors/logger.js";
import { commandsConfigSchema } from "../../daemon/host/command.js";
import { memoryFromMeminfo, type Vmstat } from "../../daemon/host/memory.js";
import { createHostHandlers } from "../../daemon/hostRequests.js";
import type { Rqst } from "../../protocol/messages.js";
import { systemClock } from "../../transport/clock.js";

const host = createHostHandlers({
  clock: systemClock,
  logger: silentLogger,
  commands: commandsConfigSchema.parse({}),
});

describe("VMSTAT", () => {
  it("reports memory, swap, cpu shares, load and uptime as numbers", async () => {
    const out = await host.VMSTAT({ v: 1, type: "VMSTAT", src: "test", dst: 1, seq: 1, params: {} } as Rqst);
    if ("error" in out) throw new Error(out.message);
    expect(out.rcode).toBe(0);
    const v = out.data as Vmstat;
    expect(v.memory?.total).toBeGreaterThan(0);
    expect(v.memory?.available).toBeGreaterThan(0);
    expect(v.memory?.used).toBe((v.memory?.total ?? 0) - (v.memory?.available ?? 0));
    expect(v.swap?.total).toBeGreaterThanOrEqual(0);
    expect(v.cpu?.cores).toBeGreaterThan(0);
    expect(v.cpu?.busy).toBeGreaterThanOrEqual(0);
    expect(v.cpu?.busy).toBeLessThanOrEqual(100);
    expect(Object.keys(v.load)).toEqual(["one", "five", "fifteen"]);
    expect(v.uptime).toBeGreaterThan(0);
    expect(v.procs.running).toBeGreaterThanOrEqual(1);
  });

  it("reads the same memory figures from /proc/meminfo text", () => {
    const meminfo = [
      "MemTotal:        1000 kB",
      "MemFree:          200 kB",
      "MemAvailable:     600 kB",
      "Buffers:           50 kB",
      "Cached:           300 kB",
      "SReclaimable:      20 kB",
      "SwapTotal:        400 kB",
      "SwapFree:         100 kB",
    ].join("\n");
    expect(memoryFromMeminfo(meminfo)).toEqual({
      memory: {
        total: 1_024_000,
        free: 204_800,
        used: 409_600,
        available: 614_400,
        buffers: 51_200,
        cached: 327_680,
      },
      swap: { total: 409_600, used: 307_200, free: 102_400 },
    });
    expect(memoryFromMeminfo(undefined)).toEqual({ memory: null, swap: null });
  });
});
