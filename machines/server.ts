// The server role (seed 002), one per node: `starting` (SERVER sent to the
// registry), `worker` (an active or passive server under a coordinator),
// `candidate` (an election is on) and `coordinator` (holds a term). It keeps
// the list of servers from SERVER and ALIVE, answers STATUS and PING with
// ALIVE, and drops coordinator messages from epochs older than one it knows.
// A coordinator holds a lease: valid until `sentAt + leaseMs - marginMs` of its
// last acknowledged renewal, where `sentAt` precedes the store write that every
// other node's lease timer starts after; it steps down by itself when that
// passes, and on any sign of a newer term. Pure: time arrives in events, every
// effect is a named action (actors/election.ts performs them), and
// `serverTickDue` says when the next `clock.tick` would do anything, so the
// runtime ticks only then.
import { assign, enqueueActions, setup } from "xstate";
import type { HeldFile, NodeId, ServerType } from "../protocol/messages.js";
import { earliest, isDue } from "./due.js";
import type { ElectionTimings } from "./electionTimings.js";
import { notProvided } from "./notProvided.js";
import type { RegistryAnswer } from "./registry.js";

export interface ServerRecord {
  type: ServerType;
  incarnation: number;
  files: HeldFile[];
  seenAt: number;
}

export interface Lease {
  /** The store revision this coordinator last wrote (the next renewal's expected revision). */
  revision: number;
  validUntil: number;
  renewing: boolean;
  lastRenewAt: number;
}

export interface ServerInput {
  readonly self: NodeId;
  readonly incarnation: number;
  readonly type: ServerType;
  readonly timings: ElectionTimings;
  readonly at: number;
}

export interface ServerContext {
  readonly self: NodeId;
  readonly incarnation: number;
  readonly type: ServerType;
  readonly timings: ElectionTimings;
  /** Whom this server takes for the coordinator, and its epoch (0: none known). */
  coordinator: NodeId | null;
  epoch: number;
  /** The highest epoch heard of: coordinator messages from older epochs are dropped. */
  highestEpoch: number;
  lease: Lease | null;
  /** Other servers, keyed by node id as a string (plain data). */
  servers: Record<string, ServerRecord>;
  /** When the next SERVER or ELECTED goes to the registry. */
  askAt: number;
  asking: boolean;
  retryMs: number;
  /** When the coordinator last sent STATUS. */
  statusAt: number;
  /** Coordinator messages dropped for an old epoch. */
  dropped: number;
  /** Why the last term of this server ended, for logs and tests. */
  stepDown: string | null;
}

export type PeerMessage =
  | { kind: "SERVER"; from: NodeId; incarnation: number; epoch: number; server: ServerType }
  | {
      kind: "ALIVE";
      from: NodeId;
      incarnation: number;
      epoch: number;
      server: ServerType;
      coordinator: NodeId | null;
      files: HeldFile[];
    }
  | { kind: "STATUS"; from: NodeId; incarnation: number; epoch: number }
  | { kind: "PING"; from: NodeId; incarnation: number; epoch: number }
  | { kind: "ELECTION"; from: NodeId; incarnation: number; epoch: number }
  | { kind: "ELECTED"; from: NodeId; incarnation: number; epoch: number };

export type ServerEvent =
  | { type: "clock.tick"; at: number }
  /** The registry's answer to this server's SERVER or ELECTED, sent at `sentAt`. */
  | { type: "registry.answer"; answer: RegistryAnswer; sentAt: number; at: number }
  /** What this node's registry vouches for now (after each change it sees). */
  | { type: "registry.view"; coordinator: NodeId | null; epoch: number; live: boolean; at: number }
  | { type: "lease.renewed"; revision: number; sentAt: number; at: number }
  /** The store holds a revision this coordinator did not write: it was replaced. */
  | { type: "lease.conflict"; at: number }
  | { type: "lease.unavailable"; at: number }
  | { type: "peer.message"; message: PeerMessage; reply: string | null; at: number }
  | { type: "peer.gone"; node: NodeId; at: number }
  | { type: "server.stop"; at: number };

export type OutgoingServerMessage = "SERVER" | "ALIVE" | "STATUS" | "ELECTION" | "ELECTED";

export function initialServer(input: ServerInput): ServerContext {
  return {
    self: input.self,
    incarnation: input.incarnation,
    type: input.type,
    timings: input.timings,
    coordinator: null,
    epoch: 0,
    highestEpoch: 0,
    lease: null,
    servers: {},
    askAt: input.at,
    asking: false,
    retryMs: input.timings.retryMs,
    statusAt: input.at,
    dropped: 0,
    stepDown: null,
  };
}

