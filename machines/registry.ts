// The registry role (seed 002's DNS), one per node: its node's window on the
// coordinator record in the store. It answers WHO, decides SERVER and ELECTED
// (a term is granted only when there is no live coordinator: none recorded,
// or one whose lease ran out, which the grant writes over), and checks a
// coordinator a client reports FAILED. It never writes to end a term that ran
// out: on nats-server before 2.9.21 such a write, racing a grant that expects
// the same revision, could pass too and land after the new term
// (nats-io/nats-server#4320), putting an older epoch back in the record. The
// record itself lives in a compare-and-set store, so every node's registry is
// the same registry; this machine only caches what it read and
// asks for writes. Pure: time arrives in events (`at`), store operations and
// answers are named actions the runtime performs (actors/election.ts), and
// their results come back as events; `registryTickDue` says when time alone
// next changes anything here, so the runtime ticks only then.
import { assign, enqueueActions, setup } from "xstate";
import type { NodeId } from "../protocol/messages.js";
import { earliest, isDue } from "./due.js";
import { notProvided } from "./notProvided.js";

/** The coordinator record as read from the store, with its epoch resolved. */
export interface RegistryRecord {
  readonly coordinator: NodeId | null;
  readonly epoch: number;
  readonly revision: number;
  /**
   * The entry at `revision` could not be read (garbage bytes, or a record that
   * fails the schema). Its holder is unknown, so it is treated as a term held
   * by nobody known: it expires one lease after it was first seen, and then the
   * next election replaces it with a compare-and-set on its revision.
   */
  readonly malformed?: true;
}

export interface RegistryInput {
  readonly self: NodeId;
  /** How long a coordinator's record stays live without a new revision. */
  readonly leaseMs: number;
  /**
   * How long after a write that opens a term its confirmation is sent (0: no
   * confirmation). nats-server before 2.9.21 can let two compare-and-sets that
   * expect one revision both pass within a Raft round (nats-io/nats-server#4320):
   * a term opens only once a second write, expecting the first one's revision,
   * passes too, sent when the rival's write, if any, has landed.
   */
  readonly confirmMs?: number;
  readonly at: number;
}

/** Who asked: an opaque token the runtime maps back to a reply subject or a waiting caller. */
export type Ref = string;

export interface PendingWrite {
  readonly kind: "acquire" | "confirm";
  /** The candidate. */
  readonly node: NodeId;
  readonly ref: Ref | null;
  /** When a confirming write was sent. */
  readonly sentAt?: number;
}

/** A term written for a candidate, waiting to be confirmed at `dueAt`. */
export interface PendingConfirm {
  readonly node: NodeId;
  readonly ref: Ref | null;
  readonly epoch: number;
  readonly revision: number;
  readonly dueAt: number;
}

export interface RegistryContext {
  readonly self: NodeId;
  readonly leaseMs: number;
  readonly confirmMs: number;
  /** Whether the store was read at least once (an unread store is not an empty one). */
  loaded: boolean;
  /** The newest record seen; null when the store holds none. */
  record: RegistryRecord | null;
  /** When this node first saw `record.revision`: the record is live until `seenAt + leaseMs`. */
  seenAt: number;
  /** When the store last answered (a watch delivery or a read). */
  heardAt: number;
  reading: boolean;
  /** An epoch a FAILED named and a PING could not reach: WHO says NOTHING for it. */
  suspect: number | null;
  /** Writes under way, by operation id. */
  writes: Record<string, PendingWrite>;
  nextOp: number;
  /** Terms this registry wrote, waiting for their confirmation to be sent. */
  confirms: PendingConfirm[];
}

export type RegistryAnswer =
  /** The asker holds a new term: `revision` is the write that opened it (its first lease renewal expects it). */
  | {
      readonly type: "COORD";
      readonly epoch: number;
      readonly revision: number;
      /** When the confirming write was sent (this node's clock): the term's lease counts from then. */
      readonly confirmedAt?: number;
    }
  | { readonly type: "OK"; readonly coordinator: NodeId; readonly epoch: number }
  | { readonly type: "NOTHING" };

