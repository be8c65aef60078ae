// One `dst: ALL` request being gathered by a replication server (SPEC 3.1, 5):
// it expects one answer from each member of the requester's view, and ends the
// moment the last one has answered, when the members still missing are gone
// from the view (EHOSTDOWN) or when the request's timeout runs out (ETIMEDOUT).
// Duplicate, late and foreign answers are dropped. Pure: answers and views
// arrive as events, the timeout is a named delay on the actor's clock.
import { assign, setup } from "xstate";

/** What one member contributed to the aggregated reply. */
export type GatherEntry<R> =
  | { readonly node: number; readonly outcome: "answered"; readonly reply: R }
  | { readonly node: number; readonly outcome: "timeout" }
  | { readonly node: number; readonly outcome: "down" };

export interface GatherInput {
  /** The members of the requester's view when the request was multicast, ascending. */
  readonly expected: readonly number[];
  readonly timeoutMs: number;
}

export interface GatherContext<R> {
  readonly expected: readonly number[];
  readonly timeoutMs: number;
  /** Entries by node id, filled as answers arrive. */
  readonly entries: Readonly<Record<number, GatherEntry<R>>>;
  /** Answers dropped: a node already answered, or it was not expected. */
  readonly dropped: number;
}

export type GatherEvent<R> =
  | { type: "member.answered"; node: number; reply: R }
  | { type: "view.changed"; members: readonly number[] };

/** The aggregated result: one entry per expected member, in view order. */
export interface GatherOutput<R> {
  readonly entries: readonly GatherEntry<R>[];
  readonly dropped: number;
}

const isComplete = (expected: readonly number[], entries: Readonly<Record<number, unknown>>) =>
  expected.every((n) => entries[n] !== undefined);

export function createGatherMachine<R>() {
  return setup({
    types: {
      context: {} as GatherContext<R>,
      input: {} as GatherInput,
      events: {} as GatherEvent<R>,
      output: {} as GatherOutput<R>,
    },
    delays: {
      requestTimeout: ({ context }) => context.timeoutMs,
    },
    guards: {
      complete: ({ context }) => isComplete(context.expected, context.entries),
      expectedAndNew: ({ context, event }) =>
        event.type === "member.answered" &&
        context.expected.includes(event.node) &&
        context.entries[event.node] === undefined,
    },
  }).createMachine({
    id: "gather",
    context: ({ input }) => ({
      expected: [...input.expected],
      timeoutMs: input.timeoutMs,
      entries: {},
      dropped: 0,
    }),
    initial: "gathering",
    states: {
      gathering: {
        always: { guard: "complete", target: "done" },
        after: {
          requestTimeout: {
            target: "done",
            actions: assign({
              entries: ({ context }) => {
                const entries = { ...context.entries };
                for (const node of context.expected)
                  entries[node] ??= { node, outcome: "timeout" } as GatherEntry<R>;
                return entries;
              },
            }),
          },
        },
        on: {
          "member.answered": [
            {
              guard: "expectedAndNew",
              actions: assign({
                entries: ({ context, event }) => ({
                  ...context.entries,
                  [event.node]: { node: event.node, outcome: "answered", reply: event.reply },
                }),
              }),
            },
            { actions: assign({ dropped: ({ context }) => context.dropped + 1 }) },
          ],
          "view.changed": {
            actions: assign({
              entries: ({ context, event }) => {
                const entries = { ...context.entries };
                for (const node of context.expected)
                  if (!event.members.includes(node)) entries[node] ??= { node, outcome: "down" };
                return entries;
              },
            }),
          },
        },
      },
      done: { type: "final" },
    },
    output: ({ context }) => ({
      entries: context.expected.map((node) => context.entries[node] as GatherEntry<R>),
      dropped: context.dropped,
    }),
  });
}
