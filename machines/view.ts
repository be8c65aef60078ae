// A view (SPEC 4) and the summary of it that a heartbeat carries: enough to
// tell whether two nodes see the same members without sending the members.
// Pure functions, the same on every node; the shapes are protocol/messages.ts's.

import type { ViewSummary } from "../protocol/membershipMessages.js";
import type { View } from "../protocol/messages.js";

export type { View, ViewSummary };
/**
 * A 53-bit digest of a sorted member list: two FNV-1a hashes (different
 * offsets) over the count and the ids. Pure and the same on every node, so
 * equal digests with equal sizes stand for equal member lists.
 */
export function membersDigest(members: readonly number[]): number {
  // FNV-1a's offset basis, and a second basis of its own for the other hash.
  let a = 0x811c9dc5;
  let b = 0x5bd1e995;
  const mix = (n: number) => {
    for (let shift = 0; shift < 32; shift += 8) {
      const byte = (n >>> shift) & 0xff;
      a = Math.imul(a ^ byte, 0x01000193);
      b = Math.imul(b ^ byte, 0x01000193);
    }
  };
  mix(members.length);
  for (const m of members) mix(m);
  return (a >>> 0) * 2 ** 21 + ((b >>> 0) >>> 11);
}

/** The summary of `view` a heartbeat of `node` carries. */
export function summarize(view: View, node: number): ViewSummary {
  return {
    id: view.id,
    size: view.members.length,
    first: view.members[0] ?? node,
    digest: membersDigest(view.members),
  };
}

/** Whether `summary` stands for the view whose members are `members`. */
export const sameSummary = (summary: ViewSummary, members: readonly number[]) =>
  summary.size === members.length && summary.digest === membersDigest(members);
