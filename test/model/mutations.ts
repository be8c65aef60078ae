// Planted bugs: membership step functions that are wrong in one known way, run
// through createMembershipMachine, and replication servers whose gather is
// wrong in one known way, to show that the model's invariants catch them.
import { DEFAULT_REQUEST_TIMEOUT_MS } from "../../actors/node.js";
import { createMembershipMachine, type MembershipStep, step } from "../../machines/membership.js";
import { type Rply, rcode } from "../../protocol/messages.js";
import type { ModelMutation } from "./harness.js";
import type { GatherMutation } from "./requests.js";

const EHOSTDOWN = rcode("EHOSTDOWN");

/** Merges a member back into the view but never tells anyone: the MERGE event is lost. */
export const stepThatDropsMergeAnnouncements: MembershipStep = (ctx, event) => {
  const { context, outputs } = step(ctx, event);
  return { context, outputs: outputs.filter((o) => o.type !== "announce" || o.change.event !== "MERGE") };
};

/** Announces every change with the view id it had before: view ids never grow. */
export const stepThatForgetsToBumpViewIds: MembershipStep = (ctx, event) => {
  const before = ctx.view.id;
  const { context, outputs } = step(ctx, event);
  if (!outputs.some((o) => o.type === "announce")) return { context, outputs };
  return {
    context: { ...context, view: { id: before, members: context.view.members } },
    outputs: outputs.map((o) =>
      o.type === "announce" ? { ...o, change: { ...o.change, view: { ...o.change.view, id: before } } } : o,
    ),
  };
};

/** An observer that never raises an alert: what it finds of the peers it watches, it keeps to itself. */
export const stepOfASilentObserver: MembershipStep = (ctx, event) => {
  const { context, outputs } = step(ctx, event);
  return { context, outputs: outputs.filter((o) => o.type !== "alert") };
};

/** An observer that says when a peer becomes unreachable but never when it is reachable again. */
export const stepThatNeverWithdrawsAlerts: MembershipStep = (ctx, event) => {
  const { context, outputs } = step(ctx, event);
  return { context, outputs: outputs.filter((o) => o.type !== "alert" || o.state !== "alive") };
};

/**
 * An observer whose duty disagrees with what the others think it is: it keeps
 * watching the peers it watched in its first view, whatever the view becomes,
 * so a peer whose observers changed may be watched by nobody.
 */
export const stepWithAStaleWatchSet: MembershipStep = (ctx, event) => {
  const { context, outputs } = step(ctx, event);
  if (ctx.watching.length === 0 || context.watching === ctx.watching) return { context, outputs };
  return {
    context: {
      ...context,
      watching: ctx.watching,
      watch: { ...ctx.watch, ...pick(context.watch, ctx.watching) },
    },
    outputs,
  };
};

const pick = <T>(table: Readonly<Record<string, T>>, keys: readonly number[]): Record<string, T> => {
  const picked: Record<string, T> = {};
  for (const k of keys) if (table[k] !== undefined) picked[k] = table[k] as T;
  return picked;
};

export const machineOfASilentObserver = createMembershipMachine(stepOfASilentObserver);
export const machineThatNeverWithdrawsAlerts = createMembershipMachine(stepThatNeverWithdrawsAlerts);
export const machineWithAStaleWatchSet = createMembershipMachine(stepWithAStaleWatchSet);
export const machineThatDropsMergeAnnouncements = createMembershipMachine(stepThatDropsMergeAnnouncements);
export const machineThatForgetsToBumpViewIds = createMembershipMachine(stepThatForgetsToBumpViewIds);

/**
 * Gathers for the node's default timeout whatever the request asks. (Planted
 * bugs change what a gather is given, never its result: a wrapper around the
 * result would delay the answer by a promise hop, which is a different bug.)
 */
export const gatherThatIgnoresTheRequestTimeout: GatherMutation = (gather) => (rqst) => {
  const { timeout: _ignored, ...rest } = rqst;
  return gather(rest);
};

/** Gives up on silent members at half the request's timeout. */
export const gatherThatTimesOutEarly: GatherMutation = (gather) => (rqst) =>
  gather({ ...rqst, timeout: Math.max(1, Math.floor((rqst.timeout ?? DEFAULT_REQUEST_TIMEOUT_MS) / 2)) });

/**
 * Names only the view's members: the EHOSTDOWN entries of known nodes out of
 * the view are dropped from the reply (a node gone is silently missing). The
 * one planted bug that must change the result; it adds a promise hop, which
 * simulated time does not see.
 */
export const gatherThatForgetsKnownNodes: GatherMutation = (gather) => async (rqst) => {
  const rply = await gather(rqst);
  if (!Array.isArray(rply.data)) return rply;
  const outOfView = (e: Rply) =>
    e.rcode === EHOSTDOWN &&
    String((e.data as { message?: unknown } | null)?.message).includes("is not in node");
  const entries = (rply.data as Rply[]).filter((e) => !outOfView(e));
  return {
    ...rply,
    data: entries,
    count: entries.length,
    rcode: entries.find((e) => e.rcode < 0)?.rcode ?? 0,
  };
};

/** By the name the CLI's `--mutation` takes. */
export const mutations: ReadonlyMap<string, ModelMutation> = new Map<string, ModelMutation>([
  ["drop-merge", { machine: machineThatDropsMergeAnnouncements }],
  ["frozen-view-id", { machine: machineThatForgetsToBumpViewIds }],
  ["silent-observer", { machine: machineOfASilentObserver }],
  ["unwithdrawn-alert", { machine: machineThatNeverWithdrawsAlerts }],
  ["stale-watch", { machine: machineWithAStaleWatchSet }],
  ["ignore-request-timeout", { gather: gatherThatIgnoresTheRequestTimeout }],
  ["early-gather-timeout", { gather: gatherThatTimesOutEarly }],
  ["forget-known-nodes", { gather: gatherThatForgetsKnownNodes }],
]);
