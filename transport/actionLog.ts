// The action log of SPEC 6.4 (seed 001: every command an administrator issues
// is recorded with its answers). An action is three kinds of record: the
// request, one reply per answering node, and the final outcome, all written by
// one node (the one the request came in on: the action's author). The log is
// an interface with two implementations that run one contract suite: in memory
// (tests, the simulation) and a JetStream stream (actionLogJetStream.ts).
import { monotonicFactory } from "ulid";
import { z } from "zod";
import { actionIdSchema, type NodeId, nodeIdSchema, ROLES } from "../protocol/messages.js";
import type { Clock, Random } from "./clock.js";
import { ActionExistsError } from "./errors.js";

/** Longest result summary kept per reply (characters of JSON). */
export const SUMMARY_CHARS = 256;
/** Characters of reply summaries one action may take in all (an ALL request has a reply per member). */
export const SUMMARY_BUDGET_CHARS = 16 * 1024;
/** Shortest summary a reply keeps, however many replies share the budget. */
const SUMMARY_MIN_CHARS = 32;

const base = {
  v: z.literal(1),
  action: actionIdSchema,
  /** When the record was made (ms since the epoch, the node's clock). */
  at: z.number(),
};
const nodeOrAll = z.union([nodeIdSchema, z.literal("ALL")]);

/**
 * What was asked, by whom, through which node. Written before the request
 * runs. A request refused before it runs (a viewer's mutating type) names the
 * refusal and the size of its params, never the params themselves: whoever
 * may be refused cannot fill the log. Params too large to keep are left out
 * the same way.
 */
export const requestRecordSchema = z.strictObject({
  ...base,
  kind: z.literal("request"),
  /** The node the request came in on (the one that logs the action). */
  node: nodeIdSchema,
  role: z.enum(ROLES),
  src: z.union([nodeIdSchema, z.string().max(64)]),
  type: z.string().max(32),
  dst: nodeOrAll,
  seq: z.number().int().min(0),
  /** The params as JSON; absent when they were left out (see `paramsBytes`). */
  params: z.unknown().optional(),
  /** The size of the params as encoded (CBOR), when they were left out. */
  paramsBytes: z.number().int().min(0).optional(),
  /** The error the request is refused with before it runs (e.g. EPERM). */
  refused: z.string().max(32).optional(),
});

/** One node's answer: its result code and a short summary of its data. */
export const replyRecordSchema = z.strictObject({
  ...base,
  kind: z.literal("reply"),
  /** The answering node. */
  node: nodeIdSchema,
  /** The node that logged it: the one the request came in on. */
  via: nodeIdSchema,
  rcode: z.number().int(),
  error: z.string().max(32).optional(),
  count: z.number().int().min(0),
  summary: z.string().max(SUMMARY_CHARS + 1),
});

/** How the action ended, as the requester was told. */
export const outcomeRecordSchema = z.strictObject({
  ...base,
  kind: z.literal("outcome"),
  node: nodeIdSchema,
  type: z.string().max(32),
  dst: nodeOrAll,
  rcode: z.number().int(),
  error: z.string().max(32).optional(),
  /** Replies with rcode ≥ 0 and < 0 (an ALL request has one per member of the view). */
  ok: z.number().int().min(0),
  failed: z.number().int().min(0),
  durationMs: z.number().min(0),
});

export const actionRecordSchema = z.discriminatedUnion("kind", [
  requestRecordSchema,
  replyRecordSchema,
  outcomeRecordSchema,
]);

export type RequestRecord = z.infer<typeof requestRecordSchema>;
export type ReplyRecord = z.infer<typeof replyRecordSchema>;
export type OutcomeRecord = z.infer<typeof outcomeRecordSchema>;
export type ActionRecord = z.infer<typeof actionRecordSchema>;

