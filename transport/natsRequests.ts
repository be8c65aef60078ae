// Requests over one nats.js connection, answered through one wildcard inbox
// subscription (`<inbox>.<token>`), as nats.js's own `request` does, but
// without building an Error per request: nats.js 3.4.0 rejects each answered
// request's spent promise with a `RequestError("cancelled")` and its stack
// trace (RequestOne.cancel), a cost `rqst-latency` shows as its `request
// path p50` ratio (bench/README.md, "Requests to one node"). Every wait has
// its timeout; a reply with status 503 and no data is "no responders"; a
// publish the server refuses, a refused inbox subscription and a closed
// connection fail the requests they concern at once, each with the
// Transport's named error.
import { createInbox, type Msg, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { NoRespondersError, PermissionDeniedError, TimeoutError, TransportClosedError } from "./errors.js";

interface Pending {
  readonly subject: string;
  readonly resolve: (msg: Msg) => void;
  readonly reject: (error: Error) => void;
  readonly timer: ReturnType<typeof setTimeout>;
}

/** Status 503 with no payload: the server found no subscriber for the request's subject. */
const NO_RESPONDERS = 503;

export class RequestMux {
  readonly #pending = new Map<string, Pending>();
  #base: string | undefined;
  #subscription: Subscription | undefined;
  #next = 0;

  constructor(
    readonly connection: NatsConnection,
    readonly inboxPrefix: string,
  ) {}

  /** Publishes `data` to `subject` and resolves with the first reply; rejects with a named error. */
  request(subject: string, data: Uint8Array, timeoutMs: number, headers?: Msg["headers"]): Promise<Msg> {
    if (this.connection.isClosed()) return Promise.reject(new TransportClosedError());
    const base = this.#open();
    const token = (this.#next++).toString(36);
    return new Promise<Msg>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.#pending.delete(token)) reject(new TimeoutError(subject, timeoutMs));
      }, timeoutMs);
      this.#pending.set(token, { subject, resolve, reject, timer });
      try {
        this.connection.publish(subject, data, { reply: `${base}${token}`, ...(headers ? { headers } : {}) });
      } catch (error) {
        this.#settle(token)?.reject(
          this.connection.isClosed()
            ? new TransportClosedError(undefined, { cause: error })
            : (error as Error),
        );
      }
    });
  }

  /**
   * The server refused a publish (a status of the connection): the oldest
   * request waiting on that subject fails with it, as nats.js fails its own.
   */
  publishRefused(subject: string, cause: Error): void {
    for (const [token, pending] of this.#pending) {
      if (pending.subject !== subject) continue;
      this.#settle(token)?.reject(new PermissionDeniedError(subject, "publish", { cause }));
      return;
    }
  }

  /** The connection is closed: every request still waiting fails (and no other is taken: see request). */
  close(cause?: Error): void {
    for (const token of [...this.#pending.keys()])
      this.#settle(token)?.reject(new TransportClosedError(undefined, cause ? { cause } : undefined));
  }

  /** The inbox every reply comes to (`<prefix>.<unique>.`), subscribed on first use. */
  #open(): string {
    if (this.#base !== undefined && this.#subscription !== undefined && !this.#subscription.isClosed())
      return this.#base;
    const base = `${createInbox(this.inboxPrefix)}.`;
    this.#base = base;
    this.#subscription = this.connection.subscribe(`${base}*`, {
      callback: (error, msg) => {
        if (error) {
          // The server refused the inbox (nats.conf): nothing waiting can be answered.
          this.#subscription = undefined;
          for (const token of [...this.#pending.keys()]) {
            const pending = this.#settle(token);
            pending?.reject(new PermissionDeniedError(`${base}*`, "subscribe", { cause: error }));
          }
          return;
        }
        const pending = this.#settle(msg.subject.slice(base.length));
        if (pending === undefined) return; // late, after its timeout
        if (msg.data.length === 0 && msg.headers?.code === NO_RESPONDERS)
          pending.reject(new NoRespondersError(pending.subject));
        else pending.resolve(msg);
      },
    });
    return base;
  }

  #settle(token: string): Pending | undefined {
    const pending = this.#pending.get(token);
    if (pending === undefined) return undefined;
    this.#pending.delete(token);
    clearTimeout(pending.timer);
    return pending;
  }
}
