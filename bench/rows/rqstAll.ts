// SPEC 10: a request to ALL of 8 nodes is answered as soon as the last member
// replies. Eight `dvsd run` processes; sequential GETDVSINFO requests to ALL
// (through the queue subject, as a tool sends them: any node gathers) against
// the baseline of the same request sent to the 8 nodes at once, one unicast
// each, timed until the last reply. Blocks alternate between the two. The
// ratio shows what gathering adds over the slowest member; the absolute
// figures show that nobody waits for the gather's 2 s timeout.
import { DEFAULT_REQUEST_TIMEOUT_MS } from "../../actors/node.js";
import { DvsClient } from "../../client/dvsClient.js";
import { type Rply, rcode } from "../../protocol/messages.js";
import { UnexpectedReplyError } from "../errors.js";
import { interleaved, sequential } from "../load.js";
import type { BenchRow } from "../row.js";
import { ratio, summarize } from "../stats.js";
import { DvsdCluster } from "./dvsdCluster.js";

const NODES = 8;
const CLUSTER = "bench-all";
const FULL = { warmup: 100, blocks: 10, perBlock: 100 };
const QUICK = { warmup: 10, blocks: 2, perBlock: 20 };

export const rqstAll: BenchRow = {
  name: "rqst-all",
  title: `GETDVSINFO to ALL of ${NODES} dvsd processes vs ${NODES} unicasts in parallel (last reply)`,
  async run(ctx) {
    const plan = ctx.quick ? QUICK : FULL;
    const cluster = await DvsdCluster.create(ctx, { nodes: NODES, cluster: CLUSTER });
    cluster.startAll();
    ctx.progress(`waiting for ${NODES} nodes to agree on one view`);
    await cluster.converged(cluster.nodes, 30_000);
    const transport = await ctx.connect("bench-rqst-all");
    // Signed: DVSINIT to ALL is relayed to the members, which serve it only with the admin's signature.
    const client = new DvsClient(transport, {
      cluster: CLUSTER,
      clientId: "bench-all",
      timeoutMs: 10_000,
      signer: cluster.signer,
    });
    const subject = client.subjects.anyRqst;

    const init = await ctx.within(
      10_000,
      "DVSINIT to ALL",
      client.request("DVSINIT", { name: CLUSTER }, { gatherTimeoutMs: 5_000 }),
    );
    const fresh = entriesOf(init, subject).filter((e) => e.rcode === e.src || e.rcode === rcode("EEXIST"));
    if (fresh.length !== NODES) {
      throw new UnexpectedReplyError(subject, `DVSINIT answered by ${describe(entriesOf(init, subject))}`);
    }

    // The node default timeout (2 s) is left in force: a reply near it would mean someone waited for it.
    const all = async () => {
      const rply = await client.request("GETDVSINFO", {});
      const entries = entriesOf(rply, subject);
      if (rply.rcode !== 0 || entries.length !== NODES || entries.some((e) => e.rcode !== 0)) {
        throw new UnexpectedReplyError(subject, `ALL answered rcode ${rply.rcode}: ${describe(entries)}`);
      }
    };
    const unicasts = async () => {
      const replies = await Promise.all(
        cluster.nodes.map((node) => client.request("GETDVSINFO", {}, { dst: node })),
      );
      for (const [i, rply] of replies.entries()) {
        if (rply.rcode !== 0 || rply.src !== cluster.nodes[i]) {
          throw new UnexpectedReplyError(
            client.subjects.nodeRqst(cluster.nodes[i] as number),
            describe([rply]),
          );
        }
      }
    };

    ctx.progress(`warm-up: ${plan.warmup} of each`);
    await ctx.within(60_000, "warm-up (ALL)", sequential(all, plan.warmup, ctx.signal));
    await ctx.within(60_000, "warm-up (unicasts)", sequential(unicasts, plan.warmup, ctx.signal));
    ctx.progress(`timing: ${plan.blocks} blocks × ${plan.perBlock} of each, alternating`);
    const blocks = await interleaved(
      ctx,
      { blocks: plan.blocks, blockTimeoutMs: 120_000, label: "rqst-all" },
      {
        all: () => sequential(all, plan.perBlock, ctx.signal),
        unicasts: () => sequential(unicasts, plan.perBlock, ctx.signal),
      },
    );
    // sequential() times in µs; these requests take milliseconds.
    const toMs = (samples: number[][]) => samples.flat().map((us) => us / 1_000);
    const a = summarize(toMs(blocks.all));
    const u = summarize(toMs(blocks.unicasts));
    await cluster.killAll();
    return {
      measurements: [
        { name: "all.p50", value: a.p50, unit: "ms" },
        { name: "all.p90", value: a.p90, unit: "ms" },
        { name: "all.p99", value: a.p99, unit: "ms" },
        { name: "all.max", value: a.max, unit: "ms" },
        { name: "unicast×8.p50", value: u.p50, unit: "ms" },
        { name: "unicast×8.p90", value: u.p90, unit: "ms" },
        { name: "unicast×8.p99", value: u.p99, unit: "ms" },
        { name: "unicast×8.max", value: u.max, unit: "ms" },
        { name: "all.requests", value: a.count, unit: "requests" },
        { name: "unicast×8.rounds", value: u.count, unit: "requests" },
      ],
      ratios: [
        {
          name: "p50",
          of: "all.p50 / unicast×8.p50",
          value: ratio(a.p50, u.p50),
          // One more hop than the slowest member: through the gathering node and back.
          target: { op: "<=", value: 2 },
        },
        { name: "p90", of: "all.p90 / unicast×8.p90", value: ratio(a.p90, u.p90) },
        {
          name: "max / timeout",
          of: `all.max / ${DEFAULT_REQUEST_TIMEOUT_MS} ms (the gather timeout in force)`,
          value: a.max / DEFAULT_REQUEST_TIMEOUT_MS,
          target: { op: "<=", value: 0.5 },
        },
      ],
      notes: [
        `${NODES} \`dvsd run\` processes on the run's nats-server; the bench client on the same host`,
        "ALL: DvsClient → dvs.<c>.rqst (queue group: any node gathers) → multicast → 8 answers → one RPLY of 8 entries, every entry checked",
        `unicast×8: the same request to each node's own subject, all ${NODES} sent at once; time = until the last reply`,
        `${plan.warmup} warm-up of each, then ${plan.blocks} alternating blocks of ${plan.perBlock}`,
      ],
    };
  },
};

function entriesOf(rply: Rply, subject: string): Rply[] {
  if (!Array.isArray(rply.data)) throw new UnexpectedReplyError(subject, "an ALL reply without entries");
  return rply.data as Rply[];
}

const describe = (entries: readonly Rply[]) => entries.map((e) => `${e.src}:${e.rcode}`).join(" ");
