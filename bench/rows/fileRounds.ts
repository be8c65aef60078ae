// How the file rows time their two sides: a warm-up of each, then blocks of
// sequential operations that alternate between ours and raw (bench/load.ts),
// so machine noise lands on both alike. Each side is called with its own
// running count, which picks the file of that operation.
import { interleaved, sequential } from "../load.js";
import type { BenchContext, Measurement, Ratio } from "../row.js";
import { ratio, summarize } from "../stats.js";

export interface Plan {
  /** Operations of each side before timing starts (not reported). */
  readonly warmup: number;
  readonly blocks: number;
  /** Sequential operations of each side per block. */
  readonly perBlock: number;
}

export interface Sides {
  /** Names the blocks in progress lines and timeouts. */
  readonly label: string;
  readonly ours: (i: number) => Promise<void>;
  readonly raw: (i: number) => Promise<void>;
}

/** Latencies in milliseconds of each side's timed operations (warm-up excluded). */
export async function fileRounds(
  ctx: BenchContext,
  plan: Plan,
  sides: Sides,
): Promise<{ ours: number[]; raw: number[] }> {
  const counted = (op: (i: number) => Promise<void>) => {
    let i = 0;
    return () => op(i++);
  };
  const ours = counted(sides.ours);
  const raw = counted(sides.raw);
  ctx.progress(`warm-up: ${plan.warmup} of each`);
  await ctx.within(60_000, `${sides.label} warm-up (raw)`, sequential(raw, plan.warmup, ctx.signal));
  await ctx.within(60_000, `${sides.label} warm-up (ours)`, sequential(ours, plan.warmup, ctx.signal));
  ctx.progress(`timing: ${plan.blocks} blocks × ${plan.perBlock} of each, alternating`);
  const blocks = await interleaved(
    ctx,
    { blocks: plan.blocks, blockTimeoutMs: 60_000, label: sides.label },
    {
      raw: () => sequential(raw, plan.perBlock, ctx.signal),
      ours: () => sequential(ours, plan.perBlock, ctx.signal),
    },
  );
  // sequential() times in µs; these operations take milliseconds.
  const toMs = (samples: number[][]) => samples.flat().map((us) => us / 1_000);
  return { ours: toMs(blocks.ours), raw: toMs(blocks.raw) };
}

/** The two sizes the file rows measure, with their sample plans. */
export const FILE_SIZES = {
  "1k": {
    size: 1024,
    full: { warmup: 20, blocks: 4, perBlock: 50 },
    quick: { warmup: 2, blocks: 2, perBlock: 5 },
  },
  /** 1,000,000 B rather than 1 MiB: a JetStream message must fit under nats.conf's max_payload (1 MiB) with its headers. */
  "1m": {
    size: 1_000_000,
    full: { warmup: 4, blocks: 4, perBlock: 10 },
    quick: { warmup: 1, blocks: 2, perBlock: 2 },
  },
} as const;

/**
 * The latencies of both sides (p50, p90, max), how many calls each made, and
 * their p50 and p90 ratios; `counts` names the calls, `p50Of` says what the p50 ratio is.
 */
export function latencyReport(
  ours: readonly number[],
  raw: readonly number[],
  counts: { readonly ours: string; readonly raw: string },
  p50Of: string,
): { measurements: Measurement[]; ratios: Ratio[] } {
  const os = summarize(ours);
  const rs = summarize(raw);
  return {
    measurements: [
      { name: "ours.p50", value: os.p50, unit: "ms" },
      { name: "ours.p90", value: os.p90, unit: "ms" },
      { name: "ours.max", value: os.max, unit: "ms" },
      { name: "raw.p50", value: rs.p50, unit: "ms" },
      { name: "raw.p90", value: rs.p90, unit: "ms" },
      { name: "raw.max", value: rs.max, unit: "ms" },
      { name: `ours.${counts.ours}`, value: os.count, unit: "requests" },
      { name: `raw.${counts.raw}`, value: rs.count, unit: "requests" },
    ],
    ratios: [
      { name: "p50", of: p50Of, value: ratio(os.p50, rs.p50) },
      { name: "p90", of: "ours.p90 / raw.p90", value: ratio(os.p90, rs.p90) },
    ],
  };
}
