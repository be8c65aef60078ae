// An example process: a counter. Messages `{type: "inc", by?}`, `{type: "dec", by?}`,
// `{type: "set", value}` change it; `{type: "get"}` from another process is
// answered with `{type: "counter.value", count}` sent back to that process.
// Anyone can read it with GETPROCINFO (`context.count`).
import { assign, emit, setup } from "xstate";
import {
  bodyNumber,
  bodyType,
  type DvsEvent,
  type DvsMessageEvent,
  type DvsSendEmitted,
} from "../processEvents.js";

export interface CounterContext {
  count: number;
  /** Messages that changed the count. */
  updates: number;
  /** `get`s answered. */
  reads: number;
}

const isMessage = (event: DvsEvent, type: string): event is DvsMessageEvent =>
  event.type === "dvs.message" && bodyType(event.body) === type;

export const counterMachine = setup({
  types: {
    context: {} as CounterContext,
    /** `{count?: number}`; anything else starts at 0. */
    input: {} as unknown,
    events: {} as DvsEvent,
    emitted: {} as DvsSendEmitted,
  },
  guards: {
    isInc: ({ event }) => isMessage(event, "inc"),
    isDec: ({ event }) => isMessage(event, "dec"),
    isSet: ({ event }) => isMessage(event, "set"),
    isGetFromProcess: ({ event }) => isMessage(event, "get") && event.from.kind === "process",
    isGet: ({ event }) => isMessage(event, "get"),
  },
}).createMachine({
  id: "counter",
  context: ({ input }) => ({ count: bodyNumber(input, "count", 0), updates: 0, reads: 0 }),
  initial: "counting",
  states: {
    counting: {
      on: {
        "dvs.message": [
          {
            guard: "isInc",
            actions: assign(({ context, event }) => ({
              count: context.count + bodyNumber((event as DvsMessageEvent).body, "by", 1),
              updates: context.updates + 1,
            })),
          },
          {
            guard: "isDec",
            actions: assign(({ context, event }) => ({
              count: context.count - bodyNumber((event as DvsMessageEvent).body, "by", 1),
              updates: context.updates + 1,
            })),
          },
          {
            guard: "isSet",
            actions: assign(({ context, event }) => ({
              count: bodyNumber((event as DvsMessageEvent).body, "value", context.count),
              updates: context.updates + 1,
            })),
          },
          {
            guard: "isGetFromProcess",
            actions: [
              assign({ reads: ({ context }) => context.reads + 1 }),
              emit(({ context, event }) => {
                const from = (event as DvsMessageEvent).from as Extract<
                  DvsMessageEvent["from"],
                  { kind: "process" }
                >;
                return {
                  type: "dvs.send" as const,
                  dcid: from.dcid,
                  endpoint: from.endpoint,
                  body: { type: "counter.value", count: context.count },
                };
              }),
            ],
          },
          // A `get` from a requester has nobody to answer to: it reads the count with GETPROCINFO.
          { guard: "isGet", actions: assign({ reads: ({ context }) => context.reads + 1 }) },
        ],
      },
    },
  },
});

export type CounterMachine = typeof counterMachine;
