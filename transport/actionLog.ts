// The action log of SPEC 6.4 (seed 001: every command an administrator issues
// is recorded with its answers, each naming the responder's address and a 0/1
// result). A request action is three kinds of record: the request, one reply
// per answering node, and the final outcome, all written by one node (the one
// the request came in on: the action's author). What the cluster does by itself
// (file COMMITs, coordinator changes, membership events) is an action of one
// `event` record. The log is an interface with two implementations that run
// one contract suite: in memory (tests, the simulation) and a JetStream stream
// (actionLogJetStream.ts).
import { monotonicFactory } from "ulid";
import { z } from "zod";
import { hostAddressSchema } from "../protocol/hostAddress.js";
import {
  actionIdSchema,
  MEMBERSHIP_EVENTS,
  type NodeId,
  nodeIdSchema,
  ROLES,
  viewSchema,
} from "../protocol/messages.js";
import type { Clock, Random } from "./clock.js";
import { ActionExistsError, ActionRecordTooLargeError } from "./errors.js";

/** Longest result summary kept per reply (characters of JSON). */
export const SUMMARY_CHARS = 256;
/** Characters of reply summaries one action may take in all (an ALL request has a reply per member). */
export const SUMMARY_BUDGET_CHARS = 16 * 1024;
/** Shortest summary a reply keeps, however many replies share the budget. */
const SUMMARY_MIN_CHARS = 32;
/** Most bytes of one reply's data (its JSON) a reply record keeps whole; more is cut and flagged `truncated`. */
export const REPLY_DATA_BYTES = 64 * 1024;
/** Bytes of reply data one action may keep in all: an ALL request's replies share it. */
export const ACTION_DATA_BUDGET_BYTES = 1024 * 1024;
/** Fewest bytes of data a reply keeps, however many replies share the budget. */
export const MIN_REPLY_DATA_BYTES = 1024;
/**
 * Largest record (its JSON, in bytes) the log takes: the stream's
 * max_msg_size. A reply at its data cap fits with room for its other fields.
 */
export const MAX_RECORD_BYTES = 128 * 1024;

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

