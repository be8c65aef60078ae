// The faults the model harnesses inject into a simulated cluster — crash,
// restart, cut and restore a node's link or a route between servers, isolate a
// server, delay a node's traffic, heal — and the topology they leave; with the
// stamped trace log every harness writes its commands to, for a counterexample.
import type { NodeRuntime } from "../../actors/node.js";
import type { SimCluster } from "../../sim/cluster.js";
import { InvariantViolation } from "./invariants.js";

/** The simulated host a node's runtime connects as. */
export const hostOf = (node: number): string => `node-${node}`;

/** The one name of the route between two servers, whichever way it is given. */
export const routeKey = (a: number, b: number): string => (a < b ? `${a}-${b}` : `${b}-${a}`);

/** A change of topology the kit made, for whoever must know of it (the request ledger). */
export type FaultChange =
  | { readonly kind: "crash" | "kill" | "cutLink" | "restoreLink"; readonly node: number }
  | { readonly kind: "route" };

export interface FaultsOptions {
  readonly cluster: SimCluster;
  readonly servers: number;
  serverOf(id: number): number;
  /** Writes a command's line of the trace (the harness counts it as a step, and may mark the topology changed). */
  record(what: string): void;
  /** Told of each change once it is made, before its line is recorded. */
  changed?(change: FaultChange): void;
}

/**
 * Injects faults into one simulated cluster and remembers the topology they
 * leave, so a harness can say who is reachable and heal it all at the end.
 * Each method makes the change and records its line; the harness then checks
 * its invariants (or runs the simulation) as it does after every command.
 */
export class Faults {
  readonly #o: FaultsOptions;
  readonly #linkCut = new Set<number>();
  readonly #linkRestoredAt = new Map<number, number>();
  readonly #routeCut = new Set<string>();
  readonly #delays = new Map<number, number>();

  constructor(options: FaultsOptions) {
    this.#o = options;
  }

  /** Nodes whose own link is cut, in the order they were cut. */
  get linkCut(): ReadonlySet<number> {
    return this.#linkCut;
  }

  /** Routes cut, by routeKey, in the order they were cut. */
  get routeCut(): ReadonlySet<string> {
    return this.#routeCut;
  }

  /** Extra delay on each delayed node's traffic, in ms. */
  get delays(): ReadonlyMap<number, number> {
    return this.#delays;
  }

  /** When node `id`'s link was last restored (by a command or a heal), if ever. */
  linkRestoredAt(id: number): number | undefined {
    return this.#linkRestoredAt.get(id);
  }

  isRouteCut(a: number, b: number): boolean {
    return this.#routeCut.has(routeKey(a, b));
  }

  crash(id: number): void {
    this.#o.cluster.crash(id);
    this.#o.changed?.({ kind: "crash", node: id });
    this.#o.record(`crash(${id})`);
  }

