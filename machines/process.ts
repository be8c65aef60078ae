// The host-side lifecycle of one process (SPEC 5, "process"): running →
// migrating → running again (the move failed) or moved (it runs elsewhere now,
// this node keeps a forwarding pointer); running → ended. Pure: the runtime
// (actors/processes/) stops and starts the process's own actor, ships its
// snapshot and reports the outcome as events. The context is plain data.
import { assign, setup } from "xstate";

export interface ProcessLifecycleInput {
  readonly dcid: number;
  readonly endpoint: number;
  readonly machine: string;
  /** Location epoch: 1 at spawn, +1 at each migration. */
  readonly epoch: number;
}

export interface ProcessLifecycleContext extends ProcessLifecycleInput {
  epoch: number;
  /** While migrating: the target node. */
  migratingTo: number | null;
  /** Once moved: where it went. */
  movedTo: number | null;
  migrations: number;
  failedMigrations: number;
  /** Why the last migration failed, or why the process ended. */
  reason: string | null;
}

export type ProcessLifecycleEvent =
  | { type: "process.migrate"; to: number }
  | { type: "migration.done"; to: number; epoch: number }
  | { type: "migration.failed"; reason: string }
  | { type: "process.end"; reason: string };

export type ProcessLifecycleState = "running" | "migrating" | "moved" | "ended";

export const processLifecycleMachine = setup({
  types: {
    context: {} as ProcessLifecycleContext,
    input: {} as ProcessLifecycleInput,
    events: {} as ProcessLifecycleEvent,
  },
}).createMachine({
  id: "process",
  context: ({ input }) => ({
    ...input,
    migratingTo: null,
    movedTo: null,
    migrations: 0,
    failedMigrations: 0,
    reason: null,
  }),
  initial: "running",
  states: {
    running: {
      on: {
        "process.migrate": {
          target: "migrating",
          actions: assign({ migratingTo: ({ event }) => event.to }),
        },
        "process.end": { target: "ended", actions: assign({ reason: ({ event }) => event.reason }) },
      },
    },
    migrating: {
      on: {
        "migration.done": {
          target: "moved",
          actions: assign({
            movedTo: ({ event }) => event.to,
            epoch: ({ event }) => event.epoch,
            migratingTo: null,
            migrations: ({ context }) => context.migrations + 1,
          }),
        },
        "migration.failed": {
          target: "running",
          actions: assign({
            migratingTo: null,
            failedMigrations: ({ context }) => context.failedMigrations + 1,
            reason: ({ event }) => event.reason,
          }),
        },
      },
    },
    moved: { type: "final" },
    ended: { type: "final" },
  },
});

export type ProcessLifecycleMachine = typeof processLifecycleMachine;
