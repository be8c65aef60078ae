// A deterministic in-memory NATS deployment: servers in a full mesh of routes,
// clients attached to one server each, seeded latency and faults (cut links and
// routes, crashes, drops, delays), and a trace two runs can be compared by.

import { disconnectAdvisorySubject } from "../../protocol/advisories.js";
import { type Clock, type Random, randomInt, randomToken, seededRandom } from "../clock.js";
import {
  type DisconnectReason,
  disconnectAdvisory,
  type SimServerInfo,
  type SimSession,
} from "./advisory.js";
import { type ScopedClock, SimClock } from "./clock.js";
import { DuplicateConnectionError, SimConfigError, UnknownHostError, UnknownServerError } from "./errors.js";
import { bySid, InterestIndex } from "./interest.js";
import { contentHash, type TraceEntry, type TraceKind } from "./trace.js";
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
  /** The account the clients are in, as the advisories name it (default `$G`, nats-server's global account). */
  readonly account?: string;
  /**
   * How long after a link is cut its server declares the session stale and
   * publishes its DISCONNECT advisory (default 30 000: nats.conf's ping_interval
   * of 10 s with ping_max 2; the server learns of a silent cut only by its pings).
   */
  readonly staleAfterMs?: number;
}

export interface ConnectOptions {
  /** The server to attach to (default 0). */
  readonly server?: number;
  /** The connection's `name` option, as servers report it (default: the host's name). */
  readonly clientName?: string;
}

export interface SimFaults {
  /** Probability in [0, 1] that one delivery is lost. */
  readonly dropRate?: number;
  /** Added to every delivery's latency, in ms. */
  readonly extraDelayMs?: number;
}

interface Host {
  readonly clock: ScopedClock;
}

interface InFlight {
  count: number;
  last: number;
}

/** Who a message comes from: a client connection, or a server speaking for itself (advisories). */
interface Publisher {
  readonly name: string;
  readonly server: number;
}

/**
 * The deliveries of one message that land at one instant: one timer for all of
 * them. Each receiver comes with what its path looked like when the message left
 * (parallel arrays: a broadcast to a fleet keeps millions of these in flight).
 */
interface Landing {
  readonly due: number;
  readonly subs: SimSub[];
  readonly linkEpochs: number[];
  readonly routeEpochs: number[];
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
 * - a crashed host's messages already in flight still land: they had left the host;
 * - the deliveries of one message that land at the same instant share one timer, and
 *   run back to back in subscription order (the order their own timers had), as one
 *   socket read hands a client several messages without a pause in between;
 * - receivers share the message's bytes (each publish is copied once, at the sender);
 * - a session that ends publishes a DISCONNECT advisory where someone listens, from its
 *   server and across the routes that are up: "Client Closed" at once when the client
 *   closes or its process dies (the kernel closes the socket), "Stale Connection"
 *   staleAfterMs after its link was cut, even if the client has reconnected since
 *   (that is a new session, with a new client id).
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
  readonly #fifo = new Map<Publisher, Map<SimConnection, number>>();
  readonly #inFlight = new Map<Publisher, InFlight>();
  #nextSid = 1;
  readonly #port: SimServerPort;
  readonly #account: string;
  readonly #staleAfterMs: number;
  /** Per server: its advisory identity, its last client id and its event count. */
  readonly #serverInfo: SimServerInfo[];
  readonly #serverPublisher: Publisher[];
  readonly #lastCid: number[];
  readonly #eventSeq: number[];
  #advisories = 0;