export type RegistryEvent =
  | { type: "store.entry"; record: RegistryRecord | null; at: number }
  | { type: "store.unavailable"; at: number }
  | { type: "store.written"; op: string; record: RegistryRecord; at: number }
  /** `current`: the revision the store says the key holds, when it said. */
  | { type: "store.conflict"; op: string; current?: number; at: number }
  | { type: "store.failed"; op: string; at: number }
  | { type: "WHO"; ref: Ref; at: number }
  | { type: "SERVER"; from: NodeId; ref: Ref; at: number }
  | { type: "ELECTED"; from: NodeId; ref: Ref; at: number }
  | { type: "FAILED"; coordinator: NodeId; epoch: number; ref: Ref; at: number }
  | { type: "ping.answered"; epoch: number; ref: Ref; at: number }
  | { type: "ping.failed"; epoch: number; ref: Ref; at: number }
  | { type: "clock.tick"; at: number };

/** A write the runtime performs: `expected` null means create (the key was never written). */
export interface StoreWrite {
  readonly op: string;
  readonly expected: number | null;
  readonly coordinator: NodeId | null;
  /** The term's epoch (a confirmation), or null to open a term whose epoch is the write's revision. */
  readonly epoch: number | null;
}

export type RegistryOutput =
  | { type: "answer"; ref: Ref; answer: RegistryAnswer }
  | { type: "write"; write: StoreWrite }
  | { type: "read" }
  | { type: "ping"; coordinator: NodeId; epoch: number; ref: Ref };

export function initialRegistry(input: RegistryInput): RegistryContext {
  return {
    self: input.self,
    leaseMs: input.leaseMs,
    confirmMs: input.confirmMs ?? 0,
    loaded: false,
    record: null,
    seenAt: input.at,
    heardAt: input.at,
    reading: false,
    suspect: null,
    writes: {},
    nextOp: 1,
    confirms: [],
  };
}

/** When the record's lease runs out in this node's eyes: one lease after it first saw the revision. */
const leaseEndsAt = (context: RegistryContext): number => context.seenAt + context.leaseMs;

/** The coordinator this registry vouches for at `at`, or null (none, expired, or suspect). */
export function liveCoordinator(context: RegistryContext, at: number): RegistryRecord | null {
  const r = context.record;
  if (r === null || r.coordinator === null) return null;
  if (at >= leaseEndsAt(context)) return null;
  if (context.suspect === r.epoch) return null;
  return r;
}

/** What the registry vouches for, as the server role hears it (`registry.view`). */
export interface RegistryView {
  readonly coordinator: NodeId | null;
  readonly epoch: number;
  readonly live: boolean;
}

/** What this registry vouches for at `at`; null until it has read the store (unread is not empty). */
export function registryView(context: RegistryContext, at: number): RegistryView | null {
  if (!context.loaded) return null;
  const r = context.record;
  return {
    coordinator: r?.coordinator ?? null,
    epoch: r?.epoch ?? 0,
    live: liveCoordinator(context, at) !== null,
  };
}

/**
 * Whether the record may stand for a term: it names a coordinator, or it is
 * unreadable and so might have been written over a live one.
 */
function occupied(record: RegistryRecord): boolean {
  return record.coordinator !== null || record.malformed === true;
}

/** Whether the record names a coordinator (or is unreadable) and its lease ran out in this node's eyes. */
export function expired(context: RegistryContext, at: number): boolean {
  const r = context.record;
  return r !== null && occupied(r) && at >= leaseEndsAt(context);
}

/** When a tick re-reads the store, which has been quiet for half a lease (undefined: a read is under way). */
const rereadDueAt = (context: RegistryContext): number | undefined =>
  context.reading ? undefined : context.heardAt + context.leaseMs / 2;

/**
 * The first instant after `at` at which time alone changes this registry: a
 * `clock.tick` re-reads the store (a re-read already due is due at once), or
 * the record it holds runs out its lease, so WHO stops naming its coordinator
 * and an election may replace it. Undefined when only an event can change it.
 */
export function registryTickDue(context: RegistryContext, at: number): number | undefined {
  const r = context.record;
  const ends = r !== null && occupied(r) && leaseEndsAt(context) > at ? leaseEndsAt(context) : undefined;
  return earliest(rereadDueAt(context), ends, ...context.confirms.map((c) => c.dueAt));
}

