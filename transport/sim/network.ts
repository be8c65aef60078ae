// A deterministic in-memory NATS deployment: servers in a full mesh of routes,
// clients attached to one server each, seeded latency and faults (cut links and
// routes, crashes, drops, delays), and a trace two runs can be compared by.
import { type Clock, type Random, randomInt, randomToken, seededRandom } from "../clock.js";
import type { Message } from "../transport.js";
import { type ScopedClock, SimClock } from "./clock.js";
import { DuplicateConnectionError, SimConfigError, UnknownHostError, UnknownServerError } from "./errors.js";
import {
  type Outgoing,
  SimConnection,
  type SimServerPort,
  type SimSub,
  type SimTransport,
} from "./transport.js";

export interface SimNetworkOptions {
  readonly seed: number;
  /** Number of servers, numbered 0..servers-1 (default 1). */
  readonly servers?: number;
  /** Latency of one delivery or one client-server round trip, drawn uniformly in whole ms (default 1..3). */
  readonly latencyMs?: { readonly min: number; readonly max: number };
  /** Time between two reconnect attempts of a disconnected client (default 250, as nats.js). */
  readonly reconnectWaitMs?: number;
  /** Largest payload, headers included (default 1 MiB, as nats-server). */
  readonly maxPayload?: number;
  /** Record the trace (default true); long simulations may turn it off. */
  readonly trace?: boolean;
}

export interface ConnectOptions {
  /** The server to attach to (default 0). */
  readonly server?: number;
}

export interface SimFaults {
  /** Probability in [0, 1] that one delivery is lost. */
  readonly dropRate?: number;
  /** Added to every delivery's latency, in ms. */
  readonly extraDelayMs?: number;
}

export type TraceKind =
  | "connect"
  | "close"
  | "crash"
  | "fault"
  | "publish"
  | "deliver"
  | "drop"
  | "noResponders"
  | "timeout"
  | "status"
  | "handlerError"
  | "listenerError";

/** One thing that happened, as plain data: two runs with the same seed produce deep-equal traces. */
export interface TraceEntry {
  readonly time: number;
  readonly kind: TraceKind;
  readonly from?: string;
  readonly to?: string;
  readonly subject?: string;
  readonly bytes?: number;
  /** FNV-1a of the payload, 8 hex digits. */
  readonly hash?: string;
  /** Why (drops), which status, which error, how many receivers. */
  readonly detail?: string;
}

interface Host {
  readonly clock: ScopedClock;
}

interface InFlight {
  count: number;
  last: number;
}

/**
 * Choices where the sim must pick one behaviour of many a real deployment shows:
 * - a latency draw is one client-to-client delivery, and also one client-server round trip
 *   (flush, the 503 answer to a request without responders);
 * - a cut link loses the session at once (no interest, in-flight deliveries to it lost);
 *   the client notices one latency later and reconnects to the same server;
 * - what a client publishes while its session is down is dropped, not buffered as nats.js
 *   would: a partitioned node's output is lost, which is the harder case for the runtime;
 * - faults (cut links, drops, delays) belong to a host name and outlive its restarts;
 * - a crashed host's messages already in flight still land: they had left the host.
 */
export class SimNetwork {
  readonly clock: SimClock;
  readonly random: Random;
  readonly servers: number;
  readonly maxPayload: number;
  readonly reconnectWaitMs: number;
  readonly trace: TraceEntry[] = [];
  readonly #tracing: boolean;
  readonly #latency: { readonly min: number; readonly max: number };
  readonly #interest = new InterestIndex();
  readonly #hosts = new Map<string, Host>();
  readonly #live = new Map<string, SimConnection>();
  readonly #cutLinks = new Set<string>();
  /** Indexed by a*servers+b with a<b; bumped on every cut so deliveries already on the route are lost. */
  readonly #routeEpoch: number[];
  readonly #routeDown: boolean[];
  #faults: Required<SimFaults> = { dropRate: 0, extraDelayMs: 0 };
  readonly #hostFaults = new Map<string, Required<SimFaults>>();
  /** Per publisher, per receiver: when the last delivery lands, to keep each pair FIFO. */
  readonly #fifo = new Map<SimConnection, Map<SimConnection, number>>();
  readonly #inFlight = new Map<SimConnection, InFlight>();
  #nextSid = 1;
  readonly #port: SimServerPort;

