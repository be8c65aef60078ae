// The Transport over a real nats-server, with the nats.js v3 client. It maps
// the client's statuses and errors onto the Transport's own discriminated
// union and named errors, and keeps reconnecting until closed.
import { readFileSync } from "node:fs";
import {
  type Authenticator,
  connect,
  createInbox,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
  headers as natsHeaders,
  nkeyAuthenticator,
  PermissionViolationError,
  type Status,
} from "@nats-io/transport-node";
import { inboxPrefixFor } from "../protocol/responder.js";
import {
  AuthorizationError,
  ConnectError,
  InvalidSubjectError,
  PayloadTooLargeError,
  PermissionDeniedError,
  TransportClosedError,
} from "./errors.js";
import { RequestMux } from "./natsRequests.js";
import type {
  Headers,
  Message,
  MessageHandler,
  PublishOptions,
  RequestOptions,
  StatusListener,
  SubscribeOptions,
  Subscription,
  Transport,
  TransportStatus,
} from "./transport.js";
import { isPublishSubject, isSubscribeSubject } from "./transport.js";

export interface NatsTransportOptions {
  readonly servers: readonly string[];
  /** Client name shown by the server (`nats server report connections`). */
  readonly name: string;
  readonly user?: string;
  readonly pass?: string;
  readonly token?: string;
  /** A file holding an nkey seed (`SU...`): the server knows the user by its public key. */
  readonly nkeySeedFile?: string;
  /** TLS to the server (required by a production nats.conf): CA to verify it, and a client certificate if it asks for one. */
  readonly tls?: {
    readonly caFile?: string | undefined;
    readonly certFile?: string | undefined;
    readonly keyFile?: string | undefined;
  };
  /** Milliseconds between reconnect attempts; short so a healed link is noticed quickly. */
  readonly reconnectWaitMs?: number;
  /** Milliseconds to wait for the first connection. */
  readonly connectTimeoutMs?: number;
  /** Try the servers in a random order (the default) or in the order given. */
  readonly randomize?: boolean;
  /** Add the servers a cluster announces to the list (the default), or keep to `servers`. */
  readonly discover?: boolean;
  /** Milliseconds between client pings; a silent server is declared lost after 2 missed. */
  readonly pingIntervalMs?: number;
  /**
   * Where this connection's replies arrive (nats.js `inboxPrefix`). Default
   * `_INBOX.<user>` for a user, so nats.conf can let each user subscribe to its
   * own prefix only (docs/security.md); `_INBOX` without a user.
   */
  readonly inboxPrefix?: string;
  /** Called when a subscription handler throws; the transport itself carries on. */
  readonly onHandlerError?: (error: unknown, subject: string) => void;
}

/** Connect to NATS; rejects with ConnectError when no server answers in time. */
export async function connectNats(options: NatsTransportOptions): Promise<NatsTransport> {
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: [...options.servers],
      name: options.name,
      maxReconnectAttempts: -1,
      noRandomize: options.randomize === false,
      ignoreClusterUpdates: options.discover === false,
      reconnectTimeWait: options.reconnectWaitMs ?? 250,
      reconnectJitter: 50,
      timeout: options.connectTimeoutMs ?? 5_000,
      pingInterval: options.pingIntervalMs ?? 10_000,
      maxPingOut: 2,
      // nats.js captures a stack trace for every request in case it fails; our
      // named errors carry the subject and timeout instead, so skip that cost.
      noAsyncTraces: true,
      inboxPrefix: options.inboxPrefix ?? inboxPrefixFor(options.user),
      ...(options.user !== undefined ? { user: options.user } : {}),
      ...(options.pass !== undefined ? { pass: options.pass } : {}),
      ...(options.token !== undefined ? { token: options.token } : {}),
      ...(options.nkeySeedFile !== undefined ? { authenticator: nkeyFrom(options.nkeySeedFile) } : {}),
      ...(options.tls ? { tls: tlsOptions(options.tls) } : {}),
    });
  } catch (error) {
    if (error instanceof Error && /authorization violation|authentication/i.test(error.message))
      throw new AuthorizationError(options.servers, options.user, { cause: error });
    throw new ConnectError(options.servers, { cause: error });
  }
  return new NatsTransport(nc, options);
}

export class NatsTransport implements Transport {
  readonly name: string;
  #status: TransportStatus["type"] = "connected";
  readonly #listeners = new Set<StatusListener>();
  readonly #onHandlerError: (error: unknown, subject: string) => void;
  readonly #inboxPrefix: string;
  /** Requests, through one inbox subscription of this connection (transport/natsRequests.ts). */
  readonly #requests: RequestMux;

  constructor(
    /** The underlying connection, for NATS-only features (JetStream, micro services). */
    readonly connection: NatsConnection,
    options: Pick<NatsTransportOptions, "name" | "onHandlerError" | "inboxPrefix" | "user">,
  ) {
    this.name = options.name;
    // The prefix the connection was opened with (nats.js keeps it in its options), so requests and inbox() agree.
    const opened = (connection as unknown as { options?: { inboxPrefix?: string } }).options?.inboxPrefix;
    this.#inboxPrefix = options.inboxPrefix ?? opened ?? inboxPrefixFor(options.user);
    this.#onHandlerError = options.onHandlerError ?? (() => {});
    this.#requests = new RequestMux(connection, this.#inboxPrefix);
    void this.#watchStatus();
    void connection.closed().then((error) => {
      this.#requests.close(error ?? undefined);
      this.#emit(error ? { type: "closed", error } : { type: "closed" });
    });
  }

