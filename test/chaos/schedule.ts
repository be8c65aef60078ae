// The chaos run's fault schedule (SPEC 9): a pure function of the seed. Each
// episode applies one fault, holds it, heals it, then waits for the cluster to
// settle before a quiet gap; the same seed gives the same episodes, and the
// fingerprint lets two runs show that they replayed the same schedule.
import { createHash } from "node:crypto";
import { randomInt, seededRandom } from "../../transport/clock.js";

export type Fault =
  /** The route between two nats-servers goes down (both directions). */
  | { readonly kind: "cut-route"; readonly a: number; readonly b: number }
  /** Every route of one server goes down: its clients form a minority. */
  | { readonly kind: "isolate-server"; readonly server: number }
  /** SIGKILL a dvsd node; it restarts with the same state dir at the heal. */
  | { readonly kind: "kill-node"; readonly node: number }
  /** SIGSTOP a dvsd node; SIGCONT at the heal. */
  | { readonly kind: "stop-node"; readonly node: number }
  /** SIGKILL a nats-server; it restarts on the same store at the heal. */
  | { readonly kind: "kill-server"; readonly server: number };

export type FaultKind = Fault["kind"];
export const FAULT_KINDS: readonly FaultKind[] = [
  "cut-route",
  "isolate-server",
  "kill-node",
  "stop-node",
  "kill-server",
];

export interface Episode {
  readonly index: number;
  readonly fault: Fault;
  /** How long the fault is held before it is healed. */
  readonly holdMs: number;
  /** Quiet time after the cluster settled, before the next fault. */
  readonly gapMs: number;
}

export interface ScheduleOptions {
  readonly seed: number;
  readonly servers: number;
  readonly nodes: number;
  /** Episodes are planned until their holds and gaps plus `settleEstimateMs` each fill this. */
  readonly durationMs: number;
  /** What one episode's heal-to-settled phase is planned at (the real time varies). */
  readonly settleEstimateMs?: number;
  readonly holdMs?: readonly [number, number];
  readonly gapMs?: readonly [number, number];
  /** Only these kinds (default all). */
  readonly kinds?: readonly FaultKind[];
}

export function planSchedule(options: ScheduleOptions): Episode[] {
  const random = seededRandom(options.seed);
  const between = ([lo, hi]: readonly [number, number]) => lo + randomInt(random, hi - lo + 1);
  const kinds = options.kinds ?? FAULT_KINDS;
  if (kinds.length === 0) throw new RangeError("no fault kinds to choose from");
  if (options.servers < 2 && kinds.some((k) => k === "cut-route" || k === "isolate-server")) {
    throw new RangeError("route faults need at least 2 servers");
  }
  const hold = options.holdMs ?? [1_000, 6_000];
  const gap = options.gapMs ?? [500, 2_000];
  const settle = options.settleEstimateMs ?? 6_000;
  const episodes: Episode[] = [];
  let planned = 0;
  while (planned < options.durationMs) {
    const kind = kinds[randomInt(random, kinds.length)] as FaultKind;
    const server = 1 + randomInt(random, options.servers);
    const node = 1 + randomInt(random, options.nodes);
    let fault: Fault;
    switch (kind) {
      case "cut-route": {
        const other = 1 + ((server - 1 + 1 + randomInt(random, options.servers - 1)) % options.servers);
        fault = { kind, a: Math.min(server, other), b: Math.max(server, other) };
        break;
      }
      case "isolate-server":
      case "kill-server":
        fault = { kind, server };
        break;
      case "kill-node":
      case "stop-node":
        fault = { kind, node };
        break;
    }
    const episode = { index: episodes.length, fault, holdMs: between(hold), gapMs: between(gap) };
    episodes.push(episode);
    planned += episode.holdMs + episode.gapMs + settle;
  }
  return episodes;
}

export function describeFault(fault: Fault): string {
  switch (fault.kind) {
    case "cut-route":
      return `cut route s${fault.a}-s${fault.b}`;
    case "isolate-server":
      return `isolate s${fault.server}`;
    case "kill-server":
      return `SIGKILL nats-server s${fault.server}`;
    case "kill-node":
      return `SIGKILL node ${fault.node}`;
    case "stop-node":
      return `SIGSTOP node ${fault.node}`;
  }
}

/** A short hash of the schedule: equal for two runs of the same seed and options. */
export function fingerprint(episodes: readonly Episode[]): string {
  return createHash("sha256").update(JSON.stringify(episodes)).digest("hex").slice(0, 16);
}
