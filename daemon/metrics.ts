// A node's Prometheus metrics (prom-client), on a registry of its own so one
// process can hold several nodes (the tests). The runtime's parts count into it
// through the NodeMetrics hooks (actors/metrics.ts), one counter step each; the
// gauges that are reads of the node's state (view, coordinator, bytes held,
// mailboxes) are read only when Prometheus scrapes. docs/operations.md
// ("Metrics") lists every metric.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type {
  Direction,
  FileOperation,
  MembershipMessageKind,
  NodeMetrics,
  RequestSource,
} from "../actors/metrics.js";
import type { NodeRuntime } from "../actors/node.js";
import { ERRORS, type NodeId, REQUEST_TYPES } from "../protocol/messages.js";
import type { ActionLog } from "../transport/actionLog.js";

export interface PrometheusMetricsOptions {
  readonly node: NodeId;
  readonly cluster: string;
  /**
   * Also prom-client's default metrics of the process (CPU, memory, event-loop
   * lag, GC pauses, handles). Off for a registry that shares its process with
   * others (tests), since those describe the process, not the node.
   */
  readonly processMetrics?: boolean;
}

/** Latency buckets of requests and action-log writes, in seconds: 0.5 ms to 10 s. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Members a `dst: ALL` request was multicast to. */
const FANOUT_BUCKETS = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128, 256];

const KNOWN_TYPES: ReadonlySet<string> = new Set(REQUEST_TYPES);
/** rcode → label: "OK" for every result ≥ 0 (a node id, a DCID…), the error's name, or "other". */
const RCODE_NAMES = new Map<number, string>(Object.entries(ERRORS).map(([name, e]) => [e.code, name]));
const rcodeLabel = (rcode: number): string => (rcode >= 0 ? "OK" : (RCODE_NAMES.get(rcode) ?? "other"));

/** What the gauges read of a running node. */
export type ObservedNode = Pick<
  NodeRuntime,
  "identity" | "membership" | "election" | "files" | "processes" | "viewMembers"
>;

type Child = { inc(value?: number): void };
type Observer = { observe(value: number): void };

export class PrometheusMetrics implements NodeMetrics {
  readonly registry = new Registry();
  #node: ObservedNode | undefined;
  readonly #requests: Counter<"type" | "rcode" | "source">;
  readonly #latency: Histogram<"type">;
  readonly #fanout: Histogram;
  readonly #stragglers: Counter<"reason">;
  readonly #membership: Counter<"kind" | "direction">;
  readonly #viewChanges: Counter<"event">;
  readonly #termsWon: Counter;
  readonly #fileOperations: Counter<"operation" | "outcome">;
  readonly #actionLogWrites: Histogram<"outcome">;
  /** Label children by their joined values: a counter step is a map lookup, not a label hash. */
  readonly #children = new Map<string, Child | Observer>();