/** Whether this server may act as coordinator at `at`: it holds a term whose lease has not run out. */
export function holdsValidLease(context: ServerContext, at: number): boolean {
  return context.lease !== null && at < context.lease.validUntil;
}

/** The states of the server role, as its snapshot's `value` names them. */
export type ServerState = "starting" | "worker" | "candidate" | "coordinator" | "stopped";

/** When a starting server or a candidate asks its registry next (undefined: an ask is under way). */
const askDueAt = (context: ServerContext): number | undefined => (context.asking ? undefined : context.askAt);

/** When a coordinator renews its lease next (undefined: a renewal is under way). */
const renewDueAt = (lease: Lease, timings: ElectionTimings): number | undefined =>
  lease.renewing ? undefined : lease.lastRenewAt + timings.renewMs;

/** When a coordinator sends STATUS next. */
const statusDueAt = (context: ServerContext): number => context.statusAt + context.timings.statusMs;

/**
 * The first instant at which a `clock.tick` would change this server in
 * `state`: its next ask (starting, candidate), or its lease running out, its
 * next renewal or STATUS (coordinator). Null when no tick would until another
 * event arrives (worker, stopped). A tick at or after that instant does what it
 * is due; one before it does nothing.
 */
export function serverTickDue(state: ServerState, context: ServerContext): number | undefined {
  switch (state) {
    case "starting":
    case "candidate":
      return askDueAt(context);
    case "coordinator": {
      const lease = context.lease;
      if (lease === null) return undefined;
      return earliest(lease.validUntil, renewDueAt(lease, context.timings), statusDueAt(context));
    }
    default:
      return undefined;
  }
}

/** The servers a candidate ranks itself among: those heard within three STATUS periods, and itself. */
export function candidateRank(context: ServerContext, at: number, excluded: NodeId | null): number {
  const horizon = context.timings.statusMs * 3;
  const live = Object.entries(context.servers)
    .filter(([id, s]) => at - s.seenAt <= horizon && Number(id) !== excluded)
    .map(([id, s]) => ({ id: Number(id), type: s.type }));
  live.push({ id: context.self, type: context.type });
  // Active servers first (the coordinator delegates to actives), then the lowest id.
  live.sort((a, b) => (a.type === b.type ? a.id - b.id : a.type === "active" ? -1 : 1));
  return live.findIndex((s) => s.id === context.self);
}

/** An effect of the server role, as the machine's named actions take it. */
export type ServerOutput =
  | { type: "askRegistry"; params: { message: "SERVER" | "ELECTED"; sentAt: number } }
  | { type: "startElection"; params: { epoch: number } }
  | { type: "broadcast"; params: { message: OutgoingServerMessage; epoch: number } }
  | { type: "replyAlive"; params: { reply: string } }
  | { type: "renewLease"; params: { expected: number; epoch: number; sentAt: number } }
  | { type: "releaseLease"; params: { expected: number; epoch: number } }
  | { type: "announce"; params: { coordinator: NodeId | null; epoch: number; cause: string } };

interface Step {
  readonly context: ServerContext;
  readonly outputs: ServerOutput[];
}

const copy = (context: ServerContext): ServerContext => structuredClone(context);

/** A coordinator message from a term older than one this server knows. */
const isOld = (context: ServerContext, epoch: number): boolean => epoch < context.highestEpoch;

/** A message from another server: the list of servers, STATUS/PING answered, old epochs dropped. */
export function onPeerMessage(
  context: ServerContext,
  message: PeerMessage,
  reply: string | null,
  at: number,
): Step {
  const next = copy(context);
  const outputs: ServerOutput[] = [];
  if (message.from === next.self) {
    // This node's own registry checking its coordinator (a FAILED about it): alive, of course.
    if (message.kind === "PING" && reply !== null) outputs.push({ type: "replyAlive", params: { reply } });
    return { context: next, outputs };
  }
  const fromCoordinator = message.kind === "STATUS" || message.kind === "ELECTED";
  if (fromCoordinator && isOld(next, message.epoch)) {
    next.dropped++;
    return { context: next, outputs };
  }
  const known = next.servers[String(message.from)];
  if (message.kind === "SERVER" || message.kind === "ALIVE") {
    next.servers[String(message.from)] = {
      type: message.server,
      incarnation: message.incarnation,
      files: message.kind === "ALIVE" ? message.files : (known?.files ?? []),
      seenAt: at,
    };
  } else if (known !== undefined) {
    known.seenAt = at;
  }
  if (fromCoordinator) {
    next.highestEpoch = Math.max(next.highestEpoch, message.epoch);
    if (next.lease === null) {
      next.coordinator = message.from;
      next.epoch = message.epoch;
    }
  }
  if (message.kind === "ELECTION" && next.coordinator !== null && message.epoch >= next.epoch) {
    // The coordinator of that term is gone: drop it from the list (seed: "borran al principal caído").
    delete next.servers[String(next.coordinator)];
  }
  if ((message.kind === "STATUS" || message.kind === "PING") && reply !== null) {
    outputs.push({ type: "replyAlive", params: { reply } });
  } else if (message.kind === "STATUS") {
    // The coordinator's STATUS goes to every server: so does the ALIVE, and every list stays current.
    outputs.push({ type: "broadcast", params: { message: "ALIVE", epoch: next.highestEpoch } });
  }
  return { context: next, outputs };
}

