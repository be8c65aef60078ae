// The Cluster page's data: every node's status (its answer on the status
// subject, asked again after each event and every few seconds, as `dvsctl
// members` asks), its host address (IFCONFIG, once per incarnation), the
// coordinator (WHO, and COORDINATOR events), and the events as they arrive.
// Pages subscribe and get a snapshot, then every change: nothing polls in the
// browser, and what the console keeps is bounded.
import { collectStatus } from "../client/clusterStatus.js";
import type { Clock, TimerHandle, Transport } from "../client/connection.js";
import type { DvsClient } from "../client/dvsClient.js";
import { watchEvents } from "../client/events.js";
import type { RegistryClient } from "../client/registryClient.js";
import type { ClusterEvent, NodeStatus } from "../client/wire.js";

/** Events the console keeps for a page that opens now (the page keeps its own, bounded too). */
export const KEPT_EVENTS = 200;
/** Node incarnations whose address the console remembers (the oldest are forgotten first). */
const KEPT_ADDRESSES = 4_096;
/** Delay after an event before the statuses are asked again, so a burst of events costs one round. */
const SETTLE_MS = 150;

export interface NodeView {
  readonly node: number;
  readonly incarnation: number;
  readonly state: string;
  readonly view: { readonly id: number; readonly members: readonly number[] };
  readonly minority: boolean;
  readonly pid: number;
  /** The host's address (its default route's IPv4 address, from IFCONFIG), when known. */
  readonly address: string | null;
  /** False when the node did not answer the last status round (its last answer is shown). */
  readonly answering: boolean;
  /** When the console last heard its status (ms since the epoch). */
  readonly seenAt: number;
}

/** Nodes that hold one view: a component. The majority is the one that holds more than half of the nodes known. */
export interface Component {
  readonly viewId: number;
  readonly members: readonly number[];
  /** The answering nodes that hold this view. */
  readonly holders: readonly number[];
  readonly majority: boolean;
}

export interface ClusterPicture {
  readonly cluster: string;
  readonly nodes: readonly NodeView[];
  readonly components: readonly Component[];
  readonly coordinator: { readonly node: number | null; readonly epoch: number | null };
  /** When the statuses were last asked (ms since the epoch). */
  readonly at: number;
  /** The console's own NATS connection: while it is down, what the page shows is as of `at`. */
  readonly nats: "connected" | "disconnected" | "reconnecting" | "closed";
}

export interface ClusterFeedOptions {
  readonly cluster: string;
  readonly transport: Transport;
  readonly client: DvsClient;
  readonly registry: RegistryClient;
  readonly clock: Clock;
  /** How often the statuses are asked when no event comes (ms). */
  readonly statusEveryMs: number;
  readonly onError?: (what: string, error: unknown) => void;
}

export type FeedListener = (kind: "picture", data: ClusterPicture) => void;
export type EventListener = (event: ClusterEvent) => void;

export class ClusterFeed {
  readonly #o: ClusterFeedOptions;
  readonly #nodes = new Map<number, NodeView>();
  readonly #addresses = new Map<string, string | null>();
  readonly #events: ClusterEvent[] = [];
  readonly #pictureListeners = new Set<(picture: ClusterPicture) => void>();
  readonly #eventListeners = new Set<EventListener>();
  #coordinator: { node: number | null; epoch: number | null } = { node: null, epoch: null };
  #at = 0;
  #timer: TimerHandle | undefined;
  #asking = false;
  #again = false;
  #stopped = false;
  #unsubscribe: (() => void) | undefined;
  #stopStatus: (() => void) | undefined;
  #nats: ClusterPicture["nats"] = "connected";

  constructor(options: ClusterFeedOptions) {
    this.#o = options;
  }

