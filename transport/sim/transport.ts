// The client side of the simulated deployment: what nats.js does on one host
// (subscriptions, requests, flush, status and reconnect loop), speaking to the
// simulated servers of network.ts through a small port instead of a socket.
import type { Clock } from "../clock.js";
import {
  InvalidSubjectError,
  NoRespondersError,
  PayloadTooLargeError,
  TimeoutError,
  TransportClosedError,
} from "../errors.js";
import {
  type Headers,
  isPublishSubject,
  isSubscribeSubject,
  type Message,
  type MessageHandler,
  type PublishOptions,
  type RequestOptions,
  type StatusListener,
  type SubscribeOptions,
  type Subscription,
  type Transport,
  type TransportStatus,
} from "../transport.js";
import type { SimSession } from "./advisory.js";
import type { TraceEntry } from "./trace.js";

/** A subscription as the servers index it. */
export interface SimSub {
  /** Network-wide, increasing: gives matches a stable order. */
  sid: number;
  readonly conn: SimConnection;
  readonly subject: string;
  readonly queue: string | undefined;
  readonly handler: MessageHandler;
  active: boolean;
}

/**
 * A message on its way out of a client, already copied so later mutation by the
 * caller cannot leak. Every receiver is handed this same object as its Message:
 * receivers read the bytes and never write them (no code in dvsd does).
 */
export interface Outgoing {
  readonly subject: string;
  readonly data: Uint8Array;
  readonly reply: string | undefined;
  readonly headers: Headers | undefined;
}

/** What a client connection needs from the servers; SimNetwork implements it. */
export interface SimServerPort {
  readonly maxPayload: number;
  /** Whether the host's link to its server is up (reconnect attempts ask this). */
  linkUp(name: string): boolean;
  /** One draw of network latency, in ms: a client-to-client delivery or a client-server round trip. */
  latency(): number;
  inbox(): string;
  /** Routes a message; the number of receivers the server found, or undefined when it was not sent. */
  publish(from: SimConnection, message: Outgoing): number | undefined;
  addInterest(sub: SimSub): void;
  /** The server accepted a session of `conn` (its first connect or a reconnect). */
  attach(conn: SimConnection): void;
  removeInterest(sub: SimSub): void;
  /** When the last delivery still in flight from `conn` lands, if any is in flight. */
  lastDeliveryFrom(conn: SimConnection): number | undefined;
  /** The connection closed: its name is free again. */
  release(conn: SimConnection): void;
  record(entry: TraceEntry): void;
}

export interface SimConnectionOptions {
  /** The host's name: faults and crashes are aimed at it. */
  readonly name: string;
  /** The connection's `name` option, as the server reports it (`nats server report connections`, advisories). */
  readonly clientName: string;
  readonly server: number;
  readonly serverName: string;
  readonly reconnectWaitMs: number;
  /** The host's clock: crash cancels it, which stops timeouts and reconnect attempts. */
  readonly clock: Clock;
  readonly port: SimServerPort;
}

type ConnectionState = "attached" | "detached" | "closed" | "crashed";

interface PendingRequest {
  fail(error: Error): void;
}

const headerOverhead = "NATS/1.0\r\n\r\n".length;

/** Bytes the headers take on the wire, since NATS counts them against max_payload. */
function headerBytes(headers: Headers | undefined): number {
  if (headers === undefined) return 0;
  let n = headerOverhead;
  for (const [k, v] of Object.entries(headers)) n += Buffer.byteLength(k) + Buffer.byteLength(v) + 4;
  return n;
}

const queuePattern = /^[^\s]+$/;

