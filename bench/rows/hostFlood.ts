// A viewer floods one node with host requests (PS, 50 in flight): does the
// node keep its heartbeats? Host probes run outside tools (ps), so without
// sharing them a flood would stall the event loop long enough for peers to
// suspect the node. One `dvsd run` process; the heartbeat gap is measured on
// the wire, against the idle gap just before, in the same run.
import { DvsClient } from "../../client/dvsClient.js";
import { UnexpectedReplyError } from "../errors.js";
import type { BenchRow } from "../row.js";
import { summarize } from "../stats.js";
import { DvsdCluster } from "./dvsdCluster.js";

const CLUSTER = "bench-host";
const FULL = { requests: 400, inFlight: 50, idleMs: 3_000 };
const QUICK = { requests: 40, inFlight: 10, idleMs: 1_000 };

export const hostFlood: BenchRow = {
  name: "host-flood",
  title: "heartbeat gap of a node while a viewer floods it with PS (50 in flight) vs idle",
  async run(ctx) {
    const plan = ctx.quick ? QUICK : FULL;
    const cluster = await DvsdCluster.create(ctx, { nodes: 1, cluster: CLUSTER });
    cluster.startAll();
    await cluster.converged(cluster.nodes, 30_000);
    const raw = await ctx.connectRaw("bench-host-heartbeats");
    let last: number | undefined;
    let maxGap = 0;
    raw.subscribe(`dvs.${CLUSTER}._hb.1`, {
      callback: () => {
        const now = performance.now();
        if (last !== undefined) maxGap = Math.max(maxGap, now - last);
        last = now;
      },
    });
    const transport = await ctx.connect("bench-host-viewer");
    const viewer = new DvsClient(transport, {
      cluster: CLUSTER,
      clientId: "viewer",
      role: "viewer",
      timeoutMs: 30_000,
    });

    ctx.progress(`idle: ${plan.idleMs} ms of heartbeats`);
    await new Promise((resolve) => setTimeout(resolve, plan.idleMs));
    const idleGap = maxGap;
    maxGap = 0;

    ctx.progress(`flood: ${plan.requests} PS, ${plan.inFlight} in flight`);
    const latencies: number[] = [];
    let next = 0;
    const started = performance.now();
    const worker = async () => {
      while (next < plan.requests && !ctx.signal.aborted) {
        next++;
        const t0 = performance.now();
        const rply = await viewer.request("PS", { limit: 50 }, { dst: 1 });
        if (rply.rcode < 0)
          throw new UnexpectedReplyError(viewer.subjects.roNodeRqst(1), `PS rcode ${rply.rcode}`);
        latencies.push(performance.now() - t0);
      }
    };
    await ctx.within(120_000, "PS flood", Promise.all(Array.from({ length: plan.inFlight }, worker)));
    const elapsed = performance.now() - started;
    const floodGap = maxGap;
    const ps = summarize(latencies);
    return {
      measurements: [
        { name: "idle.hb.max.gap", value: idleGap, unit: "ms" },
        { name: "flood.hb.max.gap", value: floodGap, unit: "ms" },
        { name: "flood.ps.p50", value: ps.p50, unit: "ms" },
        { name: "flood.ps.max", value: ps.max, unit: "ms" },
        { name: "flood.rate", value: (latencies.length / elapsed) * 1_000, unit: "req/s" },
      ],
      ratios: [
        // Peers suspect a node after 3 missed heartbeats (600 ms at the default 200 ms).
        {
          name: "flood gap / idle gap",
          value: floodGap / idleGap,
          of: "flood.hb.max.gap / idle.hb.max.gap",
          target: { op: "<=", value: 2.5 },
        },
      ],
      notes: [
        `${latencies.length} PS requests on the read-only subject (role viewer); heartbeats every 200 ms`,
        "host probes (ps, df, …) are shared between requests within 1 s (daemon/host/sharedProbes.ts)",
      ],
    };
  },
};