  constructor(options: SimNetworkOptions) {
    const servers = options.servers ?? 1;
    const latency = options.latencyMs ?? { min: 1, max: 3 };
    const reconnectWaitMs = options.reconnectWaitMs ?? 250;
    const maxPayload = options.maxPayload ?? 1_048_576;
    const account = options.account ?? "$G";
    const staleAfterMs = options.staleAfterMs ?? 30_000;
    if (!Number.isInteger(servers) || servers < 1) throw new SimConfigError("servers", servers);
    if (!Number.isInteger(latency.min) || !Number.isInteger(latency.max) || latency.min < 0) {
      throw new SimConfigError("latencyMs", latency);
    }
    if (latency.max < latency.min) throw new SimConfigError("latencyMs", latency);
    if (!(reconnectWaitMs > 0)) throw new SimConfigError("reconnectWaitMs", reconnectWaitMs);
    if (!Number.isInteger(maxPayload) || maxPayload < 1) throw new SimConfigError("maxPayload", maxPayload);
    if (!/^[^\s.*>]+$/.test(account)) throw new SimConfigError("account", account);
    if (!(staleAfterMs >= 0)) throw new SimConfigError("staleAfterMs", staleAfterMs);
    this.clock = new SimClock();
    this.random = seededRandom(options.seed);
    this.servers = servers;
    this.maxPayload = maxPayload;
    this.reconnectWaitMs = reconnectWaitMs;
    this.#latency = { min: latency.min, max: latency.max };
    this.#tracing = options.trace ?? true;
    this.#routeEpoch = new Array<number>(servers * servers).fill(0);
    this.#routeDown = new Array<boolean>(servers * servers).fill(false);
    this.#account = account;
    this.#staleAfterMs = staleAfterMs;
    const indexes = [...Array(servers).keys()];
    this.#serverInfo = indexes.map((i) => ({ name: `sim-server-${i}`, id: `NSIMSERVER${i}` }));
    this.#serverPublisher = indexes.map((i) => ({ name: `sim-server-${i}`, server: i }));
    this.#lastCid = indexes.map(() => 0);
    this.#eventSeq = indexes.map(() => 0);
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
      attach: (conn) => this.#attach(conn),
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
      clientName: options.clientName ?? name,
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
    const conn = this.#live.get(name);
    if (conn === undefined) return;
    const session = conn.session;
    if (session !== undefined) {
      conn.session = undefined;
      // The server hears nothing more, and says so once its pings have gone unanswered.
      this.clock.setTimeout(() => this.#disconnected(conn, session, "Stale Connection"), this.#staleAfterMs);
    }
    conn.linkLost();
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
    // The kernel closes a killed process's socket: its server sees the session end now.
    if (conn !== undefined) this.#ended(conn);
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
    const hash = this.#tracing ? contentHash(message.data) : "";
    if (!from.attached) {
      // Real nats.js would buffer and send after reconnecting; see the class comment.
      this.#traceMessage("drop", from, undefined, message, hash, "disconnected");
      return undefined;
    }
    const session = from.session;
    if (session !== undefined) {
      session.inMsgs++;
      session.inBytes += message.data.byteLength;
    }
    const receivers = this.#receivers(from, message.subject);
    this.#traceMessage("publish", from, undefined, message, hash, `${receivers.length}`);
    this.#route(from, message, hash, receivers);
    return receivers.length;
  }

  /**
   * Draws each receiver's fate (drop, then latency) in subscription order, then
   * schedules one timer per instant: the deliveries fire in the order one timer
   * per receiver would have given them (those of one message are contiguous in
   * the clock's order, and each instant's keep their order within it).
   */
  #route(from: Publisher, message: Outgoing, hash: string, receivers: readonly SimSub[]): void {
    if (receivers.length === 0) return;
    const now = this.clock.now();
    const own = this.#hostFaults.get(from.name);
    const dropRate =
      own === undefined ? this.#faults.dropRate : 1 - (1 - this.#faults.dropRate) * (1 - own.dropRate);
    const extraDelay = this.#faults.extraDelayMs + (own?.extraDelayMs ?? 0);
    let pairs = this.#fifo.get(from);
    if (pairs === undefined) {
      pairs = new Map();
      this.#fifo.set(from, pairs);
    }
    const landings: Landing[] = [];
    let scheduled = 0;
    let last = 0;
    for (const sub of receivers) {
      const to = sub.conn;
      if (dropRate > 0 && this.random.next() < dropRate) {
        this.#traceMessage("drop", from, to, message, hash, "fault");
        continue;
      }
      const due = Math.max(now + this.#drawLatency() + extraDelay, pairs.get(to) ?? 0);
      pairs.set(to, due);
      const routeEpoch =
        from.server === to.server ? 0 : this.#routeEpoch[this.#routeAt(from.server, to.server)]!;
      let landing = landings[0];
      for (let at = 1; landing !== undefined && landing.due !== due; at++) landing = landings[at];
      if (landing === undefined) {
        landing = { due, subs: [], linkEpochs: [], routeEpochs: [] };
        landings.push(landing);
      }
      landing.subs.push(sub);
      landing.linkEpochs.push(to.linkEpoch);
      landing.routeEpochs.push(routeEpoch);
      scheduled++;
      if (due > last) last = due;
    }
    if (scheduled === 0) return;
    const flight = this.#inFlight.get(from);
    if (flight === undefined) this.#inFlight.set(from, { count: scheduled, last });
    else {
      flight.count += scheduled;
      flight.last = Math.max(flight.last, last);
    }
    for (const landing of landings) {
      this.clock.setTimeout(() => this.#land(from, message, hash, landing), landing.due - now);
    }
  }

  /** Who gets a message: every reachable plain subscription, and one member per queue group. */
  #receivers(from: Publisher, subject: string): readonly SimSub[] {
    const { subs, queued } = this.#interest.match(subject);
    if (!queued) {
      // Most of the time everyone is reachable: hand out the shared list itself.
      let i = 0;
      while (i < subs.length && this.#reachable(from, subs[i]!.conn)) i++;
      return i === subs.length ? subs : subs.filter((sub) => this.#reachable(from, sub.conn));
    }
    const out: SimSub[] = [];
    let groups: Map<string, SimSub[]> | undefined;
    for (const sub of subs) {
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

  #reachable(from: Publisher, to: SimConnection): boolean {
    if (!to.attached) return false;
    return from.server === to.server || !this.#routeDown[this.#routeAt(from.server, to.server)];
  }

  #land(from: Publisher, message: Outgoing, hash: string, landing: Landing): void {
    const { subs, linkEpochs, routeEpochs } = landing;
    for (let i = 0; i < subs.length; i++) {
      const sub = subs[i]!;
      const flight = this.#inFlight.get(from);
      if (flight !== undefined && --flight.count === 0) this.#inFlight.delete(from);
      const to = sub.conn;
      let lost: string | undefined;
      if (!sub.active) lost = to.live ? "unsubscribed" : "gone";
      else if (to.linkEpoch !== linkEpochs[i]) lost = "link";
      else if (
        from.server !== to.server &&
        this.#routeEpoch[this.#routeAt(from.server, to.server)] !== routeEpochs[i]
      ) {
        lost = "route";
      }
      if (lost !== undefined) {
        this.#traceMessage("drop", from, to, message, hash, lost);
        continue;
      }
      this.#traceMessage("deliver", from, to, message, hash, undefined);
      const session = to.session;
      if (session !== undefined) {
        session.outMsgs++;
        session.outBytes += message.data.byteLength;
      }
      to.deliver(sub, message);
    }
  }

  // --- sessions and their advisories -----------------------------------------------------

  #attach(conn: SimConnection): void {
    const cid = ++this.#lastCid[conn.server]!;
    conn.session = { cid, start: this.clock.now(), inMsgs: 0, inBytes: 0, outMsgs: 0, outBytes: 0 };
  }

  /** The client closed, or its process died: if its server held a session, that session ends now. */
  #ended(conn: SimConnection): void {
    const session = conn.session;
    if (session === undefined) return;
    conn.session = undefined;
    this.#disconnected(conn, session, "Client Closed");
  }

  /** Publishes the DISCONNECT advisory of `session` from its server, where anyone listens. */
  #disconnected(conn: SimConnection, session: SimSession, reason: DisconnectReason): void {
    const from = this.#serverPublisher[conn.server]!;
    const subject = disconnectAdvisorySubject(this.#account);
    // nats-server sends its events only where there is interest; nor does the sim draw or trace for none.
    const receivers = this.#receivers(from, subject);
    if (receivers.length === 0) return;
    const data = disconnectAdvisory({
      id: `${this.#serverInfo[conn.server]!.id}-${++this.#advisories}`,
      at: this.clock.now(),
      server: this.#serverInfo[conn.server]!,
      serverSeq: ++this.#eventSeq[conn.server]!,
      account: this.#account,
      clientName: conn.clientName,
      session,
      reason,
    });
    const message: Outgoing = { subject, data, reply: undefined, headers: undefined };
    const hash = this.#tracing ? contentHash(data) : "";
    this.#traceMessage("publish", from, undefined, message, hash, `${receivers.length}`);
    this.#route(from, message, hash, receivers);
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
    this.#ended(conn);
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
    return this.#routeAt(a, b);
  }

  /** #routeIndex for two servers already known to be distinct and valid (the routing hot path). */
  #routeAt(a: number, b: number): number {
    return a < b ? a * this.servers + b : b * this.servers + a;
  }

  #traceMessage(
    kind: TraceKind,
    from: Publisher,
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
