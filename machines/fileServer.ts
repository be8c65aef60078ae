// The file store's server side (SPEC 8, seed 002) as a lifecycle: every server
// is a holder (REPLICA, READ, DISCARD, COMMITTED) and an active one also places
// replicas and finds holders (COMMIT, REPAIR, UPDATE). Pure: how many peer
// sessions run (one more than `maxSessions` is answered BUSY) and whether the
// server has stopped; running a session and answering BUSY are named actions
// the runtime provides (actors/files/fileService.ts). When each held replica's
// hash was last checked is the holder's cache (a Map), not machine context: it
// grows with the replicas held, and copying it on every check cost ~0.8 ms at
// 2,000 replicas.
import { assign, setup } from "xstate";
import { notProvided } from "./notProvided.js";

export interface FileServerInput {
  /** Sessions (COMMIT, REPLICA, UPDATE, REPAIR) run at once. */
  readonly maxSessions: number;
}

export interface FileServerContext extends FileServerInput {
  /** Sessions under way. */
  running: number;
}

/** Who asked for a session: an opaque token the runtime maps back to the peer message and its reply. */
export type SessionRef = string;

export type FileServerEvent =
  | { type: "session.offered"; ref: SessionRef }
  | { type: "session.ended" }
  | { type: "files.stop" };

export function initialFileServer(input: FileServerInput): FileServerContext {
  return { ...input, running: 0 };
}

/** Whether a held replica last checked at `checkedAt` (never: undefined) must be checked before it is served at `at`. */
export function checkDue(checkedAt: number | undefined, at: number, verifyEveryMs: number): boolean {
  return checkedAt === undefined || at - checkedAt >= verifyEveryMs;
}

export const fileServerMachine = setup({
  types: {
    context: {} as FileServerContext,
    input: {} as FileServerInput,
    events: {} as FileServerEvent,
  },
  guards: {
    full: ({ context }) => context.running >= context.maxSessions,
  },
  actions: {
    openSession: assign(({ context }) => ({ running: context.running + 1 })),
    closeSession: assign(({ context }) => ({ running: context.running - 1 })),
    /** Run the session `ref` names and answer it; ends with session.ended. */
    runSession: notProvided("action runSession") as (_: unknown, params: { ref: SessionRef }) => void,
    /** Answer the session `ref` names BUSY. */
    refuseSession: notProvided("action refuseSession") as (_: unknown, params: { ref: SessionRef }) => void,
  },
}).createMachine({
  id: "fileServer",
  context: ({ input }) => initialFileServer(input),
  initial: "serving",
  on: {
    // Sessions already admitted run to their end after a stop (their answers are still owed).
    "session.offered": [
      { guard: "full", actions: { type: "refuseSession", params: ({ event }) => ({ ref: event.ref }) } },
      { actions: ["openSession", { type: "runSession", params: ({ event }) => ({ ref: event.ref }) }] },
    ],
    "session.ended": { actions: "closeSession" },
  },
  states: {
    serving: {
      on: { "files.stop": { target: "stopped" } },
    },
    // A stopped server drops no more copies: its replica store is closing.
    stopped: {},
  },
});

export type FileServerMachine = typeof fileServerMachine;
