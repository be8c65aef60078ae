// Planted bugs: membership step functions that are wrong in one known way, run
// through createMembershipMachine, and replication servers whose gather is
// wrong in one known way, to show that the model's invariants catch them.
import { DEFAULT_REQUEST_TIMEOUT_MS } from "../../actors/node.js";
import { createMembershipMachine, type MembershipStep, step } from "../../machines/membership.js";
import type { ModelMutation } from "./harness.js";
import type { GatherMutation } from "./requests.js";

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

/** By the name the CLI's `--mutation` takes. */
export const mutations: ReadonlyMap<string, ModelMutation> = new Map<string, ModelMutation>([
  ["drop-merge", { machine: machineThatDropsMergeAnnouncements }],
  ["frozen-view-id", { machine: machineThatForgetsToBumpViewIds }],
  ["ignore-request-timeout", { gather: gatherThatIgnoresTheRequestTimeout }],
  ["early-gather-timeout", { gather: gatherThatTimesOutEarly }],
]);