  constructor(options: SimNetworkOptions) {
    const servers = options.servers ?? 1;
    const latency = options.latencyMs ?? { min: 1, max: 3 };
    const reconnectWaitMs = options.reconnectWaitMs ?? 250;
    const maxPayload = options.maxPayload ?? 1_048_576;
    if (!Number.isInteger(servers) || servers < 1) throw new SimConfigError("servers", servers);
    if (!Number.isInteger(latency.min) || !Number.isInteger(latency.max) || latency.min < 0) {
      throw new SimConfigError("latencyMs", latency);
    }
    if (latency.max < latency.min) throw new SimConfigError("latencyMs", latency);
    if (!(reconnectWaitMs > 0)) throw new SimConfigError("reconnectWaitMs", reconnectWaitMs);
    if (!Number.isInteger(maxPayload) || maxPayload < 1) throw new SimConfigError("maxPayload", maxPayload);
    this.clock = new SimClock();
    this.random = seededRandom(options.seed);
    this.servers = servers;
    this.maxPayload = maxPayload;
    this.reconnectWaitMs = reconnectWaitMs;
    this.#latency = { min: latency.min, max: latency.max };
    this.#tracing = options.trace ?? true;
    this.#routeEpoch = new Array<number>(servers * servers).fill(0);
    this.#routeDown = new Array<boolean>(servers * servers).fill(false);
    this.#port = {
      maxPayload,
      linkUp: (name) => !this.#cutLinks.has(name),
      latency: () => this.#drawLatency(),
      inbox: () => this.inbox(),
      publish: (from, message) => this.#publish(from, message),
      addInterest: (sub) => {
        sub.sid = this.#nextSid++;
        this.#interest.add(sub);
      },
      removeInterest: (sub) => this.#interest.remove(sub),
      lastDeliveryFrom: (conn) => this.#inFlight.get(conn)?.last,
      release: (conn) => this.#release(conn),
      record: (entry) => this.#record(entry),
    };
  }

  /** The URL-like name clients see for server `index`. */
  serverName(index: number): string {
    return `sim://server-${index}`;
  }

  /** Attaches a client named `name` to a server; after a crash, this is the restart. */
  connect(name: string, options: ConnectOptions = {}): SimTransport {
    if (this.#live.has(name)) throw new DuplicateConnectionError(name);
    const server = options.server ?? 0;
    this.#assertServer(server);
    const host = this.#host(name);
    const conn = new SimConnection({
      name,
      server,
      serverName: this.serverName(server),
      reconnectWaitMs: this.reconnectWaitMs,
      clock: host.clock,
      port: this.#port,
    });
    this.#live.set(name, conn);
    this.#record({ time: this.clock.now(), kind: "connect", from: name, detail: conn.serverName });
    return conn.transport;
  }

  /** A Clock for the runtime of host `name`; a crash cancels its timers and makes it inert. */
  hostClock(name: string): Clock {
    return this.#host(name).clock;
  }

  /** A fresh `_INBOX.<token>` from the seeded generator (what every SimTransport.inbox() returns). */
  inbox(): string {
    return `_INBOX.${randomToken(this.random, 22)}`;
  }

  /** Cuts host `name` from its server. The fault belongs to the host: it outlives a restart. */
  cutLink(name: string): void {
    if (this.#cutLinks.has(name)) return;
    this.#cutLinks.add(name);
    this.#record({ time: this.clock.now(), kind: "fault", to: name, detail: "cutLink" });
    this.#live.get(name)?.linkLost();
  }

  /** Heals the link; the client reconnects at its next attempt. */
  restoreLink(name: string): void {
    if (!this.#cutLinks.delete(name)) return;
    this.#record({ time: this.clock.now(), kind: "fault", to: name, detail: "restoreLink" });
  }

  isLinkCut(name: string): boolean {
    return this.#cutLinks.has(name);
  }

  cutRoute(a: number, b: number): void {
    const at = this.#routeIndex(a, b);
    if (this.#routeDown[at]) return;
    this.#routeDown[at] = true;
    this.#routeEpoch[at] = (this.#routeEpoch[at] ?? 0) + 1;
    this.#record({ time: this.clock.now(), kind: "fault", detail: `cutRoute ${a}-${b}` });
  }

  restoreRoute(a: number, b: number): void {
    const at = this.#routeIndex(a, b);
    if (!this.#routeDown[at]) return;
    this.#routeDown[at] = false;
    this.#record({ time: this.clock.now(), kind: "fault", detail: `restoreRoute ${a}-${b}` });
  }

  /** Kills host `name` silently: its connection vanishes and its host clock stops. */
  crash(name: string): void {
    const host = this.#hosts.get(name);
    if (host === undefined) throw new UnknownHostError(name);
    this.#hosts.delete(name);
    host.clock.cancel();
    const conn = this.#live.get(name);
    if (conn !== undefined) {
      this.#live.delete(name);
      conn.crash();
      this.#forget(conn);
    }
    this.#record({ time: this.clock.now(), kind: "crash", to: name });
  }

  /** Sets faults for every publisher, or for the outgoing messages of host `name`; they add up. */
  setFaults(faults: SimFaults, name?: string): void {
    const { dropRate, extraDelayMs } = faults;
    if (dropRate !== undefined && !(dropRate >= 0 && dropRate <= 1)) {
      throw new SimConfigError("dropRate", dropRate);
    }
    if (extraDelayMs !== undefined && !(Number.isInteger(extraDelayMs) && extraDelayMs >= 0)) {
      throw new SimConfigError("extraDelayMs", extraDelayMs);
    }
    const current = name === undefined ? this.#faults : this.#faultsOf(name);
    const next = {
      dropRate: dropRate ?? current.dropRate,
      extraDelayMs: extraDelayMs ?? current.extraDelayMs,
    };
    if (name === undefined) this.#faults = next;
    else this.#hostFaults.set(name, next);
    this.#record({
      time: this.clock.now(),
      kind: "fault",
      ...(name === undefined ? {} : { to: name }),
      detail: `drop=${next.dropRate} delay=${next.extraDelayMs}`,
    });
  }

  // --- the store (sim/kv.ts) -----------------------------------------------------------

  /**
   * Whether host `name` reaches a replicated JetStream: its session is attached,
   * and its server's component of up routes holds more than half the servers
   * (a JetStream cluster answers only where its quorum is).
   */
  reachesQuorum(name: string): boolean {
    const conn = this.#live.get(name);
    if (conn === undefined || !conn.attached) return false;
    const seen = new Set<number>([conn.server]);
    const queue = [conn.server];
    for (let at = queue.pop(); at !== undefined; at = queue.pop()) {
      for (let other = 0; other < this.servers; other++) {
        if (seen.has(other) || this.#routeDown[this.#routeIndex(at, other)]) continue;
        seen.add(other);
        queue.push(other);
      }
    }
    return seen.size * 2 > this.servers;
  }

  /** The delay of one hop of host `name`'s store traffic, or undefined when the drop draw loses it. */
  storeHop(name: string): number | undefined {
    const own = this.#hostFaults.get(name);
    const dropRate =
      own === undefined ? this.#faults.dropRate : 1 - (1 - this.#faults.dropRate) * (1 - own.dropRate);
    if (dropRate > 0 && this.random.next() < dropRate) return undefined;
    return this.#drawLatency() + this.#faults.extraDelayMs + (own?.extraDelayMs ?? 0);
  }

  // --- routing -------------------------------------------------------------------

  #publish(from: SimConnection, message: Outgoing): number | undefined {
    const now = this.clock.now();
    const hash = this.#tracing ? contentHash(message.data) : "";
    if (!from.attached) {
      // Real nats.js would buffer and send after reconnecting; see the class comment.
      this.#traceMessage("drop", from, undefined, message, hash, "disconnected");
      return undefined;
    }
    const receivers = this.#receivers(from, message.subject);
    this.#traceMessage("publish", from, undefined, message, hash, `${receivers.length}`);
    const own = this.#hostFaults.get(from.name);
    const dropRate =
      own === undefined ? this.#faults.dropRate : 1 - (1 - this.#faults.dropRate) * (1 - own.dropRate);
    const extraDelay = this.#faults.extraDelayMs + (own?.extraDelayMs ?? 0);
    for (const sub of receivers) {
      const to = sub.conn;
      if (dropRate > 0 && this.random.next() < dropRate) {
        this.#traceMessage("drop", from, to, message, hash, "fault");
        continue;
      }
      let pairs = this.#fifo.get(from);
      if (pairs === undefined) {
        pairs = new Map();
        this.#fifo.set(from, pairs);
      }
      const due = Math.max(now + this.#drawLatency() + extraDelay, pairs.get(to) ?? 0);
      pairs.set(to, due);
      const flight = this.#inFlight.get(from);
      if (flight === undefined) this.#inFlight.set(from, { count: 1, last: due });
      else {
        flight.count++;
        flight.last = Math.max(flight.last, due);
      }
      const linkEpoch = to.linkEpoch;
      const routeEpoch =
        from.server === to.server ? 0 : (this.#routeEpoch[this.#routeIndex(from.server, to.server)] ?? 0);
      this.clock.setTimeout(() => this.#arrive(from, sub, message, hash, linkEpoch, routeEpoch), due - now);
    }
    return receivers.length;
  }

  /** Who gets a message: every reachable plain subscription, and one member per queue group. */
  #receivers(from: SimConnection, subject: string): SimSub[] {
    const out: SimSub[] = [];
    let groups: Map<string, SimSub[]> | undefined;
    for (const sub of this.#interest.match(subject)) {
      if (!this.#reachable(from, sub.conn)) continue;
      if (sub.queue === undefined) {
        out.push(sub);
        continue;
      }
      // A queue group is the pair (subject pattern, queue name), as in nats-server.
      const key = `${sub.queue} ${sub.subject}`;
      groups ??= new Map();
      const members = groups.get(key);
      if (members === undefined) groups.set(key, [sub]);
      else members.push(sub);
    }
    if (groups === undefined) return out;
    for (const members of groups.values()) {
      // nats-server prefers a member on the publisher's own server.
      const local = members.filter((m) => m.conn.server === from.server);
      const pool = local.length > 0 ? local : members;
      out.push(pool.length === 1 ? pool[0]! : pool[randomInt(this.random, pool.length)]!);
    }
    return out.sort(bySid);
  }

  #reachable(from: SimConnection, to: SimConnection): boolean {
    if (!to.attached) return false;
    return from.server === to.server || !this.#routeDown[this.#routeIndex(from.server, to.server)];
  }

  #arrive(
    from: SimConnection,
    sub: SimSub,
    message: Outgoing,
    hash: string,
    linkEpoch: number,
    routeEpoch: number,
  ): void {
    const flight = this.#inFlight.get(from);
    if (flight !== undefined && --flight.count === 0) this.#inFlight.delete(from);
    const to = sub.conn;
    let lost: string | undefined;
    if (!sub.active) lost = to.live ? "unsubscribed" : "gone";
    else if (to.linkEpoch !== linkEpoch) lost = "link";
    else if (
      from.server !== to.server &&
      this.#routeEpoch[this.#routeIndex(from.server, to.server)] !== routeEpoch
    ) {
      lost = "route";
    }
    if (lost !== undefined) {
      this.#traceMessage("drop", from, to, message, hash, lost);
      return;
    }
    this.#traceMessage("deliver", from, to, message, hash, undefined);
    const msg: Message = {
      subject: message.subject,
      // Each receiver gets its own bytes, as from its own socket.
      data: message.data.slice(),
      reply: message.reply,
      headers: message.headers === undefined ? undefined : { ...message.headers },
    };
    to.deliver(sub, msg);
  }

  // --- bookkeeping -----------------------------------------------------------------

  #host(name: string): Host {
    let host = this.#hosts.get(name);
    if (host === undefined) {
      host = { clock: this.clock.scope() };
      this.#hosts.set(name, host);
    }
    return host;
  }

  #release(conn: SimConnection): void {
    if (this.#live.get(conn.name) === conn) this.#live.delete(conn.name);
    this.#forget(conn);
    this.#record({ time: this.clock.now(), kind: "close", to: conn.name });
  }

  /** Drops FIFO state kept for a dead publisher (its in-flight deliveries keep their own due times). */
  #forget(conn: SimConnection): void {
    this.#fifo.delete(conn);
  }

  #faultsOf(name: string): Required<SimFaults> {
    return this.#hostFaults.get(name) ?? { dropRate: 0, extraDelayMs: 0 };
  }

  #drawLatency(): number {
    const { min, max } = this.#latency;
    return max === min ? min : min + randomInt(this.random, max - min + 1);
  }

  #assertServer(server: number): void {
    if (!Number.isInteger(server) || server < 0 || server >= this.servers) {
      throw new UnknownServerError(server, this.servers);
    }
  }

  #routeIndex(a: number, b: number): number {
    this.#assertServer(a);
    this.#assertServer(b);
    if (a === b) throw new UnknownServerError(b, this.servers);
    return a < b ? a * this.servers + b : b * this.servers + a;
  }

  #traceMessage(
    kind: TraceKind,
    from: SimConnection,
    to: SimConnection | undefined,
    message: Outgoing,
    hash: string,
    detail: string | undefined,
  ): void {
    // Built only when tracing: long runs without a trace should not pay for it.
    if (!this.#tracing) return;
    this.trace.push({
      time: this.clock.now(),
      kind,
      from: from.name,
      ...(to === undefined ? {} : { to: to.name }),
      subject: message.subject,
      bytes: message.data.byteLength,
      hash,
      ...(detail === undefined ? {} : { detail }),
    });
  }

  #record(entry: TraceEntry): void {
    if (this.#tracing) this.trace.push(entry);
  }
}