/** One client connection; the network holds it, callers hold its SimTransport face. */
export class SimConnection {
  readonly name: string;
  readonly clientName: string;
  readonly server: number;
  readonly serverName: string;
  readonly transport: SimTransport;
  /** The server's side of the current session, while it holds one; kept by the network. */
  session: SimSession | undefined;
  readonly #clock: Clock;
  readonly #port: SimServerPort;
  readonly #reconnectWaitMs: number;
  #state: ConnectionState;
  #status: TransportStatus["type"];
  /** Bumped whenever the server loses this session, so deliveries scheduled before are lost. */
  #linkEpoch = 0;
  readonly #listeners = new Set<StatusListener>();
  readonly #subs = new Set<SimSub>();
  readonly #requests = new Set<PendingRequest>();
  readonly #flushes = new Set<PendingRequest>();
  /** flush() calls waiting for a reconnect. */
  readonly #waitingForLink = new Set<{ resolve(): void; fail(error: Error): void }>();
  readonly #closed: Promise<Error | undefined>;
  #resolveClosed!: (error: Error | undefined) => void;

  constructor(options: SimConnectionOptions) {
    this.name = options.name;
    this.clientName = options.clientName;
    this.server = options.server;
    this.serverName = options.serverName;
    this.#clock = options.clock;
    this.#port = options.port;
    this.#reconnectWaitMs = options.reconnectWaitMs;
    this.#closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
    this.transport = new SimTransport(this);
    if (this.#port.linkUp(this.name)) {
      this.#state = "attached";
      this.#status = "connected";
      this.#port.attach(this);
    } else {
      // As nats.js with waitOnFirstConnect: keep trying rather than fail.
      this.#state = "detached";
      this.#status = "reconnecting";
      this.#scheduleReconnect();
    }
  }

  /** The server holds this session: its subscriptions have interest, its publishes are routed. */
  get attached(): boolean {
    return this.#state === "attached";
  }

  /** Neither closed nor crashed. */
  get live(): boolean {
    return this.#state === "attached" || this.#state === "detached";
  }

  get linkEpoch(): number {
    return this.#linkEpoch;
  }

  get status(): TransportStatus["type"] {
    return this.#status;
  }

  get maxPayload(): number {
    return this.#port.maxPayload;
  }

  // --- called by the network -------------------------------------------------