/** One node's answer: who gave it (node and host address), its result, and its data up to the cap. */
export const replyRecordSchema = z.strictObject({
  ...base,
  kind: z.literal("reply"),
  /** The answering node. */
  node: nodeIdSchema,
  /** The node that logged it: the one the request came in on. */
  via: nodeIdSchema,
  /** The answering node's host address as it stated it (seed 001 `ipaddr`); absent when it did not answer. */
  addr: hostAddressSchema.optional(),
  rcode: z.number().int(),
  error: z.string().max(32).optional(),
  /** Seed 001's result: 1 when the node succeeded (rcode ≥ 0), 0 when it failed. */
  ok: z.union([z.literal(0), z.literal(1)]).optional(),
  count: z.number().int().min(0),
  /** The data as short JSON, for listings. */
  summary: z.string().max(SUMMARY_CHARS + 1),
  /** The data itself, when its JSON fits the reply's cap. */
  data: z.unknown().optional(),
  /** The start of the data's JSON, when it did not fit (then `truncated` is true). */
  dataText: z.string().max(REPLY_DATA_BYTES).optional(),
  /** The size of the data's whole JSON (bytes). */
  dataBytes: z.number().int().min(0).optional(),
  /** True when the data was cut to the cap: `dataText` holds its start. */
  truncated: z.boolean().optional(),
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

/** What the cluster did by itself, recorded once by the node that did or saw it (docs/protocol.md 7.2). */
export const EVENT_TYPES = ["COMMIT", "COORDINATOR", ...MEMBERSHIP_EVENTS] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export const eventRecordSchema = z.strictObject({
  ...base,
  kind: z.literal("event"),
  /** The node that wrote it: the new coordinator, the committing coordinator, the lowest member of the new view. */
  node: nodeIdSchema,
  type: z.enum(EVENT_TYPES),
  /** 1 when what it records succeeded (a COMMIT's SUCCESS; always 1 for the others). */
  ok: z.union([z.literal(0), z.literal(1)]),
  /** The writer's host address. */
  addr: hostAddressSchema.optional(),
  /** Membership: the new view, the nodes that joined or left, and why. */
  view: viewSchema.optional(),
  changed: z.array(nodeIdSchema).max(65_536).optional(),
  cause: z.string().max(256).optional(),
  /** COORDINATOR: the new coordinator and its term. */
  coordinator: nodeIdSchema.nullable().optional(),
  epoch: z.number().int().min(0).optional(),
  /** COMMIT: the file, the version recorded, the servers holding it, and SUCCESS or the error. */
  file: z
    .strictObject({
      name: z.string().max(1024),
      version: z.number().int().min(0).optional(),
      holders: z.array(nodeIdSchema).max(1024).optional(),
      outcome: z.string().max(32),
    })
    .optional(),
});

export const actionRecordSchema = z.discriminatedUnion("kind", [
  requestRecordSchema,
  replyRecordSchema,
  outcomeRecordSchema,
  eventRecordSchema,
]);

export type RequestRecord = z.infer<typeof requestRecordSchema>;
export type ReplyRecord = z.infer<typeof replyRecordSchema>;
export type OutcomeRecord = z.infer<typeof outcomeRecordSchema>;
export type EventRecord = z.infer<typeof eventRecordSchema>;
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

/** How many bytes of data each of `replies` replies of one action keeps: they share ACTION_DATA_BUDGET_BYTES. */
export function replyDataBytes(replies: number): number {
  return Math.max(
    MIN_REPLY_DATA_BYTES,
    Math.min(REPLY_DATA_BYTES, Math.floor(ACTION_DATA_BUDGET_BYTES / Math.max(1, replies))),
  );
}

/** A reply's data as a record keeps it: whole, or the start of its JSON and `truncated`. */
export type CappedData =
  | { readonly data: unknown; readonly dataBytes: number; readonly truncated: false }
  | { readonly dataText: string; readonly dataBytes: number; readonly truncated: true };

/**
 * The data within `maxBytes` of JSON: whole when it fits, otherwise the longest
 * start of its JSON text that still fits once stored as a JSON string (quotes
 * and backslashes are escaped, so the bound holds on the wire too).
 */
export function capData(data: unknown, maxBytes: number = REPLY_DATA_BYTES): CappedData {
  let text: string;
  try {
    text = JSON.stringify(data) ?? "null";
  } catch {
    text = JSON.stringify(String(data));
  }
  const dataBytes = Buffer.byteLength(text);
  if (dataBytes <= maxBytes) return { data: JSON.parse(text) as unknown, dataBytes, truncated: false };
  const fits = (n: number) => Buffer.byteLength(JSON.stringify(text.slice(0, n))) <= maxBytes;
  let lo = 0;
  let hi = Math.min(text.length, maxBytes);
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (fits(mid)) lo = mid;
    else hi = mid - 1;
  }
  return { dataText: text.slice(0, lo), dataBytes, truncated: true };
}

/** The bytes a record takes in the log (its JSON). */
export function recordBytes(record: ActionRecord): number {
  return Buffer.byteLength(JSON.stringify(record));
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

export interface EventFilter {
  /** The newest `limit` events (after the other filter). */
  readonly limit: number;
  /** Only events of this type. */
  readonly type?: EventType;
}

export interface ActionSummary {
  readonly request: RequestRecord;
  /** Missing when the node stopped before the action ended. */
  readonly outcome?: OutcomeRecord;
}

/** A read by subject and start sequence: the records of one action, or of one kind, or all. */
export interface RecordQuery {
  /** Only the records of this action. */
  readonly action?: string;
  /** Only records of this kind. */
  readonly kind?: ActionRecord["kind"];
  /** From this sequence on (1, the default, is the log's start). */
  readonly fromSeq?: number;
  /** At most this many records. */
  readonly limit: number;
}

/** A record with its place in the log. */
export interface StoredRecord {
  readonly seq: number;
  readonly record: ActionRecord;
}

export interface RecordPage {
  readonly records: readonly StoredRecord[];
  /** The sequence to read on from (one past the last record looked at). */
  readonly next: number;
}

/** How far back the log reaches, and what it keeps. */
export interface LogReach {
  readonly records: number;
  readonly bytes: number;
  /** The oldest record's sequence and time (ms since the epoch); absent when the log is empty. */
  readonly firstSeq?: number;
  readonly firstAt?: number;
  readonly lastSeq: number;
  /** The retention limits: how long and how many bytes (absent: no limit). */
  readonly maxAgeMs?: number;
  readonly maxBytes?: number;
}

export interface ActionLog {
  /**
   * Resolves once the record is durable. A reply or outcome already in the log
   * is not stored twice; a request record for an action that already has one,
   * written by any node, rejects with ActionExistsError (one id names one action).
   * A record over the log's size limit rejects with ActionRecordTooLargeError.
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

/** What both stores offer their readers beyond ActionLog (dvsctl, the console, the contract suite). */
export interface ActionLogReader extends ActionLog {
  /** The newest events (COMMIT, COORDINATOR, membership) matching the filter, oldest first. */
  events(filter: EventFilter): Promise<EventRecord[]>;
  /** The records matching `query` from its start sequence on, in log order, at most `limit`. */
  read(query: RecordQuery): Promise<RecordPage>;
  /** How far back the log reaches and its retention limits. */
  reach(): Promise<LogReach>;
}

export function matches(request: RequestRecord, filter: ActionFilter): boolean {
  if (filter.type !== undefined && request.type !== filter.type) return false;
  if (filter.node !== undefined && request.dst !== filter.node && request.dst !== "ALL") return false;
  return true;
}

export function matchesQuery(record: ActionRecord, query: Omit<RecordQuery, "limit" | "fromSeq">): boolean {
  return (
    (query.action === undefined || record.action === query.action) &&
    (query.kind === undefined || record.kind === query.kind)
  );
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

export interface MemoryActionLogOptions {
  /** Largest record taken (default MAX_RECORD_BYTES). */
  readonly maxRecordBytes?: number;
}

/** The log in memory: for tests and the simulated network (nothing survives the process). */
export class MemoryActionLog implements ActionLogReader {
  readonly #records: ActionRecord[] = [];
  readonly #keys = new Set<string>();
  readonly #maxRecordBytes: number;

  constructor(options: MemoryActionLogOptions = {}) {
    this.#maxRecordBytes = options.maxRecordBytes ?? MAX_RECORD_BYTES;
  }

  async append(record: ActionRecord): Promise<void> {
    const parsed = actionRecordSchema.parse(record);
    const bytes = recordBytes(parsed);
    if (bytes > this.#maxRecordBytes)
      throw new ActionRecordTooLargeError(recordKey(parsed), bytes, this.#maxRecordBytes);
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

  async events(filter: EventFilter): Promise<EventRecord[]> {
    const events = this.#records.filter(
      (r): r is EventRecord => r.kind === "event" && (filter.type === undefined || r.type === filter.type),
    );
    return newest(events, filter.limit).map((e) => structuredClone(e));
  }

  async show(action: string): Promise<ActionRecord[]> {
    const records = this.#records.filter((r) => r.action === action);
    const author = records.find((r) => r.kind === "request") ?? records[0];
    if (author === undefined) return [];
    return records.filter((r) => authorOf(r) === authorOf(author)).map((r) => structuredClone(r));
  }

  async read(query: RecordQuery): Promise<RecordPage> {
    const from = Math.max(1, query.fromSeq ?? 1);
    const records: StoredRecord[] = [];
    let next = from;
    for (let seq = from; seq <= this.#records.length && records.length < query.limit; seq++) {
      const record = this.#records[seq - 1];
      next = seq + 1;
      if (record !== undefined && matchesQuery(record, query))
        records.push({ seq, record: structuredClone(record) });
    }
    return { records, next };
  }

  async reach(): Promise<LogReach> {
    const first = this.#records[0];
    const bytes = this.#records.reduce((sum, r) => sum + recordBytes(r), 0);
    return {
      records: this.#records.length,
      bytes,
      lastSeq: this.#records.length,
      ...(first ? { firstSeq: 1, firstAt: first.at } : {}),
    };
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
