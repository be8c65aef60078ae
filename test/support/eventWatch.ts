// What an external tool sees of a cluster's membership: every event published
// on `dvs.<c>.events` (decoded and validated as the wire carries it), and the
// nodes' answers on the status subject. Tests wait on these with deadlines
// instead of sleeping.
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { agreeOnView, collectStatus } from "../../client/clusterStatus.js";
import { DEV_USERS } from "../../client/credentials.js";
import { decode } from "../../protocol/codec.js";
import {
  type CoordinatorEvent,
  coordinatorEventSchema,
  type EventMessage,
  eventSchema,
  type MembershipEventName,
  type NodeStatus,
} from "../../protocol/messages.js";
import { subjects } from "../../protocol/subjects.js";
import { NatsTransport } from "../../transport/nats.js";

export interface ObservedEvent extends EventMessage {
  /** `performance.now()` when the watcher received it. */
  readonly receivedAt: number;
}

/** A predicate on one event; `about(node)` and friends build the usual ones. */
export type EventFilter = (event: ObservedEvent) => boolean;

/** Events whose change lists `node` (optionally that incarnation). */
export const about =
  (node: number, incarnation?: number): EventFilter =>
  (e) =>
    e.changed.some((m) => m.node === node && (incarnation === undefined || m.incarnation === incarnation));

/** Events whose change lists an incarnation of `node` higher than `than` (a restart's). */
export const aboutLater =
  (node: number, than: number): EventFilter =>
  (e) =>
    e.changed.some((m) => m.node === node && m.incarnation > than);

export const named =
  (...names: MembershipEventName[]): EventFilter =>
  (e) =>
    names.includes(e.event);

export const both =
  (...filters: EventFilter[]): EventFilter =>
  (e) =>
    filters.every((f) => f(e));

export class EventWatch implements AsyncDisposable {
  readonly events: ObservedEvent[] = [];
  /** COORDINATOR events (SPEC 7), apart from the membership ones. */
  readonly coordinator: (CoordinatorEvent & { readonly receivedAt: number })[] = [];
  /** Messages on the events subject that did not decode or validate: the test should see none. */
  readonly malformed: string[] = [];
  readonly #waiters = new Set<() => void>();
  readonly #subjects;
  readonly #cluster: string;
  #transport: NatsTransport | undefined;