function bySid(a: SimSub, b: SimSub): number {
  return a.sid - b.sid;
}

/** FNV-1a, 32 bits: enough to tell payloads apart in a trace. */
function contentHash(data: Uint8Array): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < data.length; i++) {
    h ^= data[i]!;
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, "0");
}

class WildNode {
  readonly children = new Map<string, WildNode>();
  /** Subscriptions ending exactly here. */
  readonly subs = new Set<SimSub>();
  /** Subscriptions ending in `>` here. */
  readonly tails = new Set<SimSub>();

  get empty(): boolean {
    return this.children.size === 0 && this.subs.size === 0 && this.tails.size === 0;
  }
}

/**
 * Interest by subject, as nats-server's sublist: literal subjects in a map,
 * wildcard ones in a token trie, so matching costs O(matches), not O(subscriptions).
 */
class InterestIndex {
  readonly #literal = new Map<string, Set<SimSub>>();
  readonly #root = new WildNode();

  add(sub: SimSub): void {
    if (!isWildcard(sub.subject)) {
      let set = this.#literal.get(sub.subject);
      if (set === undefined) {
        set = new Set();
        this.#literal.set(sub.subject, set);
      }
      set.add(sub);
      return;
    }
    let node = this.#root;
    for (const token of sub.subject.split(".")) {
      if (token === ">") {
        node.tails.add(sub);
        return;
      }
      let child = node.children.get(token);
      if (child === undefined) {
        child = new WildNode();
        node.children.set(token, child);
      }
      node = child;
    }
    node.subs.add(sub);
  }

