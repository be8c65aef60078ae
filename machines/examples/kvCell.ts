// An example process: a key-value cell. Messages `{type: "set", key, value}`,
// `{type: "del", key}` change it; `{type: "get", key}` from another process is
// answered with `{type: "kv.value", key, found, value}` sent back to it.
// Values must be CBOR-encodable; the whole map is the process's context.
import { assign, emit, setup } from "xstate";
import {
  bodyString,
  bodyType,
  type DvsEvent,
  type DvsMessageEvent,
  type DvsSendEmitted,
} from "../processEvents.js";

export interface KvCellContext {
  entries: Record<string, unknown>;
  /** Bumped by every `set` and every `del` that removed a key. */
  version: number;
}

const keyed = (event: DvsEvent, type: string): event is DvsMessageEvent =>
  event.type === "dvs.message" &&
  bodyType(event.body) === type &&
  bodyString(event.body, "key") !== undefined;

const keyOf = (event: DvsEvent): string => bodyString((event as DvsMessageEvent).body, "key") ?? "";

export const kvCellMachine = setup({
  types: {
    context: {} as KvCellContext,
    /** `{entries?: Record<string, unknown>}`; anything else starts empty. */
    input: {} as unknown,
    events: {} as DvsEvent,
    emitted: {} as DvsSendEmitted,
  },
  guards: {
    isSet: ({ event }) => keyed(event, "set"),
    isDel: ({ event }) => keyed(event, "del"),
    isGetFromProcess: ({ event }) => keyed(event, "get") && event.from.kind === "process",
  },
}).createMachine({
  id: "kvCell",
  context: ({ input }) => {
    const entries = (input as { entries?: unknown } | undefined)?.entries;
    return {
      entries:
        typeof entries === "object" && entries !== null && !Array.isArray(entries)
          ? { ...(entries as Record<string, unknown>) }
          : {},
      version: 0,
    };
  },
  initial: "serving",
  states: {
    serving: {
      on: {
        "dvs.message": [
          {
            guard: "isSet",
            actions: assign(({ context, event }) => ({
              entries: {
                ...context.entries,
                [keyOf(event)]: ((event as DvsMessageEvent).body as { value?: unknown }).value ?? null,
              },
              version: context.version + 1,
            })),
          },
          {
            guard: "isDel",
            actions: assign(({ context, event }) => {
              const key = keyOf(event);
              if (!Object.hasOwn(context.entries, key)) return {};
              const { [key]: _removed, ...entries } = context.entries;
              return { entries, version: context.version + 1 };
            }),
          },
          {
            guard: "isGetFromProcess",
            actions: emit(({ context, event }) => {
              const from = (event as DvsMessageEvent).from as Extract<
                DvsMessageEvent["from"],
                { kind: "process" }
              >;
              const key = keyOf(event);
              const found = Object.hasOwn(context.entries, key);
              return {
                type: "dvs.send" as const,
                dcid: from.dcid,
                endpoint: from.endpoint,
                body: { type: "kv.value", key, found, value: found ? context.entries[key] : null },
              };
            }),
          },
        ],
      },
    },
  },
});

export type KvCellMachine = typeof kvCellMachine;