  get maxPayload(): number {
    return this.connection.info?.max_payload ?? 1024 * 1024;
  }

  get status(): TransportStatus["type"] {
    return this.#status;
  }

  publish(subject: string, data: Uint8Array, options?: PublishOptions): void {
    this.#checkOpen();
    this.#checkPublish(subject, data);
    this.connection.publish(subject, data, toPublishOptions(options));
  }

  subscribe(subject: string, handler: MessageHandler, options?: SubscribeOptions): Subscription {
    this.#checkOpen();
    if (!isSubscribeSubject(subject)) throw new InvalidSubjectError(subject);
    const onError = this.#onHandlerError;
    const sub = this.connection.subscribe(subject, {
      ...(options?.queue !== undefined ? { queue: options.queue } : {}),
      callback: (err, msg) => {
        if (err) {
          // The server refused the subscription (nats.conf): it is closed, the connection lives on.
          onError(
            err instanceof PermissionViolationError
              ? new PermissionDeniedError(subject, "subscribe", { cause: err })
              : err,
            subject,
          );
          return;
        }
        try {
          handler(toMessage(msg));
        } catch (error) {
          onError(error, subject);
        }
      },
    });
    return {
      subject,
      unsubscribe: () => {
        if (!sub.isClosed()) sub.unsubscribe();
      },
    };
  }

  async request(subject: string, data: Uint8Array, options: RequestOptions): Promise<Message> {
    this.#checkOpen();
    this.#checkPublish(subject, data);
    const headers = options.headers ? toNatsHeaders(options.headers) : undefined;
    return toMessage(await this.#requests.request(subject, data, options.timeoutMs, headers));
  }

  async flush(): Promise<void> {
    this.#checkOpen();
    try {
      await this.connection.flush();
    } catch (error) {
      if (this.connection.isClosed()) throw new TransportClosedError(undefined, { cause: error });
      throw error;
    }
  }

  onStatus(listener: StatusListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  inbox(): string {
    return createInbox(this.#inboxPrefix);
  }

  async close(): Promise<void> {
    if (this.connection.isClosed()) return;
    try {
      await this.connection.drain();
    } catch {
      await this.connection.close();
    }
  }

  async closed(): Promise<Error | undefined> {
    return (await this.connection.closed()) ?? undefined;
  }

  #checkOpen(): void {
    if (this.connection.isClosed() || this.connection.isDraining()) throw new TransportClosedError();
  }

  #checkPublish(subject: string, data: Uint8Array): void {
    if (!isPublishSubject(subject)) throw new InvalidSubjectError(subject);
    if (data.byteLength > this.maxPayload) throw new PayloadTooLargeError(data.byteLength, this.maxPayload);
  }

  async #watchStatus(): Promise<void> {
    for await (const s of this.connection.status()) {
      // A publish the server refused: a request waiting on that subject fails with it.
      if (
        s.type === "error" &&
        s.error instanceof PermissionViolationError &&
        s.error.operation === "publish"
      )
        this.#requests.publishRefused(s.error.subject, s.error);
      const mapped = mapStatus(s);
      if (mapped) this.#emit(mapped);
    }
  }

  #emit(status: TransportStatus): void {
    if (this.#status === "closed") return;
    this.#status = status.type;
    for (const listener of this.#listeners) {
      try {
        listener(status);
      } catch (error) {
        this.#onHandlerError(error, "status");
      }
    }
  }
}

function mapStatus(s: Status): TransportStatus | undefined {
  switch (s.type) {
    case "disconnect":
      return { type: "disconnected", server: s.server };
    case "reconnecting":
      return { type: "reconnecting" };
    case "reconnect":
      return { type: "connected", server: s.server };
    default:
      return undefined;
  }
}

function tlsOptions(tls: NonNullable<NatsTransportOptions["tls"]>) {
  return Object.fromEntries(Object.entries(tls).filter(([, v]) => v !== undefined)) as Record<string, string>;
}

function nkeyFrom(file: string): Authenticator {
  const seed = readFileSync(file, "utf8").trim();
  return nkeyAuthenticator(new TextEncoder().encode(seed));
}

function toPublishOptions(options: PublishOptions | undefined) {
  if (!options) return undefined;
  return {
    ...(options.reply !== undefined ? { reply: options.reply } : {}),
    ...(options.headers ? { headers: toNatsHeaders(options.headers) } : {}),
  };
}

function toNatsHeaders(h: Headers): MsgHdrs {
  const out = natsHeaders();
  for (const [k, v] of Object.entries(h)) out.set(k, v);
  return out;
}

/**
 * A nats.js message as a Message. nats.js decodes a subject from its bytes
 * when it is first read, and most handlers never read it (a request's path
 * reads only the reply subject), so `subject` is an own getter that reads
 * through: it is still enumerable, so spreads, logs and JSON keep it.
 */
function toMessage(msg: Msg): Message {
  let headers: Record<string, string> | undefined;
  if (msg.headers) {
    headers = {};
    for (const k of msg.headers.keys()) headers[k] = msg.headers.get(k);
  }
  return {
    get subject() {
      return msg.subject;
    },
    data: msg.data,
    reply: msg.reply || undefined,
    headers,
  };
}
