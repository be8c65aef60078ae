// SPEC 10: a RQST/RPLY to one node has p50 ≤ 1.2× a raw nats.js echo on the
// same server in the same run (judged here at the tighter 1.15×), and p99 ≤
// 1.6× the echo's p99. Sequential requests, raw and ours alternating
// in blocks after a warm-up of each; each side's p50 and p99 are the medians
// of its blocks' own. `rqst-latency` measures a `dvsd run` process against an
// echo process (bench/nodeEcho.ts), as a user meets them; the in-process row
// keeps the older figure, both servers inside the bench process (bench/echo.ts).
import { ECHO_CLIENT_NOTE, startEchoPair } from "../echo.js";
import { interleaved, type Requester, sequential } from "../load.js";
import { startNodeEchoPair } from "../nodeEcho.js";
import type { BenchContext, BenchRow, Measurement, Target } from "../row.js";
import { median, ratio, summarizeBlocks } from "../stats.js";

const FULL = { warmup: 1_000, blocks: 10, perBlock: 500 };
const QUICK = { warmup: 50, blocks: 2, perBlock: 50 };

interface Pair {
  readonly raw: Requester;
  readonly ours: Requester;
  /** The node asked by a bare nats.js client (bench/nodeEcho.ts): splits ours − raw into node and client. */
  readonly bare?: Requester;
  /** The raw echo asked through NatsTransport's request path, the one DvsClient takes (bench/nodeEcho.ts). */
  readonly rawTransport?: Requester;
  readonly bytes: { readonly rqst: number; readonly rply: number };
  memory?(): Measurement[];
  readonly notes: readonly string[];
}

export const rqstLatency: BenchRow = latencyRow({
  name: "rqst-latency",
  title: "Sequential request/reply latency: nats.js echo process vs a `dvsd run` process (GETDVSINFO)",
  start: (ctx) => startNodeEchoPair(ctx, "bench-rqst-latency"),
  target: { op: "<=", value: 1.15 },
  tailTarget: { op: "<=", value: 1.6 },
});

export const rqstLatencyInProcess: BenchRow = latencyRow({
  name: "rqst-latency-in-process",
  title: "The same, both servers inside the bench process (RequestServer, no node): for comparison only",
  start: async (ctx) => ({
    ...(await startEchoPair(ctx)),
    notes: [
      ECHO_CLIENT_NOTE,
      "both servers run in the bench process, beside the client: not what a user meets",
    ],
  }),
});

