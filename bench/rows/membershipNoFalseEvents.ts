// SPEC 10: no false membership event with both cores saturated. Eight `dvsd
// run` processes agree on a view; then one busy-loop process per core runs for
// 60 s while nobody is killed, and every PARTITION or DISCONNECT published in
// that time (and a few seconds after) is a false event. --quick watches an
// idle cluster for a few seconds instead: saturating the cores would disturb
// whatever runs beside a smoke run (other test files).
import { availableParallelism, cpus } from "node:os";
import type { BenchRow } from "../row.js";
import { DvsdCluster, pause } from "./dvsdCluster.js";

const NODES = 8;
/** `settleMs`: after the load stops, time for an event about the loaded period to arrive. */
const FULL = { loadMs: 60_000, settleMs: 3_000, saturate: true };
const QUICK = { loadMs: 2_000, settleMs: 1_000, saturate: false };
const BUSY_LOOP = "for (;;) {}";

function cpuTimes(): { busy: number; total: number } {
  let busy = 0;
  let total = 0;
  for (const c of cpus()) {
    const t = c.times.user + c.times.nice + c.times.sys + c.times.irq;
    busy += t;
    total += t + c.times.idle;
  }
  return { busy, total };
}

export const membershipNoFalseEvents: BenchRow = {
  name: "membership-no-false-events",
  title: `${NODES} dvsd processes, every core saturated by busy loops for 60 s, nobody killed → false PARTITION/DISCONNECT`,
  async run(ctx) {
    const plan = ctx.quick ? QUICK : FULL;
    const started = performance.now();
    const cluster = await DvsdCluster.create(ctx, { nodes: NODES, cluster: "bench-quiet" });
    cluster.startAll();
    await cluster.converged(cluster.nodes, 60_000);

    const from = cluster.mark();
    const loaders = plan.saturate ? availableParallelism() : 0;
    ctx.progress(
      plan.saturate
        ? `saturating ${loaders} cores for ${plan.loadMs / 1_000} s`
        : `--quick: watching the idle cluster for ${plan.loadMs / 1_000} s (no saturation)`,
    );
    const before = cpuTimes();
    const busy = Array.from({ length: loaders }, () => ctx.spawn(process.execPath, ["-e", BUSY_LOOP]));
    await pause(ctx, plan.loadMs, "the loaded period");
    const after = cpuTimes();
    await Promise.all(
      busy.map((child) => {
        const exited = new Promise((resolve) => child.once("exit", resolve));
        child.kill("SIGKILL");
        return ctx.within(5_000, "exit of a busy loop", exited);
      }),
    );
    await pause(ctx, plan.settleMs, "settling");

    const during = cluster.events.slice(from);
    const falseEvents = during.filter((e) => e.event === "PARTITION" || e.event === "DISCONNECT");
    const noisyNodes = new Set(falseEvents.map((e) => e.node));
    const stillConverged = await cluster
      .converged(cluster.nodes, 10_000)
      .then(() => true)
      .catch(() => false);
    await cluster.killAll();
    const durationS = (performance.now() - started) / 1_000;
    ctx.progress(`took ${durationS.toFixed(1)} s; ${falseEvents.length} false events`);
    const cpuBusy = (100 * (after.busy - before.busy)) / Math.max(1, after.total - before.total);

    return {
      measurements: [
        { name: "false-events", value: falseEvents.length, unit: "PARTITION/DISCONNECT" },
        { name: "events", value: during.length, unit: "events (any)" },
        { name: "cpu.busy", value: Math.round(cpuBusy), unit: "% during the window" },
        { name: "window", value: (plan.loadMs + plan.settleMs) / 1_000, unit: "s" },
        { name: "duration", value: Math.round(durationS * 10) / 10, unit: "s (whole row)" },
      ],
      ratios: [
        {
          name: "quiet nodes",
          of: `nodes that published no PARTITION/DISCONNECT / ${NODES}`,
          value: (NODES - noisyNodes.size) / NODES,
          target: { op: ">=", value: 1 },
        },
      ],
      notes: [
        plan.saturate
          ? `${loaders} busy-loop processes (one per core) for ${plan.loadMs / 1_000} s, then ${plan.settleMs / 1_000} s to settle; default timings`
          : `--quick: no saturation, ${plan.loadMs / 1_000} s idle + ${plan.settleMs / 1_000} s; run without --quick for the real row`,
        stillConverged
          ? `all ${NODES} still agree on one view afterwards`
          : `the ${NODES} nodes did NOT agree on one view 10 s after the load`,
        ...falseEvents
          .slice(0, 5)
          .map(
            (e) =>
              `false: node ${e.node} ${e.event} [${e.changed.map((m) => `${m.node}:${m.incarnation}`).join(",")}] (${e.cause})`,
          ),
      ],
    };
  },
};