function noteView(next: ServerContext, coordinator: NodeId | null, epoch: number): void {
  next.highestEpoch = Math.max(next.highestEpoch, epoch);
  if (next.lease === null && epoch >= next.epoch) {
    next.coordinator = coordinator;
    next.epoch = epoch;
  }
}

function endTerm(context: ServerContext, cause: string): Step {
  const next = copy(context);
  const outputs: ServerOutput[] = [];
  if (next.lease !== null)
    outputs.push({ type: "announce", params: { coordinator: null, epoch: next.epoch, cause } });
  next.lease = null;
  next.stepDown = cause;
  if (next.coordinator === next.self) next.coordinator = null;
  return { context: next, outputs };
}

type Enqueue = (action: never) => void;

function run(step: Step, enqueue: Enqueue): void {
  enqueue({ type: "setContext", params: step.context } as never);
  for (const o of step.outputs) enqueue(o as never);
}

const eventAt = (event: ServerEvent): number => event.at;

/** When a granted term's lease starts: when its confirming write, if any, was sent, or else when this server asked. */
const leaseFrom = (event: Extract<ServerEvent, { type: "registry.answer" }>): number =>
  event.answer.type === "COORD" && event.answer.confirmedAt !== undefined
    ? Math.max(event.sentAt, event.answer.confirmedAt)
    : event.sentAt;

