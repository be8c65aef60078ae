// Planted bugs: membership step functions that are wrong in one known way, run
// through createMembershipMachine to show that the model's invariants catch them.
import {
  createMembershipMachine,
  type MembershipMachine,
  type MembershipStep,
  step,
} from "../../machines/membership.js";

/** Merges a member back into the view but never tells anyone: the MERGE event is lost. */
export const stepThatDropsMergeAnnouncements: MembershipStep = (ctx, event) =>
  step(ctx, event).filter((o) => o.type !== "announce" || o.change.event !== "MERGE");

/** Announces every change with the view id it had before: view ids never grow. */
export const stepThatForgetsToBumpViewIds: MembershipStep = (ctx, event) => {
  const before = ctx.view.id;
  const outputs = step(ctx, event);
  if (!outputs.some((o) => o.type === "announce")) return outputs;
  ctx.view = { id: before, members: ctx.view.members };
  return outputs.map((o) =>
    o.type === "announce" ? { ...o, change: { ...o.change, view: { ...o.change.view, id: before } } } : o,
  );
};

export const machineThatDropsMergeAnnouncements = createMembershipMachine(stepThatDropsMergeAnnouncements);
export const machineThatForgetsToBumpViewIds = createMembershipMachine(stepThatForgetsToBumpViewIds);

/** By the name the CLI's `--mutation` takes. */
export const mutations: ReadonlyMap<string, MembershipMachine> = new Map([
  ["drop-merge", machineThatDropsMergeAnnouncements],
  ["frozen-view-id", machineThatForgetsToBumpViewIds],
]);
