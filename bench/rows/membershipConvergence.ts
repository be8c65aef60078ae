// How long a cold cluster takes to agree: 16 `dvsd run` processes started at
// once, timed until all 16 answer the status subject with a view of 16
// members and one view id. The baseline, in the same run, is one node alone
// started until it answers with its view of one: the ratio is what agreeing
// costs on top of starting a daemon.
import type { BenchContext, BenchRow } from "../row.js";
import { summarize } from "../stats.js";
import { DvsdCluster, type TimedEvent } from "./dvsdCluster.js";

const FULL = { nodes: 16, reps: 3 };
const QUICK = { nodes: 6, reps: 1 };

/** Milliseconds from spawning `nodes` processes to one agreed view of all of them. */
async function timeToConverge(
  ctx: BenchContext,
  nodes: number,
  cluster: string,
): Promise<{ converged: number; allSeen: number; lastStarted: number }> {
  const c = await DvsdCluster.create(ctx, { nodes, cluster });
  const start = performance.now();
  c.startAll();
  // When every node has announced a view holding everyone (ids may still differ).
  const seen = c.until(
    () => c.nodes.every((n) => c.events.some((e) => e.node === n && e.view.members.length === nodes)),
    `every node announcing a view of ${nodes}`,
    60_000,
  );
  seen.catch(() => {}); // awaited below; a failure of converged() must not leave it unhandled
  await c.converged(c.nodes, 60_000, 20);
  const converged = performance.now() - start;
  await seen;
  const lastOf = (match: (e: TimedEvent, node: number) => boolean) =>
    Math.max(...c.nodes.map((n) => c.events.find((e) => e.node === n && match(e, n))?.receivedAt ?? start)) -
    start;
  const allSeen = lastOf((e) => e.view.members.length === nodes);
  // A node's first event is its JOIN "started": the end of its start-up and join window.
  const lastStarted = lastOf(() => true);
  await c.killAll();
  return { converged, allSeen, lastStarted };
}

export const membershipConvergence: BenchRow = {
  name: "membership-convergence",
  title: "Cold start of 16 dvsd processes → all report one view of 16 (status subject), vs one node alone",
  async run(ctx) {
    const plan = ctx.quick ? QUICK : FULL;
    const single: number[] = [];
    const cluster: number[] = [];
    const announced: number[] = [];
    const started: number[] = [];
    for (let rep = 0; rep < plan.reps; rep++) {
      single.push((await timeToConverge(ctx, 1, `bench-conv-one-${rep}`)).converged);
      const t = await timeToConverge(ctx, plan.nodes, `bench-conv-${rep}`);
      cluster.push(t.converged);
      announced.push(t.allSeen);
      started.push(t.lastStarted);
      ctx.progress(
        `rep ${rep + 1}/${plan.reps}: one node ${Math.round(single[rep] ?? 0)} ms; ${plan.nodes} nodes: last one up (its first JOIN) at ${Math.round(t.lastStarted)} ms, all announced a full view at ${Math.round(t.allSeen)} ms, one view id at ${Math.round(t.converged)} ms`,
      );
    }
    const one = summarize(single);
    const all = summarize(cluster);
    const seen = summarize(announced);
    const up = summarize(started);
    const agreeing = summarize(cluster.map((t, i) => t - (started[i] ?? 0)));
    return {
      measurements: [
        { name: "one-node.p50", value: one.p50, unit: "ms" },
        { name: `${plan.nodes}-nodes.p50`, value: all.p50, unit: "ms" },
        { name: `${plan.nodes}-nodes.max`, value: all.max, unit: "ms" },
        { name: "last-node-up.p50", value: up.p50, unit: "ms" },
        { name: "full-view-announced.p50", value: seen.p50, unit: "ms" },
        { name: "after-last-up.p50", value: agreeing.p50, unit: "ms" },
        { name: "nodes", value: plan.nodes, unit: "processes" },
      ],
      ratios: [
        {
          name: `${plan.nodes} nodes / one`,
          of: `${plan.nodes}-nodes.p50 / one-node.p50`,
          value: all.p50 / one.p50,
        },
      ],
      notes: [
        `${plan.reps} repetition(s); time = spawn of the first process → every node answers dvs.<c>._status with the same view of ${plan.nodes} (polled every 20 ms)`,
        "last-node-up = the last node's first event (its JOIN after the join window); full-view-announced = the last node's first event whose view holds everyone (view ids may still differ then); after-last-up = one view id − last-node-up",
        "process start-up is most of it: every process loads Node and its modules on the machine's shared cores",
      ],
    };
  },
};