  /** Runs a handler for a delivered message; a throwing handler is recorded, never propagated. */
  deliver(sub: SimSub, msg: Message): void {
    try {
      sub.handler(msg);
    } catch (error) {
      this.#port.record({
        time: this.#clock.now(),
        kind: "handlerError",
        to: this.name,
        subject: msg.subject,
        detail: describe(error),
      });
    }
  }

  /** The link to the server was cut: the server drops the session now; the client notices one latency later. */
  linkLost(): void {
    if (this.#state !== "attached") return;
    this.#state = "detached";
    this.#linkEpoch++;
    this.#clock.setTimeout(() => {
      if (this.#state !== "detached") return;
      this.#emit({ type: "disconnected", server: this.serverName });
      this.#emit({ type: "reconnecting" });
      this.#scheduleReconnect();
    }, this.#port.latency());
  }

  /** The host died: everything stops silently; pending promises never settle. */
  crash(): void {
    if (!this.live) return;
    this.#state = "crashed";
    for (const sub of this.#subs) this.#dropSub(sub);
    this.#subs.clear();
    this.#listeners.clear();
    this.#requests.clear();
    this.#flushes.clear();
    this.#waitingForLink.clear();
  }

  // --- the Transport operations ------------------------------------------------

  publish(subject: string, data: Uint8Array, options: PublishOptions = {}): void {
    this.#assertOpen();
    this.#check(subject, data, options.headers);
    if (options.reply !== undefined && !isPublishSubject(options.reply)) {
      throw new InvalidSubjectError(options.reply);
    }
    if (this.#state === "crashed") return;
    this.#port.publish(this, outgoing(subject, data, options.reply, options.headers));
  }

  subscribe(subject: string, handler: MessageHandler, options: SubscribeOptions = {}): Subscription {
    this.#assertOpen();
    if (!isSubscribeSubject(subject)) throw new InvalidSubjectError(subject);
    if (options.queue !== undefined && !queuePattern.test(options.queue)) {
      throw new InvalidSubjectError(options.queue);
    }
    const sub = this.#addSub(subject, options.queue, handler);
    return {
      subject,
      unsubscribe: () => {
        if (!sub.active) return;
        this.#subs.delete(sub);
        this.#dropSub(sub);
      },
    };
  }

  request(subject: string, data: Uint8Array, options: RequestOptions): Promise<Message> {
    try {
      this.#assertOpen();
      this.#check(subject, data, options.headers);
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.#state === "crashed") return new Promise(() => {});
    const timeoutMs = options.timeoutMs;
    const inbox = this.#port.inbox();
    return new Promise<Message>((resolve, reject) => {
      let done = false;
      const timers: ReturnType<Clock["setTimeout"]>[] = [];
      const pending: PendingRequest = {
        fail: (error) => {
          if (finish()) reject(error);
        },
      };
      const finish = (): boolean => {
        if (done) return false;
        done = true;
        for (const timer of timers) this.#clock.clearTimeout(timer);
        this.#requests.delete(pending);
        if (sub.active) {
          this.#subs.delete(sub);
          this.#dropSub(sub);
        }
        return true;
      };
      const sub = this.#addSub(inbox, undefined, (msg) => {
        if (finish()) resolve(msg);
      });
      this.#requests.add(pending);
      timers.push(
        this.#clock.setTimeout(() => {
          if (!finish()) return;
          this.#port.record({ time: this.#clock.now(), kind: "timeout", from: this.name, subject });
          reject(new TimeoutError(subject, timeoutMs));
        }, timeoutMs),
      );
      const receivers = this.#port.publish(this, outgoing(subject, data, inbox, options.headers));
      if (receivers === 0) {
        // The server answers a request nobody listens to with a 503 status message.
        timers.push(
          this.#clock.setTimeout(() => {
            if (!finish()) return;
            this.#port.record({ time: this.#clock.now(), kind: "noResponders", to: this.name, subject });
            reject(new NoRespondersError(subject));
          }, this.#port.latency()),
        );
      }
    });
  }

  flush(): Promise<void> {
    if (this.#state === "closed") return Promise.reject(new TransportClosedError());
    if (this.#state === "crashed") return new Promise(() => {});
    if (this.#state === "detached") {
      // nats.js holds the PING until it reconnects.
      return new Promise((resolve, reject) => {
        this.#waitingForLink.add({ resolve, fail: reject });
      });
    }
    const last = this.#port.lastDeliveryFrom(this);
    if (last === undefined) return Promise.resolve();
    const now = this.#clock.now();
    // The PONG comes back after a round trip, and not before the server has passed on what came earlier.
    const due = Math.max(now + this.#port.latency(), last);
    return new Promise((resolve, reject) => {
      const pending: PendingRequest = {
        fail: (error) => {
          this.#clock.clearTimeout(timer);
          reject(error);
        },
      };
      const timer = this.#clock.setTimeout(() => {
        this.#flushes.delete(pending);
        resolve();
      }, due - now);
      this.#flushes.add(pending);
    });
  }

  onStatus(listener: StatusListener): () => void {
    // Wrapped so the same function registered twice is called twice and removed once per call.
    const entry: StatusListener = (status) => listener(status);
    if (this.live) this.#listeners.add(entry);
    return () => {
      this.#listeners.delete(entry);
    };
  }

  inbox(): string {
    return this.#port.inbox();
  }

  close(): Promise<void> {
    if (this.#state === "closed") return Promise.resolve();
    if (this.#state === "crashed") {
      // Nothing to say to anyone: the host is gone. Only let closed() waiters go.
      this.#resolveClosed(undefined);
      return Promise.resolve();
    }
    this.#state = "closed";
    for (const sub of this.#subs) this.#dropSub(sub);
    this.#subs.clear();
    const failed = [...this.#requests, ...this.#flushes, ...this.#waitingForLink];
    this.#requests.clear();
    this.#flushes.clear();
    this.#waitingForLink.clear();
    for (const pending of failed) pending.fail(new TransportClosedError());
    this.#port.release(this);
    this.#emit({ type: "closed" });
    this.#listeners.clear();
    this.#resolveClosed(undefined);
    return Promise.resolve();
  }

  closed(): Promise<Error | undefined> {
    return this.#closed;
  }

  // --- internals ---------------------------------------------------------------

  #assertOpen(): void {
    if (this.#state === "closed") throw new TransportClosedError();
  }

  #check(subject: string, data: Uint8Array, headers: Headers | undefined): void {
    if (!isPublishSubject(subject)) throw new InvalidSubjectError(subject);
    const size = data.byteLength + headerBytes(headers);
    if (size > this.#port.maxPayload) throw new PayloadTooLargeError(size, this.#port.maxPayload);
  }

  #addSub(subject: string, queue: string | undefined, handler: MessageHandler): SimSub {
    const sub: SimSub = { sid: 0, conn: this, subject, queue, handler, active: true };
    // A crashed host's zombie code gets a subscription that never receives anything.
    if (this.#state === "crashed") {
      sub.active = false;
      return sub;
    }
    this.#subs.add(sub);
    this.#port.addInterest(sub);
    return sub;
  }

  #dropSub(sub: SimSub): void {
    sub.active = false;
    this.#port.removeInterest(sub);
  }

  #scheduleReconnect(): void {
    this.#clock.setTimeout(() => {
      if (this.#state !== "detached") return;
      if (!this.#port.linkUp(this.name)) {
        this.#scheduleReconnect();
        return;
      }
      this.#state = "attached";
      this.#port.attach(this);
      this.#emit({ type: "connected", server: this.serverName });
      const waiting = [...this.#waitingForLink];
      this.#waitingForLink.clear();
      for (const w of waiting) w.resolve();
    }, this.#reconnectWaitMs);
  }

  #emit(status: TransportStatus): void {
    this.#status = status.type;
    this.#port.record({ time: this.#clock.now(), kind: "status", to: this.name, detail: status.type });
    for (const listener of [...this.#listeners]) {
      try {
        listener(status);
      } catch (error) {
        this.#port.record({
          time: this.#clock.now(),
          kind: "listenerError",
          to: this.name,
          detail: describe(error),
        });
      }
    }
  }
}

