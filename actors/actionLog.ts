// The action log of SPEC 6.4 (seed 001: every command an administrator issues
// is recorded with its answers). An action is three kinds of record: the
// request, one reply per answering node, and the final outcome. The log is an
// interface with two implementations that run one contract suite: in memory
// (tests, the simulation) and a JetStream stream (actionLogJetStream.ts).
import { monotonicFactory } from "ulid";
import { z } from "zod";
import type { Clock, Random } from "../transport/clock.js";
import { actionIdSchema, nodeIdSchema, ROLES } from "../transport/protocol.js";
import { ActionExistsError } from "./errors.js";

/** Longest result summary kept per reply (characters of JSON). */
const SUMMARY_CHARS = 256;

const base = {
  v: z.literal(1),
  action: actionIdSchema,
  /** When the record was made (ms since the epoch, the node's clock). */
  at: z.number(),
};
const nodeOrAll = z.union([nodeIdSchema, z.literal("ALL")]);

/** What was asked, by whom, through which node. Written before the request runs. */
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
  params: z.unknown(),
});

/** One node's answer: its result code and a short summary of its data. */
export const replyRecordSchema = z.strictObject({
  ...base,
  kind: z.literal("reply"),
  /** The answering node. */
  node: nodeIdSchema,
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
export function summarise(data: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(data) ?? "null";
  } catch {
    text = String(data);
  }
  return text.length > SUMMARY_CHARS ? `${text.slice(0, SUMMARY_CHARS)}…` : text;
}

/** The record's name within its action: the same record written twice is stored once. */
export function recordKey(record: ActionRecord): string {
  if (record.kind === "reply") return `${record.action}.reply.${record.node}`;
  return `${record.action}.${record.kind}`;
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
   * is not stored twice; a request record for an action that already has one
   * rejects with ActionExistsError (one id names one action).
   */
  append(record: ActionRecord): Promise<void>;
  /** The newest actions matching the filter, oldest first. */
  list(filter: ActionFilter): Promise<ActionSummary[]>;
  /** Every record of one action, in the order they were written; empty when there is none. */
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
    const key = recordKey(parsed);
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
        (r): r is OutcomeRecord => r.kind === "outcome" && r.action === request.action,
      );
      return outcome ? { request, outcome } : { request };
    });
  }

  async show(action: string): Promise<ActionRecord[]> {
    return this.#records.filter((r) => r.action === action).map((r) => structuredClone(r));
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
