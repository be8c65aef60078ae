// The Transport: the small interface every part of dvsd uses to move bytes.
// Two implementations run one contract suite unchanged (test/contracts/transport/contract.ts):
// `nats.ts` over a real nats-server, and `sim/` over a simulated deployment.

export type Headers = Readonly<Record<string, string>>;

/** A message as delivered to a subscriber or returned by a request. */
export interface Message {
  readonly subject: string;
  readonly data: Uint8Array;
  /** Reply subject, when the sender expects an answer. */
  readonly reply: string | undefined;
  /** Header names are kept as sent; look-ups should use `header()`. */
  readonly headers: Headers | undefined;
}

export interface PublishOptions {
  readonly reply?: string;
  readonly headers?: Headers;
}

export interface SubscribeOptions {
  /** Queue group: each message goes to one member of the group. */
  readonly queue?: string;
}

export interface RequestOptions {
  readonly timeoutMs: number;
  readonly headers?: Headers;
}

export interface Subscription {
  readonly subject: string;
  unsubscribe(): void;
}

/** Connection status, as a discriminated union. */
export type TransportStatus =
  | { readonly type: "connected"; readonly server: string }
  | { readonly type: "disconnected"; readonly server: string }
  | { readonly type: "reconnecting" }
  | { readonly type: "closed"; readonly error?: Error };

export type MessageHandler = (msg: Message) => void;
export type StatusListener = (status: TransportStatus) => void;

export interface Transport {
  /** This connection's client name (usually the node id or a tool's client id). */
  readonly name: string;
  /** Largest payload the transport accepts, in bytes. */
  readonly maxPayload: number;
  /** The last status reported. */
  readonly status: TransportStatus["type"];

  publish(subject: string, data: Uint8Array, options?: PublishOptions): void;
  /** Handlers run synchronously per message; an exception is caught and reported, never thrown to the transport. */
  subscribe(subject: string, handler: MessageHandler, options?: SubscribeOptions): Subscription;
  /** Resolves with the first reply; rejects with TimeoutError, NoRespondersError or TransportClosedError. */
  request(subject: string, data: Uint8Array, options: RequestOptions): Promise<Message>;
  /** Resolves once everything published so far has reached the server. */
  flush(): Promise<void>;
  /** Listen to status changes; returns a function that stops listening. */
  onStatus(listener: StatusListener): () => void;
  /** A fresh unique inbox subject for this connection. */
  inbox(): string;
  /** Flushes pending output and closes; idempotent. */
  close(): Promise<void>;
  /** Resolves when the transport is closed, with the error that closed it if any. */
  closed(): Promise<Error | undefined>;
}

/** Header look-up ignoring case, as NATS headers are case-insensitive for the canonical names. */
export function header(msg: Pick<Message, "headers">, name: string): string | undefined {
  if (!msg.headers) return undefined;
  const direct = msg.headers[name];
  if (direct !== undefined) return direct;
  const lower = name.toLowerCase();
  for (const [k, v] of Object.entries(msg.headers)) if (k.toLowerCase() === lower) return v;
  return undefined;
}

// One pass over the subject, no split: both checks run on every publish and subscribe.
const publishPattern = /^[^\s.*>]+(?:\.[^\s.*>]+)*$/;
const subscribePattern = /^(?:(?:[^\s.*>]+|\*)\.)*(?:[^\s.*>]+|\*|>)$/;

/** True for a subject one may publish to: dot-separated non-empty tokens, no wildcards. */
export function isPublishSubject(subject: string): boolean {
  return publishPattern.test(subject);
}

/** True for a subject one may subscribe to: tokens, `*` tokens, and `>` only as the last token. */
export function isSubscribeSubject(subject: string): boolean {
  return subscribePattern.test(subject);
}

/** NATS subject matching with `*` (one token) and `>` (one or more trailing tokens). */
export function subjectMatches(pattern: string, subject: string): boolean {
  const p = pattern.split(".");
  const s = subject.split(".");
  for (let i = 0; i < p.length; i++) {
    const token = p[i];
    if (token === ">") return s.length > i;
    if (i >= s.length) return false;
    if (token !== "*" && token !== s[i]) return false;
  }
  return p.length === s.length;
}