function okOrNothing(context: RegistryContext, at: number): RegistryAnswer {
  const live = liveCoordinator(context, at);
  return live === null || live.coordinator === null
    ? { type: "NOTHING" }
    : { type: "OK", coordinator: live.coordinator, epoch: live.epoch };
}

function observe(context: RegistryContext, record: RegistryRecord | null, at: number): void {
  context.loaded = true;
  context.heardAt = at;
  context.reading = false;
  if (record === null) {
    // The store holds no record (never written, or deleted by hand): the next grant creates it.
    if (context.record !== null) {
      context.record = null;
      context.seenAt = at;
    }
    return;
  }
  // Watch deliveries and reads can cross: only a newer revision counts.
  if (context.record !== null && record.revision <= context.record.revision) return;
  context.record = record;
  context.seenAt = at;
  // A new revision, even a renewal of the suspect term, shows its coordinator reaches the store.
  context.suspect = null;
}

/**
 * The store refused a write because the key holds `current`, older than the
 * record this registry holds: the store went back. On nats-server 2.9 a
 * replica can miss an acknowledged write and later lead the stream, its
 * revisions then one or more behind what the others gave out
 * (docs/operations.md, "Chaos run"). Newer revisions only would be taken from
 * then on, so every write would expect a revision the store no longer has
 * and no term would ever be granted again. The record is taken as an
 * unreadable one at `current`, seen now: like any unreadable record it may
 * stand for a live term, so a grant (expecting `current`) waits one lease.
 */
function wentBack(context: RegistryContext, current: number | undefined, at: number): void {
  const r = context.record;
  if (current === undefined || r === null || current >= r.revision) return;
  // The key itself is gone (revision 0): the next grant creates it, as in a store never written.
  context.record =
    current < 1 ? null : { coordinator: null, epoch: current, revision: current, malformed: true };
  context.seenAt = at;
  context.suspect = null;
}

/** SERVER and ELECTED: grant a term only when there is no live coordinator (no double election). */
function acquire(context: RegistryContext, from: NodeId, ref: Ref, at: number, out: RegistryOutput[]): void {
  const live = liveCoordinator(context, at);
  if (live !== null && live.coordinator !== null) {
    out.push({
      type: "answer",
      ref,
      answer: { type: "OK", coordinator: live.coordinator, epoch: live.epoch },
    });
    return;
  }
  // A suspect coordinator whose lease has not run out keeps its term: granting now could make two.
  // So does an unreadable record, for one lease: it may have been written over a live coordinator.
  if (!context.loaded || (context.record !== null && occupied(context.record) && !expired(context, at))) {
    out.push({ type: "answer", ref, answer: { type: "NOTHING" } });
    if (!context.loaded && !context.reading) {
      context.reading = true;
      out.push({ type: "read" });
    }
    return;
  }
  const op = `${context.nextOp++}`;
  context.writes[op] = { kind: "acquire", node: from, ref };
  out.push({
    type: "write",
    write: { op, expected: context.record?.revision ?? null, coordinator: from, epoch: null },
  });
}

/** The confirmations due at `at`: each expects its term's own revision, so a rival's later write makes it fail. */
function sendConfirms(context: RegistryContext, at: number, out: RegistryOutput[]): void {
  const due = context.confirms.filter((c) => isDue(c.dueAt, at));
  if (due.length === 0) return;
  context.confirms = context.confirms.filter((c) => !isDue(c.dueAt, at));
  for (const c of due) {
    const op = `${context.nextOp++}`;
    context.writes[op] = { kind: "confirm", node: c.node, ref: c.ref, sentAt: at };
    out.push({ type: "write", write: { op, expected: c.revision, coordinator: c.node, epoch: c.epoch } });
  }
}

