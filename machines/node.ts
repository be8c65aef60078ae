// The lifecycle of one node daemon (SPEC 4, 6.1): starting (connect, start
// serving) → joining (listening for the others) → member ↔ isolated (while its
// NATS link is down) → leaving (announce the leave, drain) → ended. DVSEND
// takes a running node out of the view (detached, still serving requests)
// until a DVSINIT brings it back through joining. Pure:
// connecting, draining and reporting are provided by the runtime (actors/node.ts).
import { assign, fromPromise, setup } from "xstate";
import { notProvided } from "./notProvided.js";

export interface NodeMachineInput {
  readonly node: number;
  readonly cluster: string;
  readonly incarnation: number;
}

export interface NodeContext extends NodeMachineInput {
  /** How many times the NATS link was lost since start. */
  linkLosses: number;
  /** Why the node is leaving or ended, once known. */
  reason: string | undefined;
}

export type NodeEvent =
  | { type: "link.down" }
  | { type: "link.up" }
  | { type: "link.closed"; reason: string }
  | { type: "membership.joined" }
  | { type: "dvs.ended" }
  | { type: "dvs.initialized" }
  | { type: "node.stop"; reason: string };

export const nodeMachine = setup({
  types: {
    context: {} as NodeContext,
    input: {} as NodeMachineInput,
    events: {} as NodeEvent,
  },
  actors: {
    /** Connects to NATS, registers the node and starts its servers. */
    connect: fromPromise<void, NodeMachineInput>(notProvided("actor connect")),
    /** Stops serving, deregisters and closes the connection. */
    drain: fromPromise<void, { reason: string }>(notProvided("actor drain")),
  },
  actions: {
    reportRunning: notProvided("action reportRunning"),
    reportIsolated: notProvided("action reportIsolated"),
    reportReconnected: notProvided("action reportReconnected"),
    reportLeaving: notProvided("action reportLeaving"),
    reportFailed: notProvided("action reportFailed") as (_: unknown, params: { error: unknown }) => void,
    reportEnded: notProvided("action reportEnded"),
  },
}).createMachine({
  id: "node",
  context: ({ input }) => ({ ...input, linkLosses: 0, reason: undefined }),
  initial: "starting",
  states: {
    starting: {
      invoke: {
        src: "connect",
        input: ({ context }) => ({
          node: context.node,
          cluster: context.cluster,
          incarnation: context.incarnation,
        }),
        onDone: [
          // A stop asked for while starting: drain what the start set up, then end.
          { guard: ({ context }) => context.reason !== undefined, target: "leaving" },
          { target: "running" },
        ],
        onError: {
          target: "ended",
          actions: [
            assign({ reason: "start failed" }),
            { type: "reportFailed", params: ({ event }) => ({ error: event.error }) },
          ],
        },
      },
      on: {
        "node.stop": { actions: assign({ reason: ({ event }) => event.reason }) },
      },
    },
    running: {
      initial: "joining",
      states: {
        joining: {
          on: { "membership.joined": { target: "member", actions: "reportRunning" } },
        },
        member: {
          on: {
            "link.down": {
              target: "isolated",
              actions: assign({ linkLosses: ({ context }) => context.linkLosses + 1 }),
            },
          },
        },
        isolated: {
          entry: "reportIsolated",
          on: { "link.up": { target: "member", actions: "reportReconnected" } },
        },
        detached: {
          on: { "dvs.initialized": "joining" },
        },
      },
      on: {
        "dvs.ended": ".detached",
        "node.stop": { target: "leaving", actions: assign({ reason: ({ event }) => event.reason }) },
        "link.closed": { target: "ended", actions: assign({ reason: ({ event }) => event.reason }) },
      },
    },
    leaving: {
      entry: "reportLeaving",
      invoke: {
        src: "drain",
        input: ({ context }) => ({ reason: context.reason ?? "stop" }),
        onDone: "ended",
        onError: {
          target: "ended",
          actions: { type: "reportFailed", params: ({ event }) => ({ error: event.error }) },
        },
      },
    },
    ended: {
      type: "final",
      entry: "reportEnded",
    },
  },
});

export type NodeMachine = typeof nodeMachine;
