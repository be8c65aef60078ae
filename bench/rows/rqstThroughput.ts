// SPEC 10: pipelined RQST/RPLY throughput to one node is ≥ 0.7× a raw nats.js
// echo on the same server in the same run. A `dvsd run` process against an
// echo process (bench/nodeEcho.ts), 64 requests in flight, raw and ours
// alternating in blocks after a warm-up of each; each side's rate is the
// median of its blocks' rates.
import { DEFAULT_BUDGETS } from "../../actors/requestBudget.js";
import { sleep } from "../context.js";
import { interleaved, pipelined, type Throughput } from "../load.js";
import { startNodeEchoPair } from "../nodeEcho.js";
import type { BenchRow } from "../row.js";
import { median, ratio } from "../stats.js";

const IN_FLIGHT = 64;
// The node's admission budget is left in force (an admin may send 2,000 requests/s
// on average, 4,000 at once): every block is smaller than the burst and follows a
// pause in which the bucket earns back a block's worth, so no request is refused with EAGAIN.
const ADMIN = DEFAULT_BUDGETS.admin;
const PER_BLOCK = 2_000;
const FULL = {
  warmup: 2_000,
  blocks: 10,
  perBlock: PER_BLOCK,
  pauseMs: Math.ceil((PER_BLOCK / ADMIN.ratePerSecond) * 1_000),
};
const QUICK = { warmup: 200, blocks: 2, perBlock: 250, pauseMs: 0 };

export const rqstThroughput: BenchRow = {
  name: "rqst-throughput",
  title: `Pipelined request/reply throughput, ${IN_FLIGHT} in flight: nats.js echo process vs a \`dvsd run\` process`,
  async run(ctx) {
    const plan = ctx.quick ? QUICK : FULL;
    const pair = await startNodeEchoPair(ctx, "bench-rqst-throughput");
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
    // Both warm-ups of the node together would empty the admission budget's burst.
    if (plan.pauseMs > 0) await sleep(plan.pauseMs, ctx.signal);
    await ctx.within(
      60_000,
      "throughput warm-up (node)",
      pipelined(pair.bare, plan.warmup, IN_FLIGHT, ctx.signal),
    );
    ctx.progress(`timing: ${plan.blocks} blocks × ${plan.perBlock} requests each, alternating`);
    const block = async (send: () => Promise<void>) => {
      // Before every side alike, so each starts its block from the same idle machine.
      if (plan.pauseMs > 0) await sleep(plan.pauseMs, ctx.signal);
      return pipelined(send, plan.perBlock, IN_FLIGHT, ctx.signal);
    };
    const blocks = await interleaved(
      ctx,
      { blocks: plan.blocks, blockTimeoutMs: 60_000, label: "throughput" },
      // node: the node asked by a bare nats.js client, to split the gap into the node's share and DvsClient's.
      { raw: () => block(pair.raw), node: () => block(pair.bare), ours: () => block(pair.ours) },
    );
    const rates = (b: readonly Throughput[]) => b.map((t) => t.requests / t.seconds);
    const rawRates = rates(blocks.raw);
    const nodeRates = rates(blocks.node);
    const oursRates = rates(blocks.ours);
    const rawRate = median(rawRates);
    const nodeRate = median(nodeRates);
    const oursRate = median(oursRates);
    const list = (values: readonly number[]) => values.map((v) => Math.round(v)).join(" ");
    return {
      measurements: [
        { name: "raw.rate", value: rawRate, unit: "req/s" },
        { name: "ours.rate", value: oursRate, unit: "req/s" },
        { name: "node.rate", value: nodeRate, unit: "req/s" },
        { name: "raw.requests", value: plan.blocks * plan.perBlock, unit: "requests" },
        { name: "ours.requests", value: plan.blocks * plan.perBlock, unit: "requests" },
        { name: "in-flight", value: IN_FLIGHT, unit: "requests" },
        ...pair.memory(),
      ],
      ratios: [
        {
          name: "throughput",
          of: "ours.rate / raw.rate (medians of the blocks' rates)",
          value: ratio(oursRate, rawRate),
          target: { op: ">=", value: 0.7 },
        },
        {
          name: "throughput paired",
          of: "median over blocks of ours.rate / raw.rate of the same round",
          value: median(oursRates.map((r, i) => ratio(r, rawRates[i] ?? 0))),
        },
        {
          name: "node throughput",
          of: "node.rate / raw.rate: the node's share",
          value: ratio(nodeRate, rawRate),
        },
        {
          name: "client throughput",
          of: "ours.rate / node.rate: DvsClient's share",
          value: ratio(oursRate, nodeRate),
        },
      ],
      notes: [
        ...pair.notes,
        `${plan.warmup} warm-up requests each, then ${plan.blocks} alternating blocks of ${plan.perBlock}`,
        `a block's rate = its requests / its time; ${plan.pauseMs} ms pause before every block (the node's admin budget refills: ${ADMIN.ratePerSecond}/s, burst ${ADMIN.burst})`,
        "node: the node asked by a bare nats.js client (the raw RQST bytes, the reply not decoded)",
        `rate by block (req/s): raw ${list(rawRates)}; node ${list(nodeRates)}; ours ${list(oursRates)}`,
      ],
    };
  },
};