export function registryStep(context: RegistryContext, event: RegistryEvent): RegistryOutput[] {
  const out: RegistryOutput[] = [];
  switch (event.type) {
    case "store.entry":
      observe(context, event.record, event.at);
      break;
    case "store.unavailable":
      context.reading = false;
      break;
    case "store.written": {
      const write = context.writes[event.op];
      delete context.writes[event.op];
      observe(context, event.record, event.at);
      const { epoch, revision } = event.record;
      if (write?.kind === "acquire" && context.confirmMs > 0) {
        // Not a term yet: a rival's write that passed the same check may land after it.
        context.confirms.push({
          node: write.node,
          ref: write.ref,
          epoch,
          revision,
          dueAt: event.at + context.confirmMs,
        });
      } else if (write?.ref != null && (write.kind === "acquire" || write.kind === "confirm")) {
        const confirmedAt = write.sentAt === undefined ? {} : { confirmedAt: write.sentAt };
        out.push({
          type: "answer",
          ref: write.ref,
          answer: { type: "COORD", epoch, revision, ...confirmedAt },
        });
      }
      break;
    }
    case "store.conflict":
    case "store.failed": {
      const write = context.writes[event.op];
      delete context.writes[event.op];
      if (event.type === "store.conflict") wentBack(context, event.current, event.at);
      if (write?.ref != null)
        out.push({ type: "answer", ref: write.ref, answer: okOrNothing(context, event.at) });
      // Someone else wrote (or the answer was lost): read what the store holds now.
      if (!context.reading) {
        context.reading = true;
        out.push({ type: "read" });
      }
      break;
    }
    case "WHO":
      out.push({ type: "answer", ref: event.ref, answer: okOrNothing(context, event.at) });
      if (!context.loaded && !context.reading) {
        context.reading = true;
        out.push({ type: "read" });
      }
      break;
    case "SERVER":
    case "ELECTED":
      acquire(context, event.from, event.ref, event.at, out);
      break;
    case "FAILED": {
      const r = context.record;
      // Obsolete: a newer term exists, or the registry has already cleared that one.
      if (r === null || event.epoch !== r.epoch || r.coordinator !== event.coordinator) {
        out.push({ type: "answer", ref: event.ref, answer: okOrNothing(context, event.at) });
      } else {
        out.push({ type: "ping", coordinator: event.coordinator, epoch: event.epoch, ref: event.ref });
      }
      break;
    }
    case "ping.answered":
      if (context.suspect === event.epoch) context.suspect = null;
      out.push({ type: "answer", ref: event.ref, answer: okOrNothing(context, event.at) });
      break;
    case "ping.failed":
      if (context.record?.epoch === event.epoch) context.suspect = event.epoch;
      out.push({ type: "answer", ref: event.ref, answer: okOrNothing(context, event.at) });
      break;
    case "clock.tick":
      sendConfirms(context, event.at, out);
      // Watches are best effort: re-read when the store has been quiet for half a lease.
      if (isDue(rereadDueAt(context), event.at)) {
        context.reading = true;
        context.heardAt = event.at;
        out.push({ type: "read" });
      }
      break;
  }
  return out;
}

export const registryMachine = setup({
  types: {
    context: {} as RegistryContext,
    input: {} as RegistryInput,
    events: {} as RegistryEvent,
  },
  actions: {
    /**
     * The step's new context. A named assign, made once here: `enqueue.assign`
     * would create one per event, which XState warns about whenever the event
     * arrives from inside another actor's action (the election's server role).
     */
    setContext: assign((_, params: RegistryContext) => params),
    answer: notProvided("action answer") as (
      _: unknown,
      params: { ref: Ref; answer: RegistryAnswer },
    ) => void,
    write: notProvided("action write") as (_: unknown, params: StoreWrite) => void,
    read: notProvided("action read") as (_: unknown) => void,
    ping: notProvided("action ping") as (
      _: unknown,
      params: { coordinator: NodeId; epoch: number; ref: Ref },
    ) => void,
  },
}).createMachine({
  id: "registry",
  context: ({ input }) => initialRegistry(input),
  on: {
    "*": {
      actions: enqueueActions(({ context, event, enqueue }) => {
        const next = structuredClone(context);
        const outputs = registryStep(next, event);
        enqueue({ type: "setContext", params: next });
        for (const o of outputs) {
          if (o.type === "answer") enqueue({ type: "answer", params: { ref: o.ref, answer: o.answer } });
          else if (o.type === "write") enqueue({ type: "write", params: o.write });
          else if (o.type === "read") enqueue({ type: "read" });
          else enqueue({ type: "ping", params: { coordinator: o.coordinator, epoch: o.epoch, ref: o.ref } });
        }
      }),
    },
  },
});

export type RegistryMachine = typeof registryMachine;
