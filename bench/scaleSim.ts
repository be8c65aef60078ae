// The simulated half of `npm run scale`: `nodes` real node runtimes on one
// simulated NATS server (sim/cluster.ts) with the simulated clock,
// all started at once and run for a number of simulated seconds. It measures
// what the simulation costs in wall time, not what a real cluster does: wall ms
// per simulated second, when (in simulated time) every node holds one view of
// everyone, and the heap at the end.
import { SimCluster } from "../sim/cluster.js";

export interface SimScaleOptions {
  readonly nodes: number;
  readonly simSeconds: number;
  readonly seed: number;
  /** Wall-clock budget; the run stops at the next step past it and says so (`finished: false`). */
  readonly budgetMs: number;
  readonly signal: AbortSignal;
  readonly progress: (message: string) => void;
}

export interface SimScaleResult {
  readonly nodes: number;
  /** Simulated seconds asked for, and reached (fewer when the budget ran out). */
  readonly simSecondsAsked: number;
  readonly simSecondsRun: number;
  readonly finished: boolean;
  /** Wall time of `start()` for every node, before simulated time moves. */
  readonly startWallMs: number;
  /** Wall ms per simulated second over the whole run (start excluded). */
  readonly wallMsPerSimSecond: number;
  /** Wall ms of each whole simulated second; the first holds the join. */
  readonly wallMsEachSecond: readonly number[];
  readonly converged: boolean;
  /** Simulated ms from the start to the first check that found one view of all `nodes`; step resolution. */
  readonly convergedAtSimMs: number | undefined;
  /** Wall ms from starting the first node to that check: what reaching one view costs to simulate. */
  readonly convergedAtWallMs: number | undefined;
  readonly stepMs: number;
  /** process.memoryUsage().heapUsed at the end, garbage not yet collected included. */
  readonly heapUsedMiB: number;
  /** Membership events every node observed (JOIN, MERGE, …), all nodes together. */
  readonly events: number;
}

/** Checks for convergence every STEP_MS of simulated time: the resolution of the convergence time (1000 must be a multiple). */
const STEP_MS = 100;

export async function runSimScale(options: SimScaleOptions): Promise<SimScaleResult> {
  const { nodes, simSeconds } = options;
  const cluster = new SimCluster({ seed: options.seed });
  const wallStart = performance.now();
  for (let id = 1; id <= nodes; id++) cluster.start(id);
  const startWallMs = performance.now() - wallStart;
  options.progress(`${nodes} nodes started in ${Math.round(startWallMs)} ms wall`);

  const wallEachSecond: number[] = [];
  let convergedAt: number | undefined;
  let convergedAtWall: number | undefined;
  let finished = true;
  const deadline = wallStart + options.budgetMs;
  // Stops mid-step, at the next timer, once the budget is spent or the run is interrupted.
  const stop = () => options.signal.aborted || performance.now() > deadline;
  const runStart = performance.now();
  let secondStart = runStart;
  const endMs = simSeconds * 1000;
  const clock = cluster.clock;
  while (clock.now() < endMs) {
    const target = Math.min(clock.now() + STEP_MS, endMs);
    await clock.runUntil(stop, target - clock.now());
    if (options.signal.aborted) throw options.signal.reason;
    if (clock.now() < target) {
      finished = false;
      options.progress(
        `${nodes} nodes: wall budget of ${options.budgetMs / 1000} s spent at simulated ${clock.now()} of ${endMs} ms; stopping this size there`,
      );
      break;
    }
    if (convergedAt === undefined && oneViewOfAll(cluster, nodes)) {
      convergedAt = clock.now();
      convergedAtWall = performance.now() - wallStart;
    }
    if (clock.now() % 1000 === 0) {
      const now = performance.now();
      wallEachSecond.push(now - secondStart);
      secondStart = now;
      options.progress(
        `${nodes} nodes: simulated ${clock.now() / 1000}/${simSeconds} s, ${Math.round(now - runStart)} ms wall, ${convergedAt === undefined ? "not converged" : `converged at ${convergedAt} ms`}`,
      );
    }
  }
  const wall = performance.now() - runStart;
  const simMs = clock.now();
  const converged = oneViewOfAll(cluster, nodes);
  const heapUsedMiB = process.memoryUsage().heapUsed / 2 ** 20;
  const events = cluster.events.length;
  for (const id of [...cluster.nodes.keys()]) cluster.crash(id);
  return {
    nodes,
    simSecondsAsked: simSeconds,
    simSecondsRun: simMs / 1000,
    finished,
    startWallMs,
    wallMsPerSimSecond: simMs > 0 ? wall / (simMs / 1000) : Number.NaN,
    wallMsEachSecond: wallEachSecond,
    converged,
    convergedAtSimMs: convergedAt,
    convergedAtWallMs: convergedAtWall,
    stepMs: STEP_MS,
    heapUsedMiB,
    events,
  };
}

/** Every node is a member, and all hold the same view id with all `nodes` in it (no copies: cheap at 1000). */
function oneViewOfAll(cluster: SimCluster, nodes: number): boolean {
  if (cluster.nodes.size !== nodes) return false;
  let id: number | undefined;
  for (const node of cluster.nodes.values()) {
    const ctx = node.membership?.context;
    if (ctx?.phase !== "member" || ctx.view.members.length !== nodes) return false;
    id ??= ctx.view.id;
    if (ctx.view.id !== id) return false;
  }
  return true;
}
