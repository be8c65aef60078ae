// The file store's coordinator role (SPEC 8, seed 002) as a lifecycle: standby
// until this node holds the term, coordinating while it does (it takes the
// clients' COMMIT, UPDATE and LS and repairs versions on a schedule), stopped
// with its node. Pure: the commit queue's depth per file and the repair
// schedule are decided here; subscribing, sweeping the catalog and answering
// are named actions the runtime provides (actors/files/coordinator.ts). When each record was written this term
// and which files are busy are the runtime's (Maps, not context: they grow with
// the files, and copying them on every commit cost O(files) per commit).
import { assign, cancel, raise, setup } from "xstate";
import type { NodeId } from "../protocol/messages.js";
import { notProvided } from "./notProvided.js";

export interface FileCoordinatorInput {
  readonly self: NodeId;
  /** Commits waiting for the same file; one more is refused EBUSY. */
  readonly maxQueuedPerFile: number;
  readonly repairEveryMs: number;
  /** The election's STATUS period: how stale a server's list of files may be. */
  readonly statusMs: number;
}

export interface FileCoordinatorContext extends FileCoordinatorInput {
  /** When this node's term began (its own clock): holders are judged from then on. */
  termStart: number;
  /** Per file, the commits admitted and not yet ended (run one at a time). */
  queued: Record<string, number>;
  /** A repair sweep is under way. */
  repairing: boolean;
  /** Round robin over the active servers a request is delegated to. */
  turn: number;
}

/** Who offered a commit: an opaque token the runtime maps back to the waiting request. */
export type CommitRef = string;

export type FileCoordinatorEvent =
  | { type: "coordinator.changed"; coordinator: NodeId | null; at: number }
  | { type: "server.left" }
  | { type: "repair.due" }
  | { type: "repair.done" }
  | { type: "commit.offered"; ref: CommitRef; name: string; size: number; at: number }
  | { type: "commit.ended"; name: string; size: number; at: number }
  | { type: "delegation.started" }
  | { type: "files.stop" };

/** The repair timer's id: rescheduling cancels the one pending. */
export const REPAIR_TIMER = "repair";

/** An own entry of a per-file record (a file may be named like an Object.prototype key). */
export function entryOf(record: Readonly<Record<string, number>>, name: string): number | undefined {
  return Object.hasOwn(record, name) ? record[name] : undefined;
}

function without(record: Readonly<Record<string, number>>, name: string): Record<string, number> {
  const rest = { ...record };
  delete rest[name];
  return rest;
}

export function initialFileCoordinator(input: FileCoordinatorInput): FileCoordinatorContext {
  return {
    ...input,
    termStart: 0,
    queued: {},
    repairing: false,
    turn: 0,
  };
}

export const fileCoordinatorMachine = setup({
  types: {
    context: {} as FileCoordinatorContext,
    input: {} as FileCoordinatorInput,
    events: {} as FileCoordinatorEvent,
  },
  delays: {
    repairEvery: ({ context }) => context.repairEveryMs,
  },
  guards: {
    mine: ({ context, event }) => event.type === "coordinator.changed" && event.coordinator === context.self,
    notMine: ({ context, event }) =>
      event.type === "coordinator.changed" && event.coordinator !== context.self,
    queueFull: ({ context, event }) =>
      event.type === "commit.offered" &&
      (entryOf(context.queued, event.name) ?? 0) >= context.maxQueuedPerFile,
    repairing: ({ context }) => context.repairing,
  },
  actions: {
    beginTerm: assign(({ event }) => ({
      termStart: event.type === "coordinator.changed" ? event.at : 0,
    })),
    queueCommit: assign(({ context, event }) => {
      if (event.type !== "commit.offered") return {};
      return {
        queued: { ...context.queued, [event.name]: (entryOf(context.queued, event.name) ?? 0) + 1 },
      };
    }),
    endCommit: assign(({ context, event }) => {
      if (event.type !== "commit.ended") return {};
      const depth = (entryOf(context.queued, event.name) ?? 1) - 1;
      return {
        queued: depth <= 0 ? without(context.queued, event.name) : { ...context.queued, [event.name]: depth },
      };
    }),
    nextTurn: assign(({ context }) => ({ turn: context.turn + 1 })),
    // Rescheduling cancels the pending repair first: a scheduled id is not replaced, it would fire twice.
    cancelRepair: cancel(REPAIR_TIMER),
    repairSoon: raise({ type: "repair.due" }, { id: REPAIR_TIMER, delay: 0 }),
    repairLater: raise({ type: "repair.due" }, { id: REPAIR_TIMER, delay: "repairEvery" }),
    startRepair: assign({ repairing: true }),
    endRepair: assign({ repairing: false }),
    /** Subscribe to the clients' COMMIT, UPDATE and LS (queue group). */
    takeClients: notProvided("action takeClients") as (_: unknown) => void,
    /** Unsubscribe from them: another node coordinates now. */
    leaveClients: notProvided("action leaveClients") as (_: unknown) => void,
    /** Sweep the catalog: repair versions with too few holders, then judge garbage; ends with repair.done. */
    sweep: notProvided("action sweep") as (_: unknown) => void,
    admitCommit: notProvided("action admitCommit") as (_: unknown, params: { ref: CommitRef }) => void,
    refuseCommit: notProvided("action refuseCommit") as (
      _: unknown,
      params: { ref: CommitRef; depth: number },
    ) => void,
  },
}).createMachine({
  id: "fileCoordinator",
  context: ({ input }) => initialFileCoordinator(input),
  initial: "standby",
  on: {
    "commit.offered": [
      {
        guard: "queueFull",
        actions: {
          type: "refuseCommit",
          params: ({ context, event }) => ({
            ref: event.ref,
            depth: entryOf(context.queued, event.name) ?? 0,
          }),
        },
      },
      { actions: ["queueCommit", { type: "admitCommit", params: ({ event }) => ({ ref: event.ref }) }] },
    ],
    "commit.ended": { actions: "endCommit" },
    "delegation.started": { actions: "nextTurn" },
    "repair.done": { actions: "endRepair" },
  },
  states: {
    standby: {
      on: {
        "coordinator.changed": { guard: "mine", target: "coordinating" },
        "files.stop": { target: "stopped" },
      },
    },
    coordinating: {
      entry: ["takeClients", "beginTerm", "cancelRepair", "repairSoon"],
      on: {
        "coordinator.changed": { guard: "notMine", target: "standby", actions: "leaveClients" },
        // A server that left may have held versions: look for them at once.
        "server.left": { actions: ["cancelRepair", "repairSoon"] },
        "repair.due": [
          { guard: "repairing", actions: ["cancelRepair", "repairLater"] },
          { actions: ["startRepair", "sweep"] },
        ],
        "repair.done": { actions: ["endRepair", "cancelRepair", "repairLater"] },
        "files.stop": { target: "stopped", actions: "leaveClients" },
      },
      exit: "cancelRepair",
    },
    stopped: {},
  },
});

export type FileCoordinatorMachine = typeof fileCoordinatorMachine;
