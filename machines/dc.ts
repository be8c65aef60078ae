// One DC (SPEC 5, group DC) as this node knows it: its `dc_usr` configuration
// and node set, and whether it has ended. Every change carries a revision (a
// Lamport clock value and the node that made it) so that nodes offering their
// tables to a joiner converge on the newest version of each DC. A member that
// leaves the view for good (DISCONNECT) is moved from `nodes` to `departed`
// and back when it returns: those two follow each node's own view, so they
// carry no revision. Pure; the checks that answer ENOENT/EEXIST live in the
// DVS store (actors/dvsStore.ts).
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

/** A node taken out of a DC's `nodes` because it left the view; it returns when it rejoins. */
export interface Departure {
  readonly nodeid: number;
  /** The cause of the DISCONNECT that took it out (`left`, `unreachable longer than downAfter`…). */
  readonly cause: string;
  /** When, on the clock of the node that recorded it (ms). */
  readonly at: number;
}

export interface DcRecord extends Revision {
  readonly dc: DcInfo;
  readonly ended: boolean;
  /** Nodes out of `dc.nodes` because they left the view, ascending by node id. */
  readonly departed: readonly Departure[];
}

export const isNewer = (a: Revision, b: Revision): boolean =>
  a.rev > b.rev || (a.rev === b.rev && a.origin > b.origin);

export type DcEvent =
  | ({ type: "dc.addNode"; nodeid: number } & Revision)
  | ({ type: "dc.delNode"; nodeid: number } & Revision)
  | ({ type: "dc.end" } & Revision)
  | ({ type: "dc.init"; dc: DcInfo } & Revision)
  /** Members that left this node's view: out of `nodes`, into `departed`. */
  | { type: "dc.depart"; nodeids: readonly number[]; cause: string; at: number }
  /** Members back in this node's view: out of `departed`, into `nodes`. */
  | { type: "dc.return"; nodeids: readonly number[] }
  /** A newer version learnt from another node. */
  | { type: "dc.replace"; record: DcRecord };

const withNodes = (dc: DcInfo, nodes: readonly number[]): DcInfo => ({
  ...dc,
  nodes,
  nr_nodes: nodes.length,
});

const ascending = (nodes: Iterable<number>): number[] => [...new Set(nodes)].sort((a, b) => a - b);

const without = (departed: readonly Departure[], nodeids: readonly number[]): Departure[] =>
  departed.filter((d) => !nodeids.includes(d.nodeid));

/** `context` with `nodeids` (those in `nodes`) moved to `departed`. */
export function depart(context: DcRecord, nodeids: readonly number[], cause: string, at: number): DcRecord {
  const leaving = context.dc.nodes.filter((n) => nodeids.includes(n));
  if (leaving.length === 0) return context;
  return {
    ...context,
    dc: withNodes(
      context.dc,
      context.dc.nodes.filter((n) => !leaving.includes(n)),
    ),
    departed: [
      ...without(context.departed, leaving),
      ...leaving.map((nodeid) => ({ nodeid, cause, at })),
    ].sort((a, b) => a.nodeid - b.nodeid),
  };
}

/** `context` with `nodeids` (those in `departed`) back in `nodes`. */
export function returnNodes(context: DcRecord, nodeids: readonly number[]): DcRecord {
  const back = context.departed.filter((d) => nodeids.includes(d.nodeid)).map((d) => d.nodeid);
  if (back.length === 0) return context;
  return {
    ...context,
    dc: withNodes(context.dc, ascending([...context.dc.nodes, ...back])),
    departed: without(context.departed, back),
  };
}

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
            dc: withNodes(context.dc, ascending([...context.dc.nodes, event.nodeid])),
            departed: without(context.departed, [event.nodeid]),
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
            departed: without(context.departed, [event.nodeid]),
            rev: event.rev,
            origin: event.origin,
          })),
        },
        "dc.depart": {
          actions: assign(({ context, event }) => depart(context, event.nodeids, event.cause, event.at)),
        },
        "dc.return": {
          actions: assign(({ context, event }) => returnNodes(context, event.nodeids)),
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
            departed: [],
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