function latencyRow(options: {
  readonly name: string;
  readonly title: string;
  readonly start: (ctx: BenchContext) => Promise<Pair>;
  /** p50's target. */
  readonly target?: Target;
  /** p99's target. */
  readonly tailTarget?: Target;
}): BenchRow {
  return {
    name: options.name,
    title: options.title,
    async run(ctx) {
      const plan = ctx.quick ? QUICK : FULL;
      const pair = await options.start(ctx);
      ctx.progress(`warm-up: ${plan.warmup} requests each`);
      await ctx.within(60_000, "latency warm-up (raw)", sequential(pair.raw, plan.warmup, ctx.signal));
      await ctx.within(60_000, "latency warm-up (ours)", sequential(pair.ours, plan.warmup, ctx.signal));
      ctx.progress(`timing: ${plan.blocks} blocks × ${plan.perBlock} requests each, alternating`);
      const run = (send: Requester) => () => sequential(send, plan.perBlock, ctx.signal);
      const { bare, rawTransport } = pair;
      const contenders: Record<string, () => Promise<number[]>> = {
        raw: run(pair.raw),
        ...(rawTransport ? { "raw-transport": run(rawTransport) } : {}),
        ...(bare ? { node: run(bare) } : {}),
        ours: run(pair.ours),
      };
      const blocks: Record<string, number[][]> = await interleaved(
        ctx,
        { blocks: plan.blocks, blockTimeoutMs: 60_000, label: "latency" },
        contenders,
      );
      const raw = summarizeBlocks(blocks.raw ?? []);
      const ours = summarizeBlocks(blocks.ours ?? []);
      const node = blocks.node ? summarizeBlocks(blocks.node) : undefined;
      const viaTransport = blocks["raw-transport"] ? summarizeBlocks(blocks["raw-transport"]) : undefined;
      // Block i of each side ran next to each other: their ratio sees the same moment of the machine.
      const paired = (o: readonly number[], r: readonly number[]) =>
        median(o.map((v, i) => ratio(v, r[i] ?? 0)));
      const list = (values: readonly number[]) => values.map((v) => Math.round(v)).join(" ");
      return {
        measurements: [
          { name: "raw.p50", value: raw.p50, unit: "us" },
          { name: "raw.p99", value: raw.p99, unit: "us" },
          { name: "ours.p50", value: ours.p50, unit: "us" },
          { name: "ours.p99", value: ours.p99, unit: "us" },
          { name: "raw.mean", value: raw.pooled.mean, unit: "us" },
          { name: "ours.mean", value: ours.pooled.mean, unit: "us" },
          { name: "raw.requests", value: raw.pooled.count, unit: "requests" },
          { name: "ours.requests", value: ours.pooled.count, unit: "requests" },
          ...(node
            ? [
                { name: "node.p50", value: node.p50, unit: "us" },
                { name: "node.p99", value: node.p99, unit: "us" },
              ]
            : []),
          ...(viaTransport
            ? [
                { name: "raw-transport.p50", value: viaTransport.p50, unit: "us" },
                { name: "raw-transport.p99", value: viaTransport.p99, unit: "us" },
              ]
            : []),
          ...(pair.memory?.() ?? []),
        ],
        ratios: [
          {
            name: "p50",
            of: "ours.p50 / raw.p50 (medians of the blocks' p50)",
            value: ratio(ours.p50, raw.p50),
            ...(options.target ? { target: options.target } : {}),
          },
          {
            name: "p99",
            of: "ours.p99 / raw.p99 (medians of the blocks' p99)",
            value: ratio(ours.p99, raw.p99),
            ...(options.tailTarget ? { target: options.tailTarget } : {}),
          },
          {
            name: "p50 paired",
            of: "median over blocks of ours.p50 / raw.p50 of the same round",
            value: paired(ours.p50s, raw.p50s),
          },
          {
            name: "p99 paired",
            of: "median over blocks of ours.p99 / raw.p99 of the same round",
            value: paired(ours.p99s, raw.p99s),
          },
          ...(node
            ? [
                {
                  name: "node p50",
                  of: "node.p50 / raw.p50: what the node adds",
                  value: ratio(node.p50, raw.p50),
                },
                { name: "node p99", of: "node.p99 / raw.p99", value: ratio(node.p99, raw.p99) },
                {
                  name: "client p50",
                  of: "ours.p50 / node.p50: what DvsClient adds",
                  value: ratio(ours.p50, node.p50),
                },
              ]
            : []),
          ...(viaTransport
            ? [
                {
                  name: "p50 like-for-like",
                  of: "ours.p50 / raw-transport.p50: the node and DvsClient over the same request path",
                  value: ratio(ours.p50, viaTransport.p50),
                },
                {
                  name: "request path p50",
                  of: "raw-transport.p50 / raw.p50: NatsTransport's request path against nats.js's",
                  value: ratio(viaTransport.p50, raw.p50),
                },
              ]
            : []),
        ],
        notes: [
          ...pair.notes,
          `${plan.warmup} warm-up requests each, then ${plan.blocks} rounds of one block of ${plan.perBlock} each, in an order that reverses every round (${Object.keys(blocks).join(", ")}; then backwards)`,
          ...(viaTransport
            ? [
                "raw-transport: the raw echo asked through NatsTransport's request (one inbox subscription, no Error built per request), the path DvsClient takes; raw and node go through nats.js's request",
              ]
            : []),
          ...(node
            ? [
                "node: the node asked by a bare nats.js client (the raw RQST bytes, the reply not decoded), to split ours − raw into the node's share and DvsClient's",
                `node p50 by block (µs): ${list(node.p50s)}; p99: ${list(node.p99s)}`,
              ]
            : []),
          `RQST ${pair.bytes.rqst} B (raw echoes it back), RPLY ${pair.bytes.rply} B`,
          `p50 by block (µs): raw ${list(raw.p50s)}; ours ${list(ours.p50s)}`,
          `p99 by block (µs): raw ${list(raw.p99s)}; ours ${list(ours.p99s)}`,
        ],
      };
    },
  };
}
