// GETPROCINFO's view of a hosted process (`proc_usr`): its slot, flags,
// lifecycle, counters and its machine's state, as its host reports it.

import type { NodeId } from "../../protocol/messages.js";
import { PROC_FLAGS } from "../../protocol/processes.js";
import type { Hosted } from "./hosted.js";
import { isUnrestricted } from "./privileges.js";

/** GETPROCINFO's `proc_usr`: a process as its host sees it. */
export interface ProcUsr {
  /** Slot number on its current host (install order). */
  readonly nr: number;
  readonly endpoint: number;
  readonly dcid: number;
  /** The node hosting it. */
  readonly nodeid: NodeId;
  /** PROC_FLAGS bits. */
  readonly flags: number;
  readonly name: string;
  /** The registered machine it was spawned from. */
  readonly machine: string;
  /** Sender key of the last message delivered to it, or null. */
  readonly getfrom: string | null;
  /** The last destination it sent to, or null. */
  readonly sendto: { readonly dcid: number; readonly endpoint: number } | null;
  /** Messages held while it migrates. */
  readonly waitmigr: number;
  /** Messages delivered to it since spawn (carried across migrations). */
  readonly delivered: number;
  /** Messages waiting in its reorder buffer for an earlier one. */
  readonly pending: number;
  /** Location epoch: 1 at spawn, +1 per migration. */
  readonly epoch: number;
  /** Host lifecycle: running, or migrating. */
  readonly state: "running" | "migrating";
  /** Its machine's actor status, state value and context. */
  readonly status: string;
  readonly value: unknown;
  readonly context: unknown;
  /** Errors: duplicates dropped, sequence numbers skipped after a gap timeout, sends/requests refused. */
  readonly duplicates: number;
  readonly gaps: number;
  readonly refused: number;
}

type Shown = { status?: string; value?: unknown; context?: unknown };

/** `h` as host `self` reports it; while it moves, its machine's state is the one shipped. */
export function procUsrOf(h: Hosted, self: NodeId): ProcUsr {
  const live = h.actor?.getSnapshot() as Shown | undefined;
  const snap = live ?? (h.shipped?.snapshot as Shown | undefined);
  const migrating = h.lifecycle.getSnapshot().matches("migrating");
  const flags =
    (migrating ? PROC_FLAGS.MIGRATING : 0) |
    (h.restored ? PROC_FLAGS.RESTORED : 0) |
    (isUnrestricted(h.priv) ? 0 : PROC_FLAGS.RESTRICTED) |
    (h.failed ? PROC_FLAGS.FAILED : 0) |
    (h.provisional !== undefined ? PROC_FLAGS.PROVISIONAL : 0);
  return {
    nr: h.nr,
    endpoint: h.endpoint,
    dcid: h.dcid,
    nodeid: self,
    flags,
    name: h.name,
    machine: h.machine,
    getfrom: h.getfrom,
    sendto: h.sendto,
    waitmigr: h.stash.length,
    delivered: h.delivered,
    pending: h.mailbox.pendingCount,
    epoch: h.epoch,
    state: migrating ? "migrating" : "running",
    status: h.failed ? "error" : (snap?.status ?? "stopped"),
    value: snap?.value ?? null,
    context: snap?.context ?? null,
    duplicates: h.duplicates,
    gaps: h.gaps,
    refused: h.refused,
  };
}
