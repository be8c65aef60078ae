// SPEC 10: pipelined RQST/RPLY throughput to one node is ≥ 0.7× a raw nats.js
// echo on the same server in the same run. 64 requests in flight, raw and ours
// alternating in blocks after a warm-up of each.
import { ECHO_CLIENT_NOTE, startEchoPair } from "../echo.js";
import { interleaved, pipelined, type Throughput } from "../load.js";
import type { BenchRow } from "../row.js";
import { ratio } from "../stats.js";

const IN_FLIGHT = 64;
const FULL = { warmup: 2_000, blocks: 10, perBlock: 2_500 };
const QUICK = { warmup: 200, blocks: 2, perBlock: 250 };

export const rqstThroughput: BenchRow = {
  name: "rqst-throughput",
  title: `Pipelined request/reply throughput, ${IN_FLIGHT} in flight: raw nats.js echo vs DvsClient → RequestServer`,
  async run(ctx) {
    const plan = ctx.quick ? QUICK : FULL;
    const pair = await startEchoPair(ctx);
    ctx.progress(`warm-up: ${plan.warmup} requests each`);
    await ctx.within(
      60_000,
      "throughput warm-up (raw)",
      pipelined(pair.raw, plan.warmup, IN_FLIGHT, ctx.signal),
    );
    await ctx.within(
      60_000,
      "throughput warm-up (ours)",
      pipelined(pair.ours, plan.warmup, IN_FLIGHT, ctx.signal),
    );
    ctx.progress(`timing: ${plan.blocks} blocks × ${plan.perBlock} requests each, alternating`);
    const blocks = await interleaved(
      ctx,
      { blocks: plan.blocks, blockTimeoutMs: 60_000, label: "throughput" },
      {
        raw: () => pipelined(pair.raw, plan.perBlock, IN_FLIGHT, ctx.signal),
        ours: () => pipelined(pair.ours, plan.perBlock, IN_FLIGHT, ctx.signal),
      },
    );
    const raw = total(blocks.raw);
    const ours = total(blocks.ours);
    const rawRate = raw.requests / raw.seconds;
    const oursRate = ours.requests / ours.seconds;
    return {
      measurements: [
        { name: "raw.rate", value: rawRate, unit: "req/s" },
        { name: "ours.rate", value: oursRate, unit: "req/s" },
        { name: "raw.requests", value: raw.requests, unit: "requests" },
        { name: "ours.requests", value: ours.requests, unit: "requests" },
        { name: "in-flight", value: IN_FLIGHT, unit: "requests" },
      ],
      ratios: [
        {
          name: "throughput",
          of: "ours.rate / raw.rate",
          value: ratio(oursRate, rawRate),
          target: { op: ">=", value: 0.7 },
        },
      ],
      notes: [
        ECHO_CLIENT_NOTE,
        `${plan.warmup} warm-up requests each, then ${plan.blocks} alternating blocks of ${plan.perBlock}`,
        `rate = all timed requests / time spent in their blocks`,
      ],
    };
  },
};

function total(blocks: readonly Throughput[]): Throughput {
  return blocks.reduce(
    (sum, b) => ({ requests: sum.requests + b.requests, seconds: sum.seconds + b.seconds }),
    {
      requests: 0,
      seconds: 0,
    },
  );
}