  /** Starts a crashed (or never started) node again on its server, as a new incarnation. */
  restart(id: number): void {
    const { cluster } = this.#o;
    cluster.start(id, this.#o.serverOf(id));
    this.#o.record(`restart(${id}) as ${id}/${cluster.incarnationOf(id)}`);
  }

  /** Ends a node whose graceful stop is stuck (as the daemon's shutdown grace would); records nothing. */
  kill(id: number, node: NodeRuntime): void {
    this.#o.cluster.network.crash(hostOf(id));
    node.actor.stop();
    this.#o.changed?.({ kind: "kill", node: id });
  }

  cutLink(id: number): void {
    this.#linkCut.add(id);
    this.#o.cluster.cutLink(id);
    this.#o.changed?.({ kind: "cutLink", node: id });
    this.#o.record(`cutLink(${id})`);
  }

  restoreLink(id: number): void {
    this.#restoreLink(id);
    this.#o.record(`restoreLink(${id})`);
  }

  cutRoute(a: number, b: number): void {
    this.#routeCut.add(routeKey(a, b));
    this.#o.cluster.network.cutRoute(a, b);
    this.#o.changed?.({ kind: "route" });
    this.#o.record(`cutRoute(${routeKey(a, b)})`);
  }

  restoreRoute(a: number, b: number): void {
    this.#routeCut.delete(routeKey(a, b));
    this.#o.cluster.network.restoreRoute(a, b);
    this.#o.changed?.({ kind: "route" });
    this.#o.record(`restoreRoute(${routeKey(a, b)})`);
  }

  /** Cuts every route of one server: its nodes and clients are a minority. */
  isolate(server: number): void {
    for (let other = 0; other < this.#o.servers; other++) {
      if (other === server) continue;
      this.#routeCut.add(routeKey(server, other));
      this.#o.cluster.network.cutRoute(server, other);
    }
    this.#o.record(`isolate(s${server})`);
  }

  /** Adds `ms` to every delivery and store hop of the node's traffic (0 removes it). */
  delay(id: number, ms: number): void {
    if (ms > 0) this.#delays.set(id, ms);
    else this.#delays.delete(id);
    this.#o.cluster.network.setFaults({ extraDelayMs: ms }, hostOf(id));
    this.#o.record(ms > 0 ? `delay(${id}, ${ms} ms)` : `undelay(${id})`);
  }

  /** Restores every link and route and removes every delay (crashed nodes stay down); records nothing. */
  heal(): void {
    const { cluster } = this.#o;
    for (const id of [...this.#linkCut]) this.#restoreLink(id);
    this.#linkCut.clear();
    for (const key of this.#routeCut) {
      const [a, b] = key.split("-").map(Number);
      cluster.network.restoreRoute(a ?? 0, b ?? 0);
      this.#o.changed?.({ kind: "route" });
    }
    this.#routeCut.clear();
    for (const id of this.#delays.keys()) cluster.network.setFaults({ extraDelayMs: 0 }, hostOf(id));
    this.#delays.clear();
  }

  /** `links cut: [..]; routes cut: [..]`, for a trace's topology line. */
  describeCuts(): string {
    return `links cut: [${[...this.#linkCut].join(",")}]; routes cut: [${[...this.#routeCut].join(",")}]`;
  }

  /** `delays: [..]`, for a trace's topology line. */
  describeDelays(): string {
    return `delays: [${[...this.#delays].map(([id, ms]) => `n${id}+${ms}ms`).join(",")}]`;
  }

  #restoreLink(id: number): void {
    this.#linkCut.delete(id);
    this.#linkRestoredAt.set(id, this.#o.cluster.clock.now());
    this.#o.cluster.restoreLink(id);
    this.#o.changed?.({ kind: "restoreLink", node: id });
  }
}

/** A run's trace so far: lines stamped with the simulated time they tell of. */
export class TraceLog {
  readonly #now: () => number;
  readonly #lines: string[] = [];

  constructor(now: () => number) {
    this.#now = now;
  }

  /** `t=<at> <what>`; `at` is now unless the line tells of an earlier instant. */
  add(what: string, at: number = this.#now()): void {
    this.#lines.push(`t=${at} ${what}`);
  }

  /** The lines, indented; beyond `max` the middle is left out and counted. */
  lines(max = Number.POSITIVE_INFINITY): string[] {
    const log =
      this.#lines.length <= max
        ? this.#lines
        : [
            ...this.#lines.slice(0, max / 2),
            `... ${this.#lines.length - max} lines ...`,
            ...this.#lines.slice(-max / 2),
          ];
    return log.map((l) => `  ${l}`);
  }
}

/**
 * Rethrows `error`; an invariant violation gets the run's trace appended, so
 * the counterexample says what happened before it.
 */
export function failWithTrace(error: unknown, trace: () => string): never {
  if (error instanceof InvariantViolation) {
    throw new InvariantViolation(error.invariant, `${error.detail}\n\n${trace()}`);
  }
  throw error;
}