  start(): void {
    const watch = watchEvents(
      this.#o.transport,
      this.#o.cluster,
      (event) => this.#onEvent(event),
      (reason) => this.#o.onError?.("event skipped", new Error(reason)),
    );
    this.#unsubscribe = () => watch.subscription.unsubscribe();
    this.#stopStatus = this.#o.transport.onStatus((status) => {
      this.#nats = status.type;
      this.#publish();
      if (status.type === "connected") this.#refreshSoon(0);
    });
    this.#refreshSoon(0);
  }

  stop(): void {
    this.#stopped = true;
    this.#unsubscribe?.();
    this.#stopStatus?.();
    if (this.#timer !== undefined) this.#o.clock.clearTimeout(this.#timer);
  }

  /** The newest events, oldest first. */
  events(): readonly ClusterEvent[] {
    return [...this.#events];
  }

  picture(): ClusterPicture {
    const nodes = [...this.#nodes.values()].sort((a, b) => a.node - b.node);
    return {
      cluster: this.#o.cluster,
      nodes,
      components: componentsOf(nodes),
      coordinator: { ...this.#coordinator },
      at: this.#at,
      nats: this.#nats,
    };
  }

  /** The members a request to ALL should hear from: the majority's view, else every answering node. */
  expectedMembers(): number[] {
    const picture = this.picture();
    const majority = picture.components.find((c) => c.majority);
    if (majority !== undefined) return [...majority.members];
    return picture.nodes.filter((n) => n.answering).map((n) => n.node);
  }

  onPicture(listener: (picture: ClusterPicture) => void): () => void {
    this.#pictureListeners.add(listener);
    return () => this.#pictureListeners.delete(listener);
  }

  onEvent(listener: EventListener): () => void {
    this.#eventListeners.add(listener);
    return () => this.#eventListeners.delete(listener);
  }

  #onEvent(event: ClusterEvent): void {
    this.#events.push(event);
    if (this.#events.length > KEPT_EVENTS) this.#events.splice(0, this.#events.length - KEPT_EVENTS);
    if (event.event === "COORDINATOR") {
      // A step-down names no successor; the next WHO says who took over.
      this.#coordinator =
        event.coordinator === null
          ? { node: null, epoch: this.#coordinator.epoch }
          : { node: event.coordinator, epoch: event.epoch };
    }
    for (const l of this.#eventListeners) l(event);
    this.#refreshSoon(SETTLE_MS);
  }

  #refreshSoon(ms: number): void {
    if (this.#stopped) return;
    if (this.#asking) {
      this.#again = true;
      return;
    }
    if (this.#timer !== undefined) this.#o.clock.clearTimeout(this.#timer);
    this.#timer = this.#o.clock.setTimeout(() => void this.#refresh(), ms);
  }

  async #refresh(): Promise<void> {
    this.#timer = undefined;
    this.#asking = true;
    try {
      const [status] = await Promise.all([
        collectStatus(this.#o.transport, {
          cluster: this.#o.cluster,
          timeoutMs: 1_000,
          clock: this.#o.clock,
        }),
        this.#askCoordinator(),
      ]);
      this.#at = this.#o.clock.now();
      const heard = new Set(status.nodes.map((s) => s.node));
      for (const s of status.nodes) this.#nodes.set(s.node, this.#viewOf(s));
      for (const [node, view] of this.#nodes) {
        if (!heard.has(node) && view.answering) this.#nodes.set(node, { ...view, answering: false });
      }
      void this.#learnAddresses(status.nodes);
      this.#publish();
    } catch (error) {
      this.#o.onError?.("status", error);
    } finally {
      this.#asking = false;
      const again = this.#again;
      this.#again = false;
      this.#refreshSoon(again ? SETTLE_MS : this.#o.statusEveryMs);
    }
  }

  async #askCoordinator(): Promise<void> {
    try {
      const answer = await this.#o.registry.who();
      this.#coordinator =
        answer.type === "OK"
          ? { node: answer.coordinator, epoch: answer.epoch }
          : { node: null, epoch: this.#coordinator.epoch };
    } catch {
      // No registry answered: keep what the events said.
    }
  }

  #viewOf(s: NodeStatus): NodeView {
    return {
      node: s.node,
      incarnation: s.incarnation,
      state: s.state,
      view: { id: s.view.id, members: [...s.view.members] },
      minority: s.minority,
      pid: s.pid,
      address: this.#addresses.get(`${s.node}.${s.incarnation}`) ?? null,
      answering: true,
      seenAt: this.#o.clock.now(),
    };
  }

  /** IFCONFIG once per node incarnation (a read: no action is logged). */
  async #learnAddresses(statuses: readonly NodeStatus[]): Promise<void> {
    const fresh = statuses.filter((s) => !this.#addresses.has(`${s.node}.${s.incarnation}`));
    if (fresh.length === 0) return;
    for (const s of fresh) this.#addresses.set(`${s.node}.${s.incarnation}`, null);
    for (const key of this.#addresses.keys()) {
      if (this.#addresses.size <= KEPT_ADDRESSES) break;
      this.#addresses.delete(key);
    }
    await Promise.all(
      fresh.map(async (s) => {
        try {
          const rply = await this.#o.client.request(
            "IFCONFIG",
            { limit: 64 },
            { dst: s.node, timeoutMs: 3_000 },
          );
          const address = addressOf(rply.data);
          this.#addresses.set(`${s.node}.${s.incarnation}`, address);
          const known = this.#nodes.get(s.node);
          if (known !== undefined && known.incarnation === s.incarnation)
            this.#nodes.set(s.node, { ...known, address });
        } catch {
          // Asked again at the node's next incarnation; the page shows "?".
        }
      }),
    );
    this.#publish();
  }

  #publish(): void {
    const picture = this.picture();
    for (const l of this.#pictureListeners) l(picture);
  }
}

interface InterfaceAddress {
  readonly family?: unknown;
  readonly address?: unknown;
}

interface Interface {
  readonly internal?: unknown;
  readonly default?: unknown;
  readonly addresses?: readonly InterfaceAddress[];
}

/** The host's address from IFCONFIG's data: its default route's IPv4, else any outside IPv4, else any address. */
export function addressOf(data: unknown): string | null {
  if (!Array.isArray(data)) return null;
  const ifaces = data as Interface[];
  const ipv4 = (i: Interface) =>
    (i.addresses ?? []).find((a) => a.family === "IPv4" && typeof a.address === "string")?.address as
      | string
      | undefined;
  const outside = ifaces.filter((i) => i.internal !== true);
  return (
    outside
      .filter((i) => i.default === true)
      .map(ipv4)
      .find(Boolean) ??
    outside.map(ipv4).find(Boolean) ??
    ifaces.map(ipv4).find(Boolean) ??
    null
  );
}

/** The answering nodes grouped by the view they hold; the majority holds more than half of the nodes known. */
export function componentsOf(nodes: readonly NodeView[]): Component[] {
  const known = nodes.length;
  const byView = new Map<string, Component>();
  for (const n of nodes.filter((x) => x.answering && x.view.members.length > 0)) {
    const key = `${n.view.id}:${n.view.members.join(",")}`;
    const held = byView.get(key);
    const holders = [...(held?.holders ?? []), n.node];
    byView.set(key, {
      viewId: n.view.id,
      members: n.view.members,
      holders,
      majority: n.view.members.length * 2 > known && !n.minority,
    });
  }
  return [...byView.values()].sort((a, b) => b.members.length - a.members.length || a.viewId - b.viewId);
}
