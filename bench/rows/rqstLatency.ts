// SPEC 10: a RQST/RPLY to one node has p50 ≤ 1.2× a raw nats.js echo on the
// same server in the same run. Sequential requests, raw and ours alternating
// in blocks after a warm-up of each.
import { ECHO_CLIENT_NOTE, startEchoPair } from "../echo.js";
import { interleaved, sequential } from "../load.js";
import type { BenchRow } from "../row.js";
import { ratio, summarize } from "../stats.js";

const FULL = { warmup: 1_000, blocks: 10, perBlock: 300 };
const QUICK = { warmup: 50, blocks: 2, perBlock: 50 };

export const rqstLatency: BenchRow = {
  name: "rqst-latency",
  title: "Sequential request/reply latency: raw nats.js echo vs DvsClient → RequestServer (GETDVSINFO)",
  async run(ctx) {
    const plan = ctx.quick ? QUICK : FULL;
    const pair = await startEchoPair(ctx);
    ctx.progress(`warm-up: ${plan.warmup} requests each`);
    await ctx.within(60_000, "latency warm-up (raw)", sequential(pair.raw, plan.warmup, ctx.signal));
    await ctx.within(60_000, "latency warm-up (ours)", sequential(pair.ours, plan.warmup, ctx.signal));
    ctx.progress(`timing: ${plan.blocks} blocks × ${plan.perBlock} requests each, alternating`);
    const blocks = await interleaved(
      ctx,
      { blocks: plan.blocks, blockTimeoutMs: 60_000, label: "latency" },
      {
        raw: () => sequential(pair.raw, plan.perBlock, ctx.signal),
        ours: () => sequential(pair.ours, plan.perBlock, ctx.signal),
      },
    );
    const raw = summarize(blocks.raw.flat());
    const ours = summarize(blocks.ours.flat());
    return {
      measurements: [
        { name: "raw.p50", value: raw.p50, unit: "us" },
        { name: "raw.p99", value: raw.p99, unit: "us" },
        { name: "ours.p50", value: ours.p50, unit: "us" },
        { name: "ours.p99", value: ours.p99, unit: "us" },
        { name: "raw.mean", value: raw.mean, unit: "us" },
        { name: "ours.mean", value: ours.mean, unit: "us" },
        { name: "raw.requests", value: raw.count, unit: "requests" },
        { name: "ours.requests", value: ours.count, unit: "requests" },
      ],
      ratios: [
        {
          name: "p50",
          of: "ours.p50 / raw.p50",
          value: ratio(ours.p50, raw.p50),
          target: { op: "<=", value: 1.2 },
        },
        { name: "p99", of: "ours.p99 / raw.p99", value: ratio(ours.p99, raw.p99) },
      ],
      notes: [
        ECHO_CLIENT_NOTE,
        `${plan.warmup} warm-up requests each, then ${plan.blocks} alternating blocks of ${plan.perBlock}`,
        `RQST ${pair.bytes.rqst} B (raw echoes it back), RPLY ${pair.bytes.rply} B`,
      ],
    };
  },
};
