// The one way a dvsd component answers a message: only to a reply subject in
// the inbox namespace. NATS does not check a publish's reply subject against
// the publisher's permissions, so a requester could otherwise make a node
// publish, with the node's rights, to any subject it names (a JetStream API
// call, a KV key, an action-log record). Each user may subscribe only to its
// own `_INBOX.<user>` prefix (nats.conf), so a reply sent into the inbox
// namespace reaches nobody but the owner of that inbox (docs/security.md).
import type { Headers, Message, Transport } from "../transport/transport.js";

/** The root of every inbox; a user's own prefix is `_INBOX.<user>`. */
export const INBOX_ROOT = "_INBOX";

const USER_TOKEN = /[^A-Za-z0-9_-]/g;
/**
 * `_INBOX` then one or more `.`-separated tokens of 1–128 characters, none a
 * wildcard or white space. One expression, not a split and a test per token:
 * every answer is checked, some more than once (a third of the time it took).
 */
const INBOX_REPLY = /^_INBOX(?:\.[^\s.*>]{1,128})+$/;
/** Longest reply subject accepted; nats.js inboxes are about 50 characters. */
const MAX_REPLY_LENGTH = 256;

/**
 * The inbox prefix of a user: `_INBOX.<user>`, the user name reduced to one
 * subject token (anything outside `[A-Za-z0-9_-]` becomes `_`).
 */
export function inboxPrefixFor(user: string | undefined): string {
  if (user === undefined || user.length === 0) return INBOX_ROOT;
  return `${INBOX_ROOT}.${user.replace(USER_TOKEN, "_").slice(0, 64)}`;
}

/** True for a reply subject dvsd may answer: `_INBOX.<token>[.<token>…]`, no wildcards, bounded. */
export function isInboxReply(reply: string): boolean {
  return reply.length <= MAX_REPLY_LENGTH && INBOX_REPLY.test(reply);
}

/** What happened to an answer. */
export type ReplyResult = "sent" | "no-reply" | "refused";

export interface ResponderOptions {
  /** Called for each reply subject refused (log it, rate-limited): the answer was dropped. */
  readonly onRefused?: (reply: string, subject: string) => void;
}

export interface AnswerOptions {
  readonly headers?: Headers;
  /**
   * An exact reply subject also accepted besides inboxes, for a component that
   * names its own reply subject (a node's gather subject). Anything else is refused.
   */
  readonly alsoAllow?: (reply: string) => boolean;
}

/**
 * The fields and message a component logs (throttled) for a refused reply
 * subject, so every refusal reads alike in the logs.
 */
export function refusalLog(reply: string, subject: string): [Record<string, unknown>, string] {
  return [{ subject, reply: reply.slice(0, 200) }, "refused to answer outside the inbox namespace"];
}

/**
 * The check every answer goes through: a message's reply subject is accepted
 * only in the inbox namespace (or an exact subject a caller names); a refused
 * one is counted and reported. For components that keep the reply subject to
 * answer later, or answer through a library (the `$SRV` service).
 */
export class ReplyGuard {
  /** Answers refused because of their reply subject. */
  refused = 0;

  constructor(readonly options: ResponderOptions = {}) {}

  /** Whether `msg` may be answered at all (it has a reply subject dvsd accepts). */
  accepts(msg: Pick<Message, "reply">, alsoAllow?: (reply: string) => boolean): boolean {
    return msg.reply !== undefined && (isInboxReply(msg.reply) || alsoAllow?.(msg.reply) === true);
  }

  /** The reply subject of `msg` when it may be answered; undefined when it has none or it is refused (reported). */
  replyOf(
    msg: Pick<Message, "reply" | "subject">,
    alsoAllow?: (reply: string) => boolean,
  ): string | undefined {
    const { reply } = msg;
    if (reply === undefined || reply.length === 0) return undefined;
    if (this.accepts(msg, alsoAllow)) return reply;
    this.refused++;
    this.options.onRefused?.(reply, msg.subject);
    return undefined;
  }
}

/** Answers messages on one transport, refusing reply subjects outside the inbox namespace. */
export class Responder extends ReplyGuard {
  constructor(
    readonly transport: Pick<Transport, "publish">,
    options: ResponderOptions = {},
  ) {
    super(options);
  }

  /** Publishes `data` to `msg.reply` when it is an accepted reply subject; throws what publish throws. */
  answer(
    msg: Pick<Message, "reply" | "subject">,
    data: Uint8Array,
    options: AnswerOptions = {},
  ): ReplyResult {
    if (msg.reply === undefined || msg.reply.length === 0) return "no-reply";
    const reply = this.replyOf(msg, options.alsoAllow);
    if (reply === undefined) return "refused";
    this.transport.publish(reply, data, options.headers ? { headers: options.headers } : undefined);
    return "sent";
  }
}