  private constructor(
    readonly connection: NatsConnection,
    cluster: string,
  ) {
    this.#subjects = subjects(cluster);
    this.#cluster = cluster;
    connection.subscribe(this.#subjects.events, {
      callback: (err, msg) => {
        if (err) return;
        const decoded = decode(msg.data, "cbor");
        const coordinator = decoded.ok ? coordinatorEventSchema.safeParse(decoded.value) : undefined;
        if (coordinator?.success) {
          this.coordinator.push({ ...coordinator.data, receivedAt: performance.now() });
          for (const w of this.#waiters) w();
          return;
        }
        const parsed = decoded.ok ? eventSchema.safeParse(decoded.value) : undefined;
        if (!parsed?.success) {
          this.malformed.push(decoded.ok ? JSON.stringify(decoded.value) : decoded.message);
          return;
        }
        this.events.push({ ...parsed.data, receivedAt: performance.now() });
        for (const w of this.#waiters) w();
      },
    });
  }

  /** `discover: false` keeps the watcher on `url` (it waits for that server when it goes), never another of its cluster. */
  static async start(
    url: string,
    cluster = "dvs",
    options: { discover?: boolean } = {},
  ): Promise<EventWatch> {
    const nc = await connect({
      servers: url,
      name: "e2e-event-watch",
      ...DEV_USERS.admin,
      ...(options.discover === false
        ? { ignoreClusterUpdates: true, maxReconnectAttempts: -1, reconnectTimeWait: 100 }
        : {}),
    });
    const watch = new EventWatch(nc, cluster);
    await nc.flush();
    return watch;
  }

  /** A position in the event stream: pass it as `from` to look only at later events. */
  mark(): number {
    return this.events.length;
  }

  /** Events from `from` on that match. */
  select(filter: EventFilter, from = 0): ObservedEvent[] {
    return this.events.slice(from).filter(filter);
  }

  /**
   * Resolves once every node of `observers` has published an event matching
   * `filter` (from `from` on), with the first such event of each; rejects
   * after `timeoutMs` naming the nodes still missing and what was seen.
   */
  async fromEach(
    observers: readonly number[],
    filter: EventFilter,
    what: string,
    options: { from?: number; timeoutMs?: number } = {},
  ): Promise<Map<number, ObservedEvent>> {
    const from = options.from ?? 0;
    const found = () => {
      const first = new Map<number, ObservedEvent>();
      for (const e of this.events.slice(from)) {
        if (observers.includes(e.node) && !first.has(e.node) && filter(e)) first.set(e.node, e);
      }
      return first;
    };
    await this.until(
      () => found().size === observers.length,
      () => `${what} from nodes ${observers.filter((n) => !found().has(n)).join(", ")}`,
      { from, timeoutMs: options.timeoutMs ?? 10_000 },
    );
    return found();
  }

  /**
   * Resolves once `done()` holds, re-checked at every event (and every
   * `pollMs`, for conditions on more than events); rejects after `timeoutMs`
   * with `what()` and the events seen since `from`.
   */
  until(
    done: () => boolean,
    what: () => string,
    options: { from?: number; timeoutMs?: number; pollMs?: number } = {},
  ): Promise<void> {
    const timeoutMs = options.timeoutMs ?? 10_000;
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!done()) return;
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(
          new Error(
            `timed out after ${timeoutMs} ms waiting for ${what()}; events since:\n${this.describe(options.from ?? 0)}`,
          ),
        );
      }, timeoutMs);
      const poll = options.pollMs === undefined ? undefined : setInterval(check, options.pollMs);
      const cleanup = () => {
        clearTimeout(timer);
        clearInterval(poll);
        this.#waiters.delete(check);
      };
      this.#waiters.add(check);
      check();
    });
  }

  /** The events from `from` on, one line each, for failure messages. */
  describe(from = 0): string {
    return this.events
      .slice(from)
      .map(
        (e) =>
          `  node ${e.node}/${e.incarnation} ${e.event} [${e.changed.map((m) => `${m.node}:${m.incarnation}`).join(",")}] view ${e.view.id} {${e.view.members.join(",")}} (${e.cause})`,
      )
      .join("\n");
  }

  /** Every node's answer to one status request, collected for `windowMs` or until `expect` answered. */
  async statuses(options: { windowMs?: number } = {}): Promise<NodeStatus[]> {
    this.#transport ??= new NatsTransport(this.connection, { name: "event-watch" });
    const status = await collectStatus(this.#transport, {
      cluster: this.#cluster,
      timeoutMs: options.windowMs ?? 500,
    });
    return status.nodes;
  }

  /**
   * Resolves once exactly `nodes` answer the status request, each with a view
   * of exactly those members and one view id; rejects after `timeoutMs` with
   * the last answers.
   */
  async converged(nodes: readonly number[], timeoutMs = 15_000): Promise<NodeStatus[]> {
    const want = [...nodes].sort((a, b) => a - b).join(",");
    const deadline = performance.now() + timeoutMs;
    let last: NodeStatus[] = [];
    while (performance.now() < deadline) {
      last = await this.statuses({ windowMs: 300 });
      if (agreeOnView(last, nodes)) return last;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const seen = last.map((s) => `node ${s.node}: view ${s.view.id} {${s.view.members.join(",")}}`);
    throw new Error(`views did not converge on {${want}} within ${timeoutMs} ms; last: ${seen.join("; ")}`);
  }

  async close(): Promise<void> {
    if (!this.connection.isClosed()) await this.connection.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
