// One DC (SPEC 5, group DC) as this node knows it: its `dc_usr` configuration
// and node set, and whether it has ended. Every change carries a revision (a
// Lamport clock value and the node that made it) so that nodes offering their
// tables to a joiner converge on the newest version of each DC. Pure; the
// checks that answer ENOENT/EEXIST live in the DVS store (actors/dvsStore.ts).
import { assign, setup } from "xstate";

/** `dc_usr` with every field present. */
export interface DcInfo {
  readonly dcid: number;
  readonly flags: number;
  readonly nr_procs: number;
  readonly nr_tasks: number;
  readonly nr_sysprocs: number;
  readonly nr_nodes: number;
  /** Node ids, ascending. */
  readonly nodes: readonly number[];
  readonly warn2proc: number;
  readonly warnmsg: number;
  readonly name: string;
}

/** A revision: newer is a larger `rev`, ties broken by the larger `origin` node id. */
export interface Revision {
  readonly rev: number;
  readonly origin: number;
}

export interface DcRecord extends Revision {
  readonly dc: DcInfo;
  readonly ended: boolean;
}

export const isNewer = (a: Revision, b: Revision): boolean =>
  a.rev > b.rev || (a.rev === b.rev && a.origin > b.origin);

export type DcEvent =
  | ({ type: "dc.addNode"; nodeid: number } & Revision)
  | ({ type: "dc.delNode"; nodeid: number } & Revision)
  | ({ type: "dc.end" } & Revision)
  | ({ type: "dc.init"; dc: DcInfo } & Revision)
  /** A newer version learnt from another node. */
  | { type: "dc.replace"; record: DcRecord };

const withNodes = (dc: DcInfo, nodes: readonly number[]): DcInfo => ({
  ...dc,
  nodes,
  nr_nodes: nodes.length,
});

export const dcMachine = setup({
  types: {
    context: {} as DcRecord,
    input: {} as DcRecord,
    events: {} as DcEvent,
  },
  guards: {
    ended: ({ context }) => context.ended,
    replacementEnded: ({ event }) => event.type === "dc.replace" && event.record.ended,
  },
}).createMachine({
  id: "dc",
  context: ({ input }) => input,
  initial: "restoring",
  states: {
    restoring: {
      always: [{ guard: "ended", target: "ended" }, { target: "active" }],
    },
    active: {
      on: {
        "dc.addNode": {
          actions: assign(({ context, event }) => ({
            dc: withNodes(
              context.dc,
              [...new Set([...context.dc.nodes, event.nodeid])].sort((a, b) => a - b),
            ),
            rev: event.rev,
            origin: event.origin,
          })),
        },
        "dc.delNode": {
          actions: assign(({ context, event }) => ({
            dc: withNodes(
              context.dc,
              context.dc.nodes.filter((n) => n !== event.nodeid),
            ),
            rev: event.rev,
            origin: event.origin,
          })),
        },
        "dc.end": {
          target: "ended",
          actions: assign(({ event }) => ({ ended: true, rev: event.rev, origin: event.origin })),
        },
      },
    },
    ended: {
      on: {
        "dc.init": {
          target: "active",
          actions: assign(({ event }) => ({
            dc: event.dc,
            ended: false,
            rev: event.rev,
            origin: event.origin,
          })),
        },
      },
    },
  },
  on: {
    "dc.replace": [
      {
        guard: "replacementEnded",
        target: ".ended",
        actions: assign(({ event }) => event.record),
      },
      { target: ".active", actions: assign(({ event }) => event.record) },
    ],
  },
});

export type DcMachine = typeof dcMachine;
