// The processes a node hosts, and what it knows of the others: the table every
// part of the process runtime shares (hosted processes, forwarding pointers of
// those that moved away, the location table), with the runtime's counters.
import type { Actor, AnyStateMachine } from "xstate";
import type { ProcessLifecycleMachine } from "../../machines/process.js";
import type { DvsEvent } from "../../machines/processEvents.js";
import type { ErrorName, NodeId } from "../../protocol/messages.js";
import type { Envelope, Location, Privileges, ProcessRecord } from "../../protocol/processes.js";
import type { TimerHandle } from "../../transport/clock.js";
import type { throttledWarn } from "../logger.js";
import { LocationTable, procKey } from "./locations.js";
import type { Mailbox } from "./mailbox.js";

/** A throttled warning, one line per key per interval (shared by the parts of a runtime). */
export type Warn = ReturnType<typeof throttledWarn>;

/** One process hosted here. */
export interface Hosted {
  readonly key: string;
  readonly dcid: number;
  readonly endpoint: number;
  readonly name: string;
  readonly machine: string;
  readonly logic: AnyStateMachine;
  readonly nr: number;
  readonly spawnedAt: number;
  readonly restored: boolean;
  /** The node it came from, when it arrived by migration. */
  readonly cameFrom: NodeId | undefined;
  /**
   * While its old host has not confirmed the move: that node. New messages are
   * held in `stash` (unacknowledged) and nothing is handed to the actor.
   */
  provisional: NodeId | undefined;
  readonly gen: number;
  epoch: number;
  priv: Privileges;
  /** Undefined while stopped for a move. */
  actor: Actor<AnyStateMachine> | undefined;
  readonly lifecycle: Actor<ProcessLifecycleMachine>;
  mailbox: Mailbox;
  /** Accepted in order, not yet handed to the actor. */
  queue: Envelope[];
  draining: boolean;
  /** While migrating: what arrived meanwhile, in arrival order. */
  stash: Envelope[];
  /** Who waits for the fate of each stashed message (same order as `stash`): its proxy acknowledgement. */
  stashWaiters: ((settled: ErrorName | undefined) => void)[];
  /** While migrating: the record shipped (what persists if the node stops meanwhile). */
  shipped: ProcessRecord | undefined;
  sendSeq: Record<string, number>;
  delivered: number;
  duplicates: number;
  gaps: number;
  refused: number;
  failed: boolean;
  getfrom: string | null;
  sendto: { dcid: number; endpoint: number } | null;
  gapTimer: TimerHandle | undefined;
}

/** Counters of the whole runtime (drops are also logged, throttled). */
export interface ProcessRuntimeStats {
  /** Messages for a process nobody knows, or that bounced too often. */
  undeliverable: number;
  /** Internal messages (announcements, migration offers) that could not be read. */
  badMessages: number;
  /** Replies to a process's requests that came back after it moved or ended. */
  lostReplies: number;
  /** Migrations done from here / failed. */
  migrationsOut: number;
  migrationsFailed: number;
  migrationsIn: number;
}

export class HostedTable {
  /** The processes hosted here, by `procKey`. */
  readonly hosted = new Map<string, Hosted>();
  /** Forwarding pointers of processes that moved away from here. */
  readonly moved = new Map<string, { to: NodeId; epoch: number }>();
  /** Where every process runs, as this node knows it. */
  readonly locations = new LocationTable();

  /** Whether `h` is still the copy hosted here (not ended, moved or replaced meanwhile). */
  isCurrent(h: Hosted): boolean {
    return this.hosted.get(h.key) === h;
  }

  /** Where to send a message for `key` that is not hosted here: the newer of pointer and table. */
  nextHop(key: string): NodeId | undefined {
    const [dcid, endpoint] = key.split(":").map(Number) as [number, number];
    const entry = this.locations.get(dcid, endpoint);
    const pointer = this.moved.get(key);
    if (entry !== undefined && (pointer === undefined || entry.epoch > pointer.epoch)) {
      return entry.ended ? undefined : entry.node;
    }
    return pointer?.to;
  }

  /** The lowest endpoint of DC `dcid` that no process holds. */
  freeEndpoint(dcid: number): number {
    let endpoint = 0;
    while (this.hosted.has(procKey(dcid, endpoint)) || this.locations.taken(dcid, endpoint)) endpoint++;
    return endpoint;
  }
}

/** The location entry of `h` as hosted by `node`. */
export function entryOf(h: Hosted, node: NodeId, ended: boolean): Location {
  return {
    dcid: h.dcid,
    endpoint: h.endpoint,
    node,
    epoch: h.epoch,
    ended,
    machine: h.machine,
    name: h.name,
  };
}

/** The key a process sends under: a new generation (restart) numbers afresh. */
export const senderKey = (h: Hosted): string => `p:${h.dcid}:${h.endpoint}.${h.gen}`;

/** Settles the stashed messages' waiters with `settled` and empties the stash. */
export function settleStash(h: Hosted, settled: ErrorName | undefined): void {
  const waiters = h.stashWaiters;
  h.stash = [];
  h.stashWaiters = [];
  for (const resolve of waiters) resolve(settled);
}

/** Sends a runtime event to a process (queued by XState when it is busy). */
export function tell(h: Hosted, event: DvsEvent): void {
  if (h.actor === undefined || h.failed) return;
  h.actor.send(event);
}