  constructor(options: PrometheusMetricsOptions) {
    const registers = [this.registry];
    this.registry.setDefaultLabels({ cluster: options.cluster, node: String(options.node) });
    // The event-loop delay is sampled every 100 ms, not prom-client's 10: the 10 ms timer alone costs an
    // idle node a few ms of CPU a second (SPEC 10 allows it 5), and a stall still shows in the next sample.
    if (options.processMetrics)
      collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 100 });
    this.#requests = new Counter({
      name: "dvsd_requests_total",
      help: "Requests this node answered (refusals included), by type, result and where they came in",
      labelNames: ["type", "rcode", "source"],
      registers,
    });
    this.#latency = new Histogram({
      name: "dvsd_request_duration_seconds",
      help: "From a client's request arriving at this node to its reply leaving (gathers and forwards included)",
      labelNames: ["type"],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.#fanout = new Histogram({
      name: "dvsd_all_fanout_nodes",
      help: "Members each dst: ALL request gathered by this node waited for",
      buckets: FANOUT_BUCKETS,
      registers,
    });
    this.#stragglers = new Counter({
      name: "dvsd_all_stragglers_total",
      help: "Members that did not answer a dst: ALL request: silent at its timeout, or gone from the view",
      labelNames: ["reason"],
      registers,
    });
    this.#membership = new Counter({
      name: "dvsd_membership_messages_total",
      help: "Membership messages (heartbeats, probes, hello, leave, alerts, beacons) sent and received",
      labelNames: ["kind", "direction"],
      registers,
    });
    this.#viewChanges = new Counter({
      name: "dvsd_view_changes_total",
      help: "View changes this node announced, by event",
      labelNames: ["event"],
      registers,
    });
    this.#termsWon = new Counter({
      name: "dvsd_coordinator_terms_won_total",
      help: "Terms this node's server won (times it became coordinator)",
      registers,
    });
    this.#fileOperations = new Counter({
      name: "dvsd_file_operations_total",
      help: "File store operations this node ran, by operation and outcome",
      labelNames: ["operation", "outcome"],
      registers,
    });
    this.#actionLogWrites = new Histogram({
      name: "dvsd_action_log_write_seconds",
      help: "Time to make one action-log record durable (request, reply or outcome)",
      labelNames: ["outcome"],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.#gauges(registers);
  }

  /** The node the gauges read when scraped. */
  observe(node: ObservedNode): void {
    this.#node = node;
  }

  /** The text Prometheus scrapes. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  requestAnswered(type: string, rcode: number, source: RequestSource, ms: number): void {
    const known = KNOWN_TYPES.has(type) ? type : "invalid";
    const code = rcodeLabel(rcode);
    (
      this.#child(`r|${known}|${code}|${source}`, () => this.#requests.labels(known, code, source)) as Child
    ).inc();
    // The latency a client sees; requests passed on between nodes are part of another node's.
    if (source === "public" || source === "readonly")
      (this.#child(`l|${known}`, () => this.#latency.labels(known)) as Observer).observe(ms / 1_000);
  }

  gathered(expected: number, timedOut: number, left: number): void {
    this.#fanout.observe(expected);
    if (timedOut > 0) this.#stragglers.inc({ reason: "timeout" }, timedOut);
    if (left > 0) this.#stragglers.inc({ reason: "left" }, left);
  }

  membershipMessage(kind: MembershipMessageKind, direction: Direction): void {
    (this.#child(`m|${kind}|${direction}`, () => this.#membership.labels(kind, direction)) as Child).inc();
  }

  viewChanged(event: string): void {
    this.#viewChanges.inc({ event });
  }

  termWon(_epoch: number): void {
    this.#termsWon.inc();
  }

  fileOperation(operation: FileOperation, outcome: string): void {
    this.#fileOperations.inc({ operation, outcome });
  }

  /** The action log, each append timed into `dvsd_action_log_write_seconds`. */
  timedActionLog(log: ActionLog, now: () => number = () => performance.now()): ActionLog {
    const writes = this.#actionLogWrites;
    return {
      async append(record) {
        const started = now();
        try {
          await log.append(record);
          writes.observe({ outcome: "ok" }, (now() - started) / 1_000);
        } catch (error) {
          writes.observe({ outcome: "error" }, (now() - started) / 1_000);
          throw error;
        }
      },
      list: (filter) => log.list(filter),
      show: (action) => log.show(action),
    };
  }

  #child(key: string, make: () => Child | Observer): Child | Observer {
    let child = this.#children.get(key);
    if (child === undefined) {
      child = make();
      this.#children.set(key, child);
    }
    return child;
  }

  /** The gauges: reads of the node's state, made only when scraped. */
  #gauges(registers: Registry[]): void {
    const node = () => this.#node;
    const gauge = (name: string, help: string, read: () => number | undefined) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          const value = read();
          if (value !== undefined) this.set(value);
        },
      });
    gauge("dvsd_node_incarnation", "This node's incarnation", () => node()?.identity.incarnation);
    gauge("dvsd_view_id", "The id of this node's view", () => node()?.membership?.context.view.id);
    gauge("dvsd_view_members", "Members in this node's view", () => {
      const n = node();
      return n ? n.viewMembers().length : undefined;
    });
    gauge("dvsd_view_minority", "1 while this node's component has no majority of the last full view", () => {
      const ctx = node()?.membership?.context;
      return ctx ? Number(ctx.minority) : undefined;
    });
    gauge("dvsd_coordinator_epoch", "The epoch of the coordinator this node knows (0: none yet)", () => {
      const state = node()?.election?.state();
      if (!state) return undefined;
      return state.who.type === "OK" ? state.who.epoch : state.highestEpoch;
    });
    gauge(
      "dvsd_coordinator",
      "1 while this node is the coordinator (holds a term with a valid lease)",
      () => {
        const state = node()?.election?.state();
        return state ? Number(state.term !== null) : undefined;
      },
    );
    gauge("dvsd_files_bytes", "Bytes of the file versions this server holds", () =>
      node()?.files?.bytesHeld(),
    );
    gauge("dvsd_files_replicas", "File versions this server holds", () => node()?.files?.held().length);
    gauge(
      "dvsd_processes_hosted",
      "DVS processes hosted on this node",
      () => node()?.processes?.mailboxes().hosted,
    );
    gauge(
      "dvsd_process_mailbox_messages",
      "Messages waiting in the mailboxes of the processes hosted here, in all",
      () => node()?.processes?.mailboxes().total,
    );
    gauge(
      "dvsd_process_mailbox_max_messages",
      "Messages waiting in the fullest mailbox of a process hosted here",
      () => node()?.processes?.mailboxes().max,
    );
  }
}