/** The data of a reply as short JSON, for the log: enough to recognise it, never the whole of it. */
export function summarize(data: unknown, maxChars = SUMMARY_CHARS): string {
  let text: string;
  try {
    text = JSON.stringify(data) ?? "null";
  } catch {
    text = String(data);
  }
  const max = Math.min(maxChars, SUMMARY_CHARS);
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** How long each of `replies` summaries of one action may be: they share SUMMARY_BUDGET_CHARS. */
export function summaryChars(replies: number): number {
  return Math.max(
    SUMMARY_MIN_CHARS,
    Math.min(SUMMARY_CHARS, Math.floor(SUMMARY_BUDGET_CHARS / Math.max(1, replies))),
  );
}

/** The node that wrote the record: the one the action's request came in on. */
export function authorOf(record: ActionRecord): NodeId {
  return record.kind === "reply" ? record.via : record.node;
}

/**
 * The record's name: `<author>.<action>.request|outcome|reply.<replier>`. It is
 * the record's subject under `dvs.<c>.actions.`, so the subject names the
 * node that wrote it (which a node's permissions can enforce), and the same
 * record written twice is stored once.
 */
export function recordKey(record: ActionRecord): string {
  const prefix = `${authorOf(record)}.${record.action}`;
  if (record.kind === "reply") return `${prefix}.reply.${record.node}`;
  return `${prefix}.${record.kind}`;
}

/** Why a stored record was not believed. */
export type SkipReason =
  /** Not JSON, or JSON that is no record. */
  | "invalid"
  /** Its subject does not name it: another action, kind or replier than the body says. */
  | "subject"
  /** Its subject's author is not the node its body says wrote it. */
  | "author"
  /** A record of an action whose request another node wrote, or a second request for one action id. */
  | "conflict";

/** What a reader passed over, by reason; a reader never fails on a record it cannot believe. */
export type SkipCounts = Record<SkipReason, number>;

export const noSkips = (): SkipCounts => ({ invalid: 0, subject: 0, author: 0, conflict: 0 });

/**
 * The record stored on `key` (its subject after `dvs.<c>.actions.`), checked
 * against that key: the author token must be the node the body says wrote it,
 * and the action, kind and replier must match. A SkipReason when it does not.
 */
export function recordOnKey(key: string, value: unknown): ActionRecord | SkipReason {
  const parsed = actionRecordSchema.safeParse(value);
  if (!parsed.success) return "invalid";
  const record = parsed.data;
  const [author, action, kind, replier, ...rest] = key.split(".");
  if (author !== String(authorOf(record))) return "author";
  if (action !== record.action || kind !== record.kind || rest.length > 0) return "subject";
  if ((record.kind === "reply") !== (replier !== undefined)) return "subject";
  if (record.kind === "reply" && replier !== String(record.node)) return "subject";
  return record;
}

export interface ActionFilter {
  /** The newest `limit` actions (after the other filters). */
  readonly limit: number;
  /** Only actions sent to this node, or to ALL. */
  readonly node?: number;
  /** Only actions of this request type. */
  readonly type?: string;
}

export interface ActionSummary {
  readonly request: RequestRecord;
  /** Missing when the node stopped before the action ended. */
  readonly outcome?: OutcomeRecord;
}

export interface ActionLog {
  /**
   * Resolves once the record is durable. A reply or outcome already in the log
   * is not stored twice; a request record for an action that already has one,
   * written by any node, rejects with ActionExistsError (one id names one action).
   */
  append(record: ActionRecord): Promise<void>;
  /** The newest actions matching the filter, oldest first. */
  list(filter: ActionFilter): Promise<ActionSummary[]>;
  /**
   * Every record of one action, in the order they were written; empty when
   * there is none. Only its author's records: the node that wrote its request.
   */
  show(action: string): Promise<ActionRecord[]>;
}

export function matches(request: RequestRecord, filter: ActionFilter): boolean {
  if (filter.type !== undefined && request.type !== filter.type) return false;
  if (filter.node !== undefined && request.dst !== filter.node && request.dst !== "ALL") return false;
  return true;
}

/** Keeps the newest `limit` of a sequence (oldest first). */
export function newest<T>(items: Iterable<T>, limit: number): T[] {
  const kept: T[] = [];
  for (const item of items) {
    kept.push(item);
    if (kept.length > limit) kept.shift();
  }
  return kept;
}

/** The log in memory: for tests and the simulated network (nothing survives the process). */
export class MemoryActionLog implements ActionLog {
  readonly #records: ActionRecord[] = [];
  readonly #keys = new Set<string>();

  async append(record: ActionRecord): Promise<void> {
    const parsed = actionRecordSchema.parse(record);
    // One request per action id, whichever node writes it.
    const key = parsed.kind === "request" ? `${parsed.action}.request` : recordKey(parsed);
    if (this.#keys.has(key)) {
      if (parsed.kind === "request") throw new ActionExistsError(parsed.action);
      return;
    }
    this.#keys.add(key);
    this.#records.push(structuredClone(parsed));
  }

  async list(filter: ActionFilter): Promise<ActionSummary[]> {
    const requests = this.#records.filter(
      (r): r is RequestRecord => r.kind === "request" && matches(r, filter),
    );
    return newest(requests, filter.limit).map((request) => {
      const outcome = this.#records.find(
        (r): r is OutcomeRecord =>
          r.kind === "outcome" && r.action === request.action && r.node === request.node,
      );
      return outcome ? { request, outcome } : { request };
    });
  }

  async show(action: string): Promise<ActionRecord[]> {
    const records = this.#records.filter((r) => r.action === action);
    const author = records.find((r) => r.kind === "request") ?? records[0];
    if (author === undefined) return [];
    return records.filter((r) => authorOf(r) === authorOf(author)).map((r) => structuredClone(r));
  }
}

/**
 * Makes action ids: ULIDs, time-ordered (the first 10 characters are the
 * clock's milliseconds) and unique (80 random bits, incremented within one ms).
 */
export function actionIds(clock: Clock, random: Random): () => string {
  const next = monotonicFactory(() => random.next());
  return () => next(Math.floor(clock.now()));
}
