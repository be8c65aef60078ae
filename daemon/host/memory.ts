// VMSTAT: one snapshot of the host's memory, swap, CPU use, load and uptime,
// the figures vmstat and free print, as numbers (bytes, percent, seconds).
import { cpus, loadavg, uptime } from "node:os";
import { join } from "node:path";
import type * as si from "systeminformation";
import { type HostContext, isLiveProc } from "./context.js";
import { PROBE_DEADLINE_MS, probe, probedValue } from "./deadline.js";
import { readText } from "./hostFiles.js";
import { round } from "./listing.js";
import { parseKeyValues, parseSystemStat } from "./procfs.js";
import { shared } from "./sharedProbes.js";
import { systemInformation } from "./systemInfo.js";

/** VMSTAT's reply data. Bytes, percent and seconds; a figure the host would not give is null. */
export interface Vmstat {
  readonly memory: {
    readonly total: number;
    readonly free: number;
    /** total − available: what processes hold and the kernel cannot take back (as free(1) ≥ 4). */
    readonly used: number;
    /** Estimate of what new work can use without swapping (MemAvailable). */
    readonly available: number;
    readonly buffers: number;
    /** Page cache plus reclaimable slab. */
    readonly cached: number;
  } | null;
  readonly swap: { readonly total: number; readonly used: number; readonly free: number } | null;
  /**
   * Share of all cores' time, in percent, over the interval since the previous
   * VMSTAT of this daemon (at least 0.2 s; the first VMSTAT samples 0.5 s).
   */
  readonly cpu: {
    readonly cores: number;
    readonly busy: number;
    readonly user: number;
    readonly system: number;
    readonly nice: number;
    readonly idle: number;
    readonly irq: number;
    readonly steal: number;
  } | null;
  /** Run-queue averages over 1, 5 and 15 minutes (not divided by cores). */
  readonly load: { readonly one: number; readonly five: number; readonly fifteen: number };
  /** Tasks runnable now and blocked on I/O (vmstat's r and b). */
  readonly procs: { readonly running: number | null; readonly blocked: number | null };
  /** Seconds since boot. */
  readonly uptime: number;
}

export async function vmstat(ctx: HostContext): Promise<Vmstat> {
  const live = isLiveProc(ctx);
  const [mem, load, stat, meminfo] = await Promise.all([
    live
      ? probe(ctx.clock, PROBE_DEADLINE_MS, () =>
          shared(ctx, "si.mem", async () => (await systemInformation()).mem()),
        ).then(probedValue)
      : undefined,
    live
      ? probe(ctx.clock, PROBE_DEADLINE_MS, () =>
          shared(ctx, "si.currentLoad", async () => (await systemInformation()).currentLoad()),
        ).then(probedValue)
      : undefined,
    readText(join(ctx.procRoot, "stat")),
    readText(join(ctx.procRoot, "meminfo")),
  ]);
  const [one, five, fifteen] = loadavg();
  const procs = stat === undefined ? undefined : parseSystemStat(stat);
  return {
    ...(mem ? memoryFromSi(mem) : memoryFromMeminfo(meminfo)),
    cpu: load
      ? {
          cores: load.cpus.length || cpus().length,
          busy: round(load.currentLoad),
          user: round(load.currentLoadUser),
          system: round(load.currentLoadSystem),
          nice: round(load.currentLoadNice),
          idle: round(load.currentLoadIdle),
          irq: round(load.currentLoadIrq),
          steal: round(load.currentLoadSteal),
        }
      : null,
    load: { one: round(one ?? 0), five: round(five ?? 0), fifteen: round(fifteen ?? 0) },
    procs: { running: procs?.running ?? null, blocked: procs?.blocked ?? null },
    uptime: Math.round(uptime()),
  };
}

function memoryFromSi(m: si.Systeminformation.MemData): Pick<Vmstat, "memory" | "swap"> {
  return {
    memory: {
      total: m.total,
      free: m.free,
      used: m.total - m.available,
      available: m.available,
      buffers: m.buffers,
      // si.mem's `cached` is Cached alone; free(1)'s buff/cache adds SReclaimable, and so do we.
      cached: m.cached + m.reclaimable,
    },
    swap: { total: m.swaptotal, used: m.swapused, free: m.swapfree },
  };
}

/** The same figures from a /proc/meminfo text (fixtures, or where si gives nothing). */
export function memoryFromMeminfo(text: string | undefined): Pick<Vmstat, "memory" | "swap"> {
  if (text === undefined) return { memory: null, swap: null };
  const kv = parseKeyValues(text);
  const kib = (k: string) => {
    const n = Number(kv.get(k)?.split(/\s+/)[0]);
    return Number.isFinite(n) ? n * 1024 : 0;
  };
  const total = kib("MemTotal");
  const free = kib("MemFree");
  const available = kv.has("MemAvailable") ? kib("MemAvailable") : free;
  const swapTotal = kib("SwapTotal");
  const swapFree = kib("SwapFree");
  return {
    memory: {
      total,
      free,
      used: total - available,
      available,
      buffers: kib("Buffers"),
      cached: kib("Cached") + kib("SReclaimable"),
    },
    swap: { total: swapTotal, used: swapTotal - swapFree, free: swapFree },
  };
}