export const serverMachine = setup({
  types: {
    context: {} as ServerContext,
    input: {} as ServerInput,
    events: {} as ServerEvent,
  },
  actions: {
    /**
     * A step's new context (or part of it). A named assign, made once here:
     * `enqueue.assign` would create one per event, which XState warns about
     * whenever the event arrives from inside another actor's action.
     */
    setContext: assign((_, params: Partial<ServerContext>) => params),
    /** Remember what the registry vouches for (the highest epoch, and the coordinator when this server holds no term). */
    noteView: assign(({ context, event }) => {
      const next = copy(context);
      if (event.type === "registry.view") noteView(next, event.coordinator, event.epoch);
      // OK from the registry: work under the coordinator it names.
      else if (event.type === "registry.answer" && event.answer.type === "OK") {
        noteView(next, event.answer.coordinator, event.answer.epoch);
      } else return {};
      return next;
    }),
    /** NOTHING (or OK naming this server): ask again later, each time twice as late, up to the cap. */
    retryLater: assign(({ context, event }) => ({
      asking: false,
      askAt: event.at + context.retryMs,
      retryMs: Math.min(context.retryMs * 2, context.timings.retryMaxMs),
    })),
    markAsking: assign({ asking: true }),
    /** Send SERVER or ELECTED to this node's registry; its answer comes back as `registry.answer`. */
    askRegistry: notProvided("action askRegistry") as (
      _: unknown,
      params: { message: "SERVER" | "ELECTED"; sentAt: number },
    ) => void,
    /** ELECTION: tell this node's registry (it clears an expired coordinator) and the other servers. */
    startElection: notProvided("action startElection") as (_: unknown, params: { epoch: number }) => void,
    /** Broadcast to every server, with this server's epoch. */
    broadcast: notProvided("action broadcast") as (
      _: unknown,
      params: { message: OutgoingServerMessage; epoch: number },
    ) => void,
    /** Answer a STATUS or PING with ALIVE. */
    replyAlive: notProvided("action replyAlive") as (_: unknown, params: { reply: string }) => void,
    renewLease: notProvided("action renewLease") as (
      _: unknown,
      params: { expected: number; epoch: number; sentAt: number },
    ) => void,
    /** Give the term back at a graceful stop, so the next election need not wait for the lease. */
    releaseLease: notProvided("action releaseLease") as (
      _: unknown,
      params: { expected: number; epoch: number },
    ) => void,
    /** COORDINATOR event and log: `coordinator` null means this server stepped down. */
    announce: notProvided("action announce") as (
      _: unknown,
      params: { coordinator: NodeId | null; epoch: number; cause: string },
    ) => void,
  },
  guards: {
    /** A grant whose lease has not already run out by the time it arrives (a slow store can make it late). */
    coord: ({ context, event }) =>
      event.type === "registry.answer" &&
      event.answer.type === "COORD" &&
      event.at < leaseFrom(event) + context.timings.leaseMs - context.timings.marginMs,
    toldOther: ({ context, event }) =>
      event.type === "registry.answer" &&
      event.answer.type === "OK" &&
      event.answer.coordinator !== context.self,
    leaseRanOut: ({ context, event }) => !holdsValidLease(context, eventAt(event)),
    /** The registry vouches for no coordinator (none, given back, or its lease ran out). */
    noCoordinator: ({ event }) => event.type === "registry.view" && !event.live,
    /** Someone else holds a live term, at least as new as any this server knows. */
    otherCoordinator: ({ context, event }) =>
      event.type === "registry.view" &&
      event.live &&
      event.coordinator !== context.self &&
      event.epoch >= context.highestEpoch,
    /** A newer term than this coordinator's exists. */
    replaced: ({ context, event }) =>
      (event.type === "registry.view" && event.epoch > context.epoch) ||
      (event.type === "peer.message" &&
        (event.message.kind === "ELECTED" || event.message.kind === "STATUS") &&
        event.message.from !== context.self &&
        event.message.epoch > context.epoch),
    askDue: ({ context, event }) => isDue(askDueAt(context), eventAt(event)),
  },
}).createMachine({
  id: "server",
  context: ({ input }) => initialServer(input),
  initial: "starting",
  on: {
    "peer.message": {
      actions: enqueueActions(({ context, event, enqueue }) =>
        run(onPeerMessage(context, event.message, event.reply, event.at), enqueue as never),
      ),
    },
    "peer.gone": {
      actions: assign(({ context, event }) => {
        const servers = { ...context.servers };
        delete servers[String(event.node)];
        return { servers };
      }),
    },
    "registry.view": { actions: "noteView" },
  },
  states: {
    starting: {
      entry: enqueueActions(({ context, enqueue }) => {
        enqueue({ type: "broadcast", params: { message: "SERVER", epoch: context.highestEpoch } });
      }),
      on: {
        "clock.tick": {
          guard: "askDue",
          actions: [
            "markAsking",
            { type: "askRegistry", params: ({ event }) => ({ message: "SERVER", sentAt: event.at }) },
          ],
        },
        "registry.answer": [
          { guard: "coord", target: "coordinator" },
          { guard: "toldOther", target: "worker", actions: "noteView" },
          { actions: "retryLater" },
        ],
        "server.stop": { target: "stopped" },
      },
    },
    worker: {
      entry: assign({ asking: false }),
      on: {
        // A grant that arrives after this server gave up asking is still a term: take it.
        "registry.answer": { guard: "coord", target: "coordinator" },
        "registry.view": {
          guard: "noCoordinator",
          target: "candidate",
          actions: enqueueActions(({ context, event, enqueue }) => {
            const next = copy(context);
            noteView(next, event.coordinator, event.epoch);
            enqueue({ type: "setContext", params: next });
            // The record names a coordinator whose lease ran out: ELECTION clears it in the registry.
            if (event.coordinator !== null)
              enqueue({ type: "startElection", params: { epoch: event.epoch } });
          }),
        },
        "server.stop": { target: "stopped" },
      },
    },
    candidate: {
      entry: assign(({ context, event }) => {
        const excluded = event.type === "registry.view" ? event.coordinator : null;
        const rank = Math.max(0, candidateRank(context, event.at, excluded));
        return {
          askAt: event.at + rank * context.timings.staggerMs,
          asking: false,
          retryMs: context.timings.retryMs,
        };
      }),
      on: {
        "clock.tick": {
          guard: "askDue",
          actions: [
            "markAsking",
            { type: "askRegistry", params: ({ event }) => ({ message: "ELECTED", sentAt: event.at }) },
          ],
        },
        "registry.answer": [
          { guard: "coord", target: "coordinator" },
          { guard: "toldOther", target: "worker", actions: "noteView" },
          { actions: "retryLater" },
        ],
        "registry.view": [
          { guard: "otherCoordinator", target: "worker", actions: "noteView" },
          {
            // The record was cleared (ELECTION): ask again now, in rank order, not after the retry delay.
            guard: ({ context, event }) => event.coordinator === null && !context.asking,
            actions: [
              "noteView",
              assign(({ context, event }) => ({
                askAt: Math.min(
                  context.askAt,
                  event.at + Math.max(0, candidateRank(context, event.at, null)) * context.timings.staggerMs,
                ),
              })),
            ],
          },
          {
            guard: ({ event }) => !event.live && event.coordinator !== null,
            actions: [
              "noteView",
              enqueueActions(({ event, enqueue }) => {
                enqueue({ type: "startElection", params: { epoch: event.epoch } });
              }),
            ],
          },
          { actions: "noteView" },
        ],
        "server.stop": { target: "stopped" },
      },
    },
    coordinator: {
      entry: enqueueActions(({ context, event, enqueue }) => {
        if (event.type !== "registry.answer" || event.answer.type !== "COORD") return;
        const epoch = event.answer.epoch;
        const next = copy(context);
        const from = leaseFrom(event);
        next.lease = {
          revision: event.answer.revision,
          validUntil: from + next.timings.leaseMs - next.timings.marginMs,
          renewing: false,
          lastRenewAt: from,
        };
        next.coordinator = next.self;
        next.epoch = epoch;
        next.highestEpoch = Math.max(next.highestEpoch, epoch);
        next.asking = false;
        next.stepDown = null;
        next.statusAt = event.at;
        enqueue({ type: "setContext", params: next });
        enqueue({ type: "announce", params: { coordinator: next.self, epoch, cause: "elected" } });
        enqueue({ type: "broadcast", params: { message: "ELECTED", epoch } });
        enqueue({ type: "broadcast", params: { message: "STATUS", epoch } });
      }),
      on: {
        "clock.tick": [
          {
            guard: "leaseRanOut",
            target: "worker",
            actions: enqueueActions(({ context, enqueue }) =>
              run(endTerm(context, "lease expired"), enqueue as never),
            ),
          },
          {
            actions: enqueueActions(({ context, event, enqueue }) => {
              const lease = context.lease;
              if (lease === null) return;
              if (isDue(renewDueAt(lease, context.timings), event.at)) {
                enqueue({
                  type: "setContext",
                  params: { lease: { ...lease, renewing: true, lastRenewAt: event.at } },
                });
                enqueue({
                  type: "renewLease",
                  params: { expected: lease.revision, epoch: context.epoch, sentAt: event.at },
                });
              }
              if (isDue(statusDueAt(context), event.at)) {
                enqueue({ type: "setContext", params: { statusAt: event.at } });
                enqueue({ type: "broadcast", params: { message: "STATUS", epoch: context.epoch } });
              }
            }),
          },
        ],
        "lease.renewed": {
          actions: assign(({ context, event }) => {
            const lease = context.lease;
            if (lease === null) return {};
            const validUntil = event.sentAt + context.timings.leaseMs - context.timings.marginMs;
            return {
              lease: {
                ...lease,
                revision: event.revision,
                renewing: false,
                validUntil: Math.max(lease.validUntil, validUntil),
              },
            };
          }),
        },
        "lease.unavailable": {
          actions: assign(({ context }) => ({
            lease: context.lease && { ...context.lease, renewing: false },
          })),
        },
        "lease.conflict": {
          target: "worker",
          actions: enqueueActions(({ context, enqueue }) =>
            run(endTerm(context, "replaced"), enqueue as never),
          ),
        },
        "registry.view": {
          guard: "replaced",
          target: "worker",
          actions: enqueueActions(({ context, event, enqueue }) => {
            const step = endTerm(context, "replaced");
            noteView(step.context, event.coordinator, event.epoch);
            run(step, enqueue as never);
          }),
        },
        "peer.message": {
          guard: "replaced",
          target: "worker",
          actions: enqueueActions(({ context, event, enqueue }) => {
            const step = endTerm(context, "replaced");
            const after = onPeerMessage(step.context, event.message, event.reply, event.at);
            run({ context: after.context, outputs: [...step.outputs, ...after.outputs] }, enqueue as never);
          }),
        },
        "server.stop": {
          target: "stopped",
          actions: enqueueActions(({ context, enqueue }) => {
            if (context.lease !== null) {
              enqueue({
                type: "releaseLease",
                params: { expected: context.lease.revision, epoch: context.epoch },
              });
            }
            run(endTerm(context, "stopped"), enqueue as never);
          }),
        },
      },
    },
    stopped: { type: "final" },
  },
});

export type ServerMachine = typeof serverMachine;
