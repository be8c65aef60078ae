// SPEC 10: a crash (SIGKILL) of a node is reported by every survivor within
// 300 ms p50 and 500 ms max, with default settings. Five `dvsd run` processes;
// each round SIGKILLs one (in turn), times the first PARTITION or DISCONNECT
// for it from every survivor, restarts it and waits for the view to converge.
// When `serf` is on PATH, five Serf agents on loopback are measured the same
// way (their handler's `member-failed`), for the ratio.
import type { BenchRow, Measurement, Ratio } from "../row.js";
import { summarize } from "../stats.js";
import { DvsdCluster } from "./dvsdCluster.js";
import { SERF_MISSING_NOTE, SerfCluster, serfInstalled } from "./serfCluster.js";

const NODES = 5;
const FULL = { rounds: 12, serfRounds: 3 };
const QUICK = { rounds: 3, serfRounds: 0 };
const TARGET_P50_MS = 300;
const TARGET_MAX_MS = 500;

export const membershipDetection: BenchRow = {
  name: "membership-detection",
  title: `SIGKILL of one of ${NODES} dvsd processes → first PARTITION/DISCONNECT at every survivor (Serf alongside when installed)`,
  async run(ctx) {
    const plan = ctx.quick ? QUICK : FULL;
    const cluster = await DvsdCluster.create(ctx, { nodes: NODES, cluster: "bench-detect" });
    cluster.startAll();
    await cluster.converged(cluster.nodes, 30_000);

    const samples: number[] = [];
    const viaNoResponders = { yes: 0, no: 0 };
    for (let round = 0; round < plan.rounds; round++) {
      const victim = (round % NODES) + 1;
      const survivors = cluster.nodes.filter((n) => n !== victim);
      const statuses = await cluster.converged(cluster.nodes, 30_000);
      const incarnation = statuses.find((s) => s.node === victim)?.incarnation ?? 0;
      const from = cluster.mark();
      const killedAt = await cluster.kill(victim);
      const first = await cluster.firstFromEach(
        survivors,
        { node: victim, incarnation },
        ["PARTITION", "DISCONNECT"],
        { from, timeoutMs: 15_000 },
      );
      for (const e of first.values()) {
        samples.push(e.receivedAt - killedAt);
        // Its own probe's, or an observer's alert of one ("node N: no responders: …").
        if (e.cause.includes("no responders")) viaNoResponders.yes++;
        else viaNoResponders.no++;
      }
      ctx.progress(
        `round ${round + 1}/${plan.rounds}: node ${victim} killed, seen by ${survivors.length} survivors in ${[
          ...first.values(),
        ]
          .map((e) => Math.round(e.receivedAt - killedAt))
          .join(", ")} ms`,
      );
      cluster.start(victim);
      await cluster.firstFromEach(survivors, { node: victim, incarnation, above: true }, ["JOIN"], {
        from,
        timeoutMs: 30_000,
      });
    }
    const ours = summarize(samples);

    const measurements: Measurement[] = [
      { name: "dvsd.p50", value: ours.p50, unit: "ms" },
      { name: "dvsd.p90", value: ours.p90, unit: "ms" },
      { name: "dvsd.max", value: ours.max, unit: "ms" },
      { name: "dvsd.observations", value: ours.count, unit: "survivor reports" },
    ];
    const ratios: Ratio[] = [
      {
        name: "p50 / 300 ms",
        of: `dvsd.p50 / ${TARGET_P50_MS} ms (SPEC 10)`,
        value: ours.p50 / TARGET_P50_MS,
        target: { op: "<=", value: 1 },
      },
      {
        name: "max / 500 ms",
        of: `dvsd.max / ${TARGET_MAX_MS} ms (SPEC 10)`,
        value: ours.max / TARGET_MAX_MS,
        target: { op: "<=", value: 1 },
      },
    ];
    const notes = [
      `${plan.rounds} rounds × ${NODES - 1} survivors; default timings (heartbeat 200 ms, probe after 250 ms of silence)`,
      `time = kill → event received by an observer on dvs.<c>.events; ${viaNoResponders.yes} of ${samples.length} reports came from a probe's "no responders", ${viaNoResponders.no} from missed heartbeats`,
    ];

    await cluster.killAll();
    if (!serfInstalled()) {
      notes.push(SERF_MISSING_NOTE);
    } else if (plan.serfRounds === 0) {
      notes.push("Serf comparison skipped in --quick (each round takes seconds)");
    } else {
      const serf = await measureSerf(ctx, plan.serfRounds);
      const s = summarize(serf);
      measurements.push(
        { name: "serf.p50", value: s.p50, unit: "ms" },
        { name: "serf.max", value: s.max, unit: "ms" },
        { name: "serf.observations", value: s.count, unit: "survivor reports" },
      );
      ratios.push({ name: "vs serf p50", of: "dvsd.p50 / serf.p50", value: ours.p50 / s.p50 });
      notes.push(
        `Serf: ${NODES} \`serf agent\`s on loopback, default LAN profile, ${plan.serfRounds} rounds; time = kill → member-failed handler run (its wall clock)`,
      );
    }
    return { measurements, ratios, notes };
  },
};

async function measureSerf(ctx: Parameters<BenchRow["run"]>[0], rounds: number): Promise<number[]> {
  const serf = await SerfCluster.create(ctx, NODES);
  ctx.progress(`serf: starting ${NODES} agents`);
  await serf.startAll(30_000);
  const samples: number[] = [];
  for (let round = 0; round < rounds; round++) {
    // Never the first agent: the others rejoin through it.
    const victim = serf.names[(round % (NODES - 1)) + 1] as string;
    const killedAt = await serf.kill(victim);
    const first = await serf.firstFailedAtEach(victim, killedAt, 60_000);
    const round_ = [...first.values()].map((at) => at - killedAt);
    samples.push(...round_);
    ctx.progress(
      `serf round ${round + 1}/${rounds}: ${victim} killed, member-failed in ${round_.join(", ")} ms`,
    );
    await serf.restart(victim, 60_000);
  }
  return samples;
}