  remove(sub: SimSub): void {
    if (!isWildcard(sub.subject)) {
      const set = this.#literal.get(sub.subject);
      if (set?.delete(sub) && set.size === 0) this.#literal.delete(sub.subject);
      return;
    }
    const tokens = sub.subject.split(".");
    const path: WildNode[] = [this.#root];
    let node = this.#root;
    for (const token of tokens) {
      if (token === ">") {
        node.tails.delete(sub);
        break;
      }
      const child = node.children.get(token);
      if (child === undefined) return;
      node = child;
      path.push(node);
    }
    node.subs.delete(sub);
    // Prune so that churn (restarts, per-request patterns) does not grow the trie forever.
    for (let i = path.length - 1; i > 0; i--) {
      if (!path[i]!.empty) break;
      path[i - 1]!.children.delete(tokens[i - 1]!);
    }
  }

  /** Matching subscriptions in subscription order. */
  match(subject: string): SimSub[] {
    const out: SimSub[] = [];
    const literal = this.#literal.get(subject);
    if (literal !== undefined) for (const sub of literal) out.push(sub);
    if (this.#root.empty) return out;
    const tokens = subject.split(".");
    const visit = (node: WildNode, i: number): void => {
      if (i < tokens.length) for (const sub of node.tails) out.push(sub);
      if (i === tokens.length) {
        for (const sub of node.subs) out.push(sub);
        return;
      }
      const exact = node.children.get(tokens[i]!);
      if (exact !== undefined) visit(exact, i + 1);
      const star = node.children.get("*");
      if (star !== undefined) visit(star, i + 1);
    };
    visit(this.#root, 0);
    return out.length > 1 ? out.sort(bySid) : out;
  }
}

function isWildcard(subject: string): boolean {
  return subject.split(".").some((t) => t === "*" || t === ">");
}
