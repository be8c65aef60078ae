// The membership events of a `npm run scale` cluster, as an observer on
// `dvs.<c>.events.*` receives them: counted by phase of the run (start-up,
// idle spell, crash, stop) and "NAME (cause)", and handed to listeners with
// their time of arrival. Nothing is kept: a 100-node start-up announces
// thousands of events, each with a view of up to 100 members.
import { decode, encodingOf } from "../protocol/codec.js";
import { type EventMessage, eventSchema, type MembershipEventName } from "../protocol/messages.js";
import { subjects } from "../protocol/subjects.js";
import type { Transport } from "../transport/transport.js";

export const PHASES = ["start", "idle", "crash", "stop"] as const;
/** start: spawn → one view; idle: the idle spell; crash: SIGKILL → every survivor reported; stop: SIGTERM → exit. */
export type Phase = (typeof PHASES)[number];

export interface ReceivedEvent {
  readonly event: EventMessage;
  /** `performance.now()` in the bench process when it arrived. */
  readonly receivedAt: number;
}

/** With nobody killed, each of these is a false suspicion (or the end of one). */
export const FALSE_IN_IDLE: readonly MembershipEventName[] = ["PARTITION", "DISCONNECT", "MERGE"];

export class ClusterEventLog {
  /** Per phase, "NAME (cause)" → how many. */
  readonly counts: Record<Phase, Record<string, number>> = { start: {}, idle: {}, crash: {}, stop: {} };
  /** Per phase, event name → how many. */
  readonly byName: Record<Phase, Partial<Record<MembershipEventName, number>>> = {
    start: {},
    idle: {},
    crash: {},
    stop: {},
  };
  phase: Phase = "start";
  readonly #listeners = new Set<(received: ReceivedEvent) => void>();

  constructor(transport: Transport, cluster: string) {
    transport.subscribe(subjects(cluster).events, (msg) => {
      const receivedAt = performance.now();
      const decoded = decode(msg.data, encodingOf(msg));
      const parsed = decoded.ok ? eventSchema.safeParse(decoded.value) : undefined;
      if (!parsed?.success) return; // a coordinator event, say: not membership
      const event = parsed.data;
      const key = `${event.event} (${event.cause})`;
      const counts = this.counts[this.phase];
      counts[key] = (counts[key] ?? 0) + 1;
      const byName = this.byName[this.phase];
      byName[event.event] = (byName[event.event] ?? 0) + 1;
      for (const listener of this.#listeners) listener({ event, receivedAt });
    });
  }

  /** Calls `listener` for every event from now on; returns the way to stop. */
  listen(listener: (received: ReceivedEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** How many events of `names` arrived during `phase`. */
  count(phase: Phase, names: readonly MembershipEventName[]): number {
    return names.reduce((sum, name) => sum + (this.byName[phase][name] ?? 0), 0);
  }
}
