// What the cluster does by itself, recorded as actions (SPEC 6.4, seed 001):
// file COMMITs, coordinator changes and membership events, each one `event`
// record written once, by the node that did or saw it. A COMMIT is written by
// the coordinator that ran it; a coordinator change by the new coordinator,
// once per term; a membership event by the lowest member of the new view (each
// member sees the same change, and one of them is enough: on a PARTITION each
// side's lowest member writes its own side). Writes never hold up what they
// record: a failure is retried briefly, then logged with a throttle.
import type { ViewChange } from "../machines/membership.js";
import type { FileAnswer } from "../protocol/files.js";
import type { EventMessage, NodeId } from "../protocol/messages.js";
import { type ActionLog, actionIds, type EventRecord } from "../transport/actionLog.js";
import { type Clock, type Random, sleep } from "../transport/clock.js";
import { type Logger, throttledWarn } from "./logger.js";
import type { Subsystem } from "./subsystem.js";

export interface ActionEventsOptions {
  readonly log: ActionLog;
  readonly node: NodeId;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Makes a new action id (time-ordered, unique). */
  readonly newId: () => string;
  /** This node's host address, on every record it writes. */
  readonly addr?: string;
  /** How long a record that cannot be written is retried (default 3000 ms). */
  readonly retryMs?: number;
}

/** The part of the election an observer reads: its server role's snapshots. */
export interface ObservableElection {
  readonly server: {
    subscribe(observer: (snapshot: { value: unknown; context: { epoch: number } }) => void): {
      unsubscribe(): void;
    };
  };
}

/** Most members a membership record lists; a larger view keeps its id and size only. */
const MAX_LISTED_MEMBERS = 4_096;

type EventFields = Omit<EventRecord, "v" | "kind" | "action" | "at" | "node" | "addr">;

export class ActionEvents implements Subsystem {
  readonly name = "action-events";
  readonly stats = { recorded: 0, failed: 0 };
  readonly #o: ActionEventsOptions;
  readonly #warn: ReturnType<typeof throttledWarn>;
  readonly #pending = new Set<Promise<void>>();
  #watch: { unsubscribe(): void } | undefined;
  #term = 0;

  constructor(options: ActionEventsOptions) {
    this.#o = options;
    this.#warn = throttledWarn(options.logger, options.clock);
  }

  start(): void {}

  async stop(): Promise<void> {
    this.#watch?.unsubscribe();
    this.#watch = undefined;
    await this.idle();
  }

  /** Resolves once every record under way is written or given up. */
  async idle(): Promise<void> {
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
  }

  /** Records COORDINATOR each time this node's server role becomes coordinator of a new term. */
  watchElection(election: ObservableElection): void {
    this.#watch?.unsubscribe();
    this.#watch = election.server.subscribe((snap) => {
      if (snap.value !== "coordinator" || snap.context.epoch === this.#term) return;
      this.#term = snap.context.epoch;
      this.#record({ type: "COORDINATOR", ok: 1, coordinator: this.#o.node, epoch: snap.context.epoch });
    });
  }

  /** The file coordinator answered a COMMIT of `name`: the version and holders, or the error. */
  commit(name: string, answer: FileAnswer): void {
    const success = answer.type === "SUCCESS";
    this.#record({
      type: "COMMIT",
      ok: success ? 1 : 0,
      file: {
        name: name.slice(0, 1024),
        ...(success ? { version: answer.version, holders: answer.holders.slice(0, 1024) } : {}),
        outcome: answer.type === "ERROR" ? answer.error : answer.type,
      },
    });
  }

  /** A view change: recorded by the lowest member of the new view only. */
  onView(members: readonly NodeId[], change?: ViewChange, event?: EventMessage): void {
    if (change === undefined || event === undefined) return;
    if (members.reduce((low, m) => Math.min(low, m), Number.POSITIVE_INFINITY) !== this.#o.node) return;
    const listed = change.view.members.length <= MAX_LISTED_MEMBERS;
    this.#record({
      type: change.event,
      ok: 1,
      view: { id: change.view.id, members: listed ? [...change.view.members] : [] },
      changed: change.changed.slice(0, MAX_LISTED_MEMBERS).map((m) => m.node),
      cause: change.cause.slice(0, 256),
    });
  }

  #record(fields: EventFields): void {
    const { node, clock, newId, addr } = this.#o;
    const record: EventRecord = {
      v: 1,
      kind: "event",
      action: newId(),
      at: clock.now(),
      node,
      ...(addr !== undefined ? { addr } : {}),
      ...fields,
    };
    const written = this.#write(record);
    this.#pending.add(written);
    void written.finally(() => this.#pending.delete(written));
  }

  async #write(record: EventRecord): Promise<void> {
    const { clock, log } = this.#o;
    const deadline = clock.now() + (this.#o.retryMs ?? 3_000);
    for (let delay = 100; ; delay = Math.min(2 * delay, 1_000)) {
      try {
        await log.append(record);
        this.stats.recorded++;
        return;
      } catch (error) {
        if (clock.now() + delay > deadline) {
          this.stats.failed++;
          this.#warn(
            `event:${record.type}`,
            { err: error, type: record.type },
            "could not log an event in the action log",
          );
          return;
        }
      }
      await sleep(clock, delay);
    }
  }
}

/** The events part of a node that has an action log, with action ids from its clock and randomness. */
export function actionEventsFor(
  log: ActionLog | undefined,
  o: Omit<ActionEventsOptions, "log" | "newId" | "addr"> & {
    readonly random: Random;
    readonly addr?: string | undefined;
  },
): ActionEvents | undefined {
  if (log === undefined) return undefined;
  const { random, addr, ...rest } = o;
  return new ActionEvents({ ...rest, log, newId: actionIds(o.clock, random), ...(addr ? { addr } : {}) });
}