function outgoing(
  subject: string,
  data: Uint8Array,
  reply: string | undefined,
  headers: Headers | undefined,
): Outgoing {
  const copied = headers === undefined ? undefined : Object.freeze({ ...headers });
  return { subject, data: data.slice(), reply, headers: copied };
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** The Transport a simulated host uses; see the Transport interface for the contract. */
export class SimTransport implements Transport {
  readonly #conn: SimConnection;

  constructor(conn: SimConnection) {
    this.#conn = conn;
  }

  /** The connection's `name` option (the host's name unless connect() was given one). */
  get name(): string {
    return this.#conn.clientName;
  }

  get maxPayload(): number {
    return this.#conn.maxPayload;
  }

  get status(): TransportStatus["type"] {
    return this.#conn.status;
  }

  /** The server this connection is attached to, e.g. `sim://server-0`. */
  get server(): string {
    return this.#conn.serverName;
  }

  publish(subject: string, data: Uint8Array, options?: PublishOptions): void {
    this.#conn.publish(subject, data, options);
  }

  subscribe(subject: string, handler: MessageHandler, options?: SubscribeOptions): Subscription {
    return this.#conn.subscribe(subject, handler, options);
  }

  request(subject: string, data: Uint8Array, options: RequestOptions): Promise<Message> {
    return this.#conn.request(subject, data, options);
  }

  flush(): Promise<void> {
    return this.#conn.flush();
  }

  onStatus(listener: StatusListener): () => void {
    return this.#conn.onStatus(listener);
  }

  inbox(): string {
    return this.#conn.inbox();
  }

  close(): Promise<void> {
    return this.#conn.close();
  }

  closed(): Promise<Error | undefined> {
    return this.#conn.closed();
  }
}
