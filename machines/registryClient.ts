// The client role (seed 002): asks the registry WHO the coordinator is; on
// NOTHING (or no answer) it asks again after a delay that doubles up to a cap;
// once it knows a coordinator it uses it until told it failed, and then
// reports FAILED with that coordinator's epoch (so a registry that has since
// moved on can tell the report is obsolete) before asking again. Pure: time
// arrives in events, sending is a named action (client/registryClient.ts), and
// `registryClientTickDue` says when the next `clock.tick` would ask again.
import { assign, enqueueActions, setup } from "xstate";
import type { NodeId } from "../protocol/messages.js";
import { isDue } from "./due.js";
import { notProvided } from "./notProvided.js";

export interface RegistryClientInput {
  /** First delay after NOTHING; doubles up to `retryMaxMs`. */
  readonly retryMs: number;
  readonly retryMaxMs: number;
  readonly at: number;
}

export interface RegistryClientContext {
  readonly retryMs: number;
  readonly retryMaxMs: number;
  coordinator: NodeId | null;
  epoch: number;
  /** The delay before the next WHO after a NOTHING. */
  delayMs: number;
  askAt: number;
  /** WHO sent so far. */
  asked: number;
}

export type RegistryClientEvent =
  | { type: "who.ok"; coordinator: NodeId; epoch: number; at: number }
  | { type: "who.nothing"; at: number }
  /** The WHO got no answer (timeout, no responders). */
  | { type: "who.failed"; at: number }
  /** The caller could not reach the coordinator it was given. */
  | { type: "coordinator.failed"; at: number }
  | { type: "clock.tick"; at: number };

/**
 * When a `clock.tick` would make the client in `state` ask WHO again: the end
 * of its wait after a NOTHING. Undefined in any other state (only an answer or a
 * failure moves it on).
 */
export function registryClientTickDue(state: string, context: RegistryClientContext): number | undefined {
  return state === "waiting" ? context.askAt : undefined;
}

export const registryClientMachine = setup({
  types: {
    context: {} as RegistryClientContext,
    input: {} as RegistryClientInput,
    events: {} as RegistryClientEvent,
  },
  actions: {
    sendWho: notProvided("action sendWho") as (_: unknown) => void,
    sendFailed: notProvided("action sendFailed") as (
      _: unknown,
      params: { coordinator: NodeId; epoch: number },
    ) => void,
  },
}).createMachine({
  id: "registryClient",
  context: ({ input }) => ({
    retryMs: input.retryMs,
    retryMaxMs: input.retryMaxMs,
    coordinator: null,
    epoch: 0,
    delayMs: input.retryMs,
    askAt: input.at,
    asked: 0,
  }),
  initial: "asking",
  states: {
    asking: {
      entry: [assign(({ context }) => ({ asked: context.asked + 1 })), "sendWho"],
      on: {
        "who.ok": {
          target: "known",
          // An answer from a term older than one already known is stale.
          guard: ({ context, event }) => event.epoch >= context.epoch,
          actions: assign(({ context, event }) => ({
            coordinator: event.coordinator,
            epoch: event.epoch,
            delayMs: context.retryMs,
          })),
        },
        "who.nothing": { target: "waiting" },
        "who.failed": { target: "waiting" },
      },
    },
    waiting: {
      entry: assign(({ context, event }) => ({
        askAt: event.at + context.delayMs,
        delayMs: Math.min(context.delayMs * 2, context.retryMaxMs),
      })),
      on: {
        "clock.tick": {
          guard: ({ context, event }) => isDue(registryClientTickDue("waiting", context), event.at),
          target: "asking",
        },
      },
    },
    known: {
      on: {
        "coordinator.failed": {
          target: "asking",
          actions: enqueueActions(({ context, enqueue }) => {
            if (context.coordinator === null) return;
            enqueue({
              type: "sendFailed",
              params: { coordinator: context.coordinator, epoch: context.epoch },
            });
            enqueue.assign({ coordinator: null });
          }),
        },
        // A newer term announced (COORDINATOR event, or a later WHO): follow it.
        "who.ok": {
          guard: ({ context, event }) => event.epoch > context.epoch,
          actions: assign(({ event }) => ({ coordinator: event.coordinator, epoch: event.epoch })),
        },
      },
    },
  },
});

export type RegistryClientMachine = typeof registryClientMachine;
