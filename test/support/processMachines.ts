// Process machines for tests: a recorder that logs every message it gets, and
// an agent that sends messages and makes requests on command, logging what
// comes back. Registered next to the examples in the tests' registries.
import { assign, emit, setup } from "xstate";
import { defaultRegistry, type MachineRegistry } from "../../actors/machineRegistry.js";
import type {
  DvsEmitted,
  DvsErrorEvent,
  DvsEvent,
  DvsMessageEvent,
  DvsReplyEvent,
  Sender,
} from "../../machines/processEvents.js";

export interface RecorderContext {
  log: { from: Sender; seq: number; body: unknown }[];
}

/** Appends every message `{from, seq, body}` to `context.log`. */
export const recorderMachine = setup({
  types: { context: {} as RecorderContext, events: {} as DvsEvent },
}).createMachine({
  id: "recorder",
  context: { log: [] },
  on: {
    "dvs.message": {
      actions: assign({
        log: ({ context, event }) => [...context.log, { from: event.from, seq: event.seq, body: event.body }],
      }),
    },
  },
});

export interface AgentContext {
  replies: DvsReplyEvent[];
  errors: DvsErrorEvent[];
  received: unknown[];
  /** Causes of the `dvs.restored` events it got. */
  restored: string[];
}

type AgentCommand =
  | { type: "agent.send"; dcid?: number; endpoint: number; body: unknown }
  | { type: "agent.rqst"; id: string | number; request: string; dst?: number; params?: unknown }
  | { type: "agent.exit" };

const command = (event: DvsEvent): AgentCommand | undefined =>
  event.type === "dvs.message" ? ((event as DvsMessageEvent).body as AgentCommand) : undefined;

/**
 * Does what it is told: `{type: "agent.send", dcid?, endpoint, body}` emits a
 * `dvs.send`; `{type: "agent.rqst", id, request, dst?, params?}` emits a
 * `dvs.rqst`; `{type: "agent.exit"}` reaches its final state. Anything else it
 * receives goes to `received`; replies, errors and restarts are logged too.
 */
export const agentMachine = setup({
  types: { context: {} as AgentContext, events: {} as DvsEvent, emitted: {} as DvsEmitted },
  guards: {
    isSend: ({ event }) => command(event)?.type === "agent.send",
    isRqst: ({ event }) => command(event)?.type === "agent.rqst",
    isExit: ({ event }) => command(event)?.type === "agent.exit",
  },
}).createMachine({
  id: "agent",
  context: { replies: [], errors: [], received: [], restored: [] },
  initial: "active",
  states: {
    active: {
      on: {
        "dvs.message": [
          {
            guard: "isSend",
            actions: emit(({ event }) => {
              const c = command(event) as Extract<AgentCommand, { type: "agent.send" }>;
              return {
                type: "dvs.send" as const,
                endpoint: c.endpoint,
                body: c.body,
                ...(c.dcid !== undefined ? { dcid: c.dcid } : {}),
              };
            }),
          },
          {
            guard: "isRqst",
            actions: emit(({ event }) => {
              const c = command(event) as Extract<AgentCommand, { type: "agent.rqst" }>;
              return {
                type: "dvs.rqst" as const,
                id: c.id,
                request: c.request,
                ...(c.dst !== undefined ? { dst: c.dst } : {}),
                ...(c.params !== undefined ? { params: c.params } : {}),
              };
            }),
          },
          { guard: "isExit", target: "done" },
          { actions: assign({ received: ({ context, event }) => [...context.received, event.body] }) },
        ],
        "dvs.rply": { actions: assign({ replies: ({ context, event }) => [...context.replies, event] }) },
        "dvs.error": { actions: assign({ errors: ({ context, event }) => [...context.errors, event] }) },
        "dvs.restored": {
          actions: assign({ restored: ({ context, event }) => [...context.restored, event.cause] }),
        },
      },
    },
    done: { type: "final" },
  },
});

/** The default registry plus `recorder` and `agent`. */
export function testRegistry(): MachineRegistry {
  return defaultRegistry().register("recorder", recorderMachine).register("agent", agentMachine);
}
