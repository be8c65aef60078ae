// The action log in a JetStream stream (SPEC 6.4): file storage, one subject
// per record, `dvs.<c>.actions.<author>.<action>.request|outcome|event|reply.<node>`,
// where <author> is the node that wrote it (the one the request came in on, or
// the one that recorded an event). nats.conf lets node N publish only under
// `dvs.<c>.actions.N.>`, so the subject is a server-checked author: a reader
// believes a record only when its subject names the node its body says wrote
// it, and skips (and counts) any other. One action's records share the subject
// prefix `*.<action>.`, one kind's share `*.*.<kind>`: every read is by
// subject filter and start sequence, so a listing costs what it returns, not
// the whole log. A record is durable when its publish is acknowledged (the
// sync policy is in docs/operations.md). Nodes only create the stream (never
// update, purge or delete it); the admin applies changed retention limits.

import {
  DiscardPolicy,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
  type StreamInfo,
} from "@nats-io/jetstream";
import { type NatsConnection, nanos } from "@nats-io/transport-node";
import { decodeTime } from "ulid";
import { actionIdSchema } from "../protocol/messages.js";
import {
  type ActionFilter,
  type ActionLogReader,
  type ActionRecord,
  type ActionSummary,
  authorOf,
  type EventFilter,
  type EventRecord,
  type LogReach,
  MAX_RECORD_BYTES,
  matches,
  noSkips,
  type OutcomeRecord,
  type RecordPage,
  type RecordQuery,
  type RequestRecord,
  recordBytes,
  recordKey,
  recordOnKey,
  type SkipCounts,
  type SkipReason,
  type StoredRecord,
} from "./actionLog.js";
import { type Clock, monotonicClock } from "./clock.js";
import { ActionExistsError, ActionLogError, ActionRecordTooLargeError } from "./errors.js";
import { type ReadCursor, readStream, type StreamReadOptions } from "./streamRead.js";
import { UntrustedStreamError, untrustedStream } from "./streamTrust.js";

export interface JetStreamActionLogOptions {
  readonly cluster: string;
  /** How long records are kept (config `actions.maxAgeDays`). */
  readonly maxAgeMs?: number;
  /** The stream's size limit; the oldest records go first (config `actions.maxMegabytes`). */
  readonly maxBytes?: number;
  /** The largest record the stream takes (its max_msg_size). */
  readonly maxRecordBytes?: number;
  /** Stream replicas in a clustered nats-server deployment (1 for one server). */
  readonly replicas?: number;
  /** Longest wait for one acknowledgement, API answer or batch of records. */
  readonly timeoutMs?: number;
  /** Longest one list or show may take in all. */
  readonly readDeadlineMs?: number;
  /** Fresh consumers a read tries after a stalled fetch before it fails (default 3). */
  readonly readRetries?: number;
  /** Told when the stream exists with other limits than these (it is used as it is). */
  readonly logger?: { warn(fields: object, message: string): void };
  /** Measures the read deadline and the retry pauses (default: the monotonic clock). */
  readonly clock?: Clock;
}

const DAY_MS = 86_400_000;
/** Records asked for in one fetch while reading. */
const BATCH = 1_000;
/** How far before an action id's time its records may sit (the writers' clocks differ). */
const CLOCK_SLACK_MS = 10 * 60_000;
/** The limits `applyLimits` sets and the creator compares. */
const LIMIT_FIELDS = ["max_age", "max_bytes", "max_msg_size"] as const;

/** The stream's name for a cluster (stream names cannot hold dots). */
export function actionStreamName(cluster: string): string {
  return `DVS_ACTIONS_${cluster}`;
}

type Required2 = Required<Omit<JetStreamActionLogOptions, "logger">> &
  Pick<JetStreamActionLogOptions, "logger">;

export class JetStreamActionLog implements ActionLogReader {
  readonly stream: string;
  /** What the reads so far passed over, by reason (see SkipReason); they never fail on such records. */
  readonly skips: SkipCounts = noSkips();
  /** Records the reads so far were handed by the server (what a read cost). */
  delivered = 0;
  readonly #nc: NatsConnection;
  readonly #o: Required2;
  readonly #js: JetStreamClient;
  readonly #prefix: string;
  #ready: Promise<JetStreamManager> | undefined;
  #manager: Promise<JetStreamManager> | undefined;
  /** The largest record the stream and the server take: the least of ours, the stream's max_msg_size and max_payload. */
  #recordLimit: number;

  constructor(nc: NatsConnection, options: JetStreamActionLogOptions) {
    this.#nc = nc;
    this.#o = {
      maxAgeMs: 90 * DAY_MS,
      maxBytes: 1024 ** 3,
      maxRecordBytes: MAX_RECORD_BYTES,
      replicas: 1,
      timeoutMs: 2_000,
      readDeadlineMs: 60_000,
      readRetries: 3,
      clock: monotonicClock,
      ...options,
    };
    this.stream = actionStreamName(options.cluster);
    this.#recordLimit = this.#o.maxRecordBytes;
    this.#prefix = `dvs.${options.cluster}.actions.`;
    this.#js = jetstream(nc, { timeout: this.#o.timeoutMs });
  }

  /** Records the reads so far passed over, all reasons together. */
  get skipped(): number {
    return Object.values(this.skips).reduce((a, b) => a + b, 0);
  }

  /** The stream's configuration as this log would create it. */
  config(): StreamConfig {
    return {
      name: this.stream,
      subjects: [`${this.#prefix}>`],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      max_age: nanos(this.#o.maxAgeMs),
      max_bytes: this.#o.maxBytes,
      max_msg_size: this.#o.maxRecordBytes,
      num_replicas: this.#o.replicas,
      // Long enough to cover a requester's retries of one action.
      duplicate_window: nanos(120_000),
    } as StreamConfig;
  }

  /**
   * Creates the stream when it is missing (STREAM.INFO, then STREAM.CREATE);
   * one that exists is used as it is, with a warning when its limits differ
   * (a node never updates it: the admin does, `applyLimits`). Retried on the next call after a failure.
   */
  #ensure(): Promise<JetStreamManager> {
    this.#ready ??= (async () => {
      const jsm = await this.#jsm();
      const config = this.config();
      const existing = await this.#info(jsm);
      if (existing !== undefined) this.#compare(existing, config);
      else {
        try {
          await jsm.streams.add(config);
          this.#limitTo(config.max_msg_size);
        } catch (error) {
          // Another node created it meanwhile: use that one.
          if (!isStreamExists(error)) throw error;
          const made = await this.#info(jsm);
          if (made === undefined) throw error;
          this.#compare(made, config);
        }
      }
      return jsm;
    })().catch((error: unknown) => {
      this.#ready = undefined;
      throw new ActionLogError(`action log stream ${this.stream} is not available`, { cause: error });
    });
    return this.#ready;
  }

  #compare(info: StreamInfo, wanted: StreamConfig): void {
    const have = info.config;
    this.#limitTo(have.max_msg_size);
    const reasons = untrustedStream(have, [`${this.#prefix}>`]);
    if (reasons.length > 0) throw new UntrustedStreamError(this.stream, reasons);
    const differ: Record<string, { readonly stream: unknown; readonly configured: unknown }> = {};
    for (const field of [...LIMIT_FIELDS, "num_replicas", "duplicate_window", "storage"] as const) {
      if (have[field] !== wanted[field]) differ[field] = { stream: have[field], configured: wanted[field] };
    }
    const covers = have.subjects?.some((s) => s === `${this.#prefix}>`);
    if (!covers) differ.subjects = { stream: have.subjects, configured: wanted.subjects };
    if (Object.keys(differ).length === 0) return;
    this.#o.logger?.warn(
      { stream: this.stream, differ },
      "the action log stream exists with other limits than configured: it is used as it is (the admin applies them: dvsctl actions retention)",
    );
  }

  /**
   * Sets the stream's retention limits (max age, max bytes, max record size)
   * to this log's, creating the stream if missing. Needs STREAM.UPDATE: the
   * admin's right, never a node's (a node that could shorten the retention could purge the log).
   * Resolves with the limits the stream had before.
   */
  async applyLimits(): Promise<{
    readonly before: Partial<StreamConfig>;
    readonly after: Partial<StreamConfig>;
  }> {
    const jsm = await this.#jsm();
    const wanted = this.config();
    const info = await this.#info(jsm);
    if (info === undefined) {
      await this.#ensure();
      return { before: {}, after: pick(wanted) };
    }
    const reasons = untrustedStream(info.config, [`${this.#prefix}>`]);
    if (reasons.length > 0) throw new UntrustedStreamError(this.stream, reasons);
    try {
      const updated = await jsm.streams.update(this.stream, pick(wanted));
      return { before: pick(info.config), after: pick(updated.config) };
    } catch (error) {
      throw new ActionLogError(`could not update the limits of ${this.stream}`, { cause: error });
    }
  }

  /** Lowers the record limit to the stream's max_msg_size (when it has one) and the server's max_payload. */
  #limitTo(maxMsgSize: number | undefined): void {
    const payload = this.#nc.info?.max_payload ?? Number.POSITIVE_INFINITY;
    const stream = maxMsgSize !== undefined && maxMsgSize > 0 ? maxMsgSize : Number.POSITIVE_INFINITY;
    // Headroom under max_payload for the subject and the Nats-Msg-Id header.
    this.#recordLimit = Math.min(this.#o.maxRecordBytes, stream, payload - 1_024);
  }

  /** The JetStream API, without touching the stream: readers never change it. */
  #jsm(): Promise<JetStreamManager> {
    this.#manager ??= jetstreamManager(this.#nc, { timeout: this.#o.timeoutMs }).catch((error: unknown) => {
      this.#manager = undefined;
      throw new ActionLogError("JetStream is not available", { cause: error });
    });
    return this.#manager;
  }

  async #info(jsm: JetStreamManager): Promise<StreamInfo | undefined> {
    try {
      return await jsm.streams.info(this.stream);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw new ActionLogError(`cannot read ${this.stream}`, { cause: error });
    }
  }

  async append(record: ActionRecord): Promise<void> {
    const key = recordKey(record);
    const jsm = await this.#ensure();
    const bytes = recordBytes(record);
    if (bytes > this.#recordLimit) throw new ActionRecordTooLargeError(key, bytes, this.#recordLimit);
    const first = record.kind === "request";
    if (first && (await this.#requested(jsm, record.action))) throw new ActionExistsError(record.action);
    let duplicate: boolean;
    try {
      const ack = await this.#js.publish(`${this.#prefix}${key}`, JSON.stringify(record), {
        // A request's id holds no node: a second request for one action id, from any node, is a duplicate.
        msgID: first ? `${record.action}.request` : key,
        timeout: this.#o.timeoutMs,
        // A request record must be the first on its subject, even after the duplicate window.
        ...(first ? { expect: { lastSubjectSequence: 0 } } : {}),
      });
      duplicate = ack.duplicate;
    } catch (error) {
      if (first && isWrongLastSequence(error)) throw new ActionExistsError(record.action);
      throw new ActionLogError(`could not append ${key} to ${this.stream}`, { cause: error });
    }
    if (duplicate && first) throw new ActionExistsError(record.action);
  }

  /** Whether any node logged a request under `action` (STREAM.MSG.GET of the last on `*.<action>.request`). */
  async #requested(jsm: JetStreamManager, action: string): Promise<boolean> {
    try {
      const stored = await jsm.streams.getMessage(this.stream, {
        last_by_subj: `${this.#prefix}*.${action}.request`,
      });
      return stored !== null && stored !== undefined;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw new ActionLogError(`could not look up action ${action} in ${this.stream}`, { cause: error });
    }
  }

  /** How far back the stream reaches (its first record's sequence and time) and its limits. */
  async reach(): Promise<LogReach> {
    const info = await this.#info(await this.#jsm());
    if (info === undefined) return { records: 0, bytes: 0, lastSeq: 0 };
    const { state, config } = info;
    const firstAt = Date.parse(state.first_ts);
    return {
      records: state.messages,
      bytes: state.bytes,
      lastSeq: state.last_seq,
      ...(state.messages > 0 ? { firstSeq: state.first_seq } : {}),
      ...(state.messages > 0 && Number.isFinite(firstAt) ? { firstAt } : {}),
      ...(config.max_age > 0 ? { maxAgeMs: config.max_age / 1e6 } : {}),
      ...(config.max_bytes > 0 ? { maxBytes: config.max_bytes } : {}),
    };
  }

  /**
   * The newest `limit` matching actions, oldest first. Reads the request
   * subjects (`*.*.request`) back from the stream's end a stretch at a time
   * until it has `limit` matches or reaches the start, then the
   * outcome subjects (`*.*.outcome`) from the oldest kept request on: an
   * outcome is always after its request.
   */
  async list(filter: ActionFilter): Promise<ActionSummary[]> {
    const deadline = this.#o.clock.now() + this.#o.readDeadlineMs;
    const requests = new Map<string, StoredRecord>();
    const found = await this.#newest(
      "request",
      Math.max(filter.limit * 4, 1_024),
      deadline,
      (s) => {
        if (s.record.kind !== "request") return;
        this.#keepFirstRequest(requests, s);
      },
      () => [...requests.values()].filter((r) => matches(r.record as RequestRecord, filter)).length,
      filter.limit,
    );
    if (!found) return [];
    const kept = [...requests.values()]
      .filter((r) => matches(r.record as RequestRecord, filter))
      .sort((a, b) => a.seq - b.seq)
      .slice(-filter.limit);
    const from = kept[0]?.seq;
    const outcomes = new Map<string, OutcomeRecord>();
    if (from !== undefined)
      await this.#collect(this.#subject("*", "outcome"), from, Number.POSITIVE_INFINITY, deadline, (s) => {
        if (s.record.kind === "outcome") outcomes.set(`${s.record.node}.${s.record.action}`, s.record);
        return true;
      });
    return kept.map(({ record }) => {
      const request = record as RequestRecord;
      const outcome = outcomes.get(`${request.node}.${request.action}`);
      return outcome ? { request, outcome } : { request };
    });
  }

  /** The newest `limit` events (`*.*.event`), oldest first. */
  async events(filter: EventFilter): Promise<EventRecord[]> {
    const deadline = this.#o.clock.now() + this.#o.readDeadlineMs;
    const events: StoredRecord[] = [];
    const keep = (e: EventRecord) => filter.type === undefined || e.type === filter.type;
    await this.#newest(
      "event",
      Math.max(filter.limit * 4, 1_024),
      deadline,
      (s) => {
        if (s.record.kind === "event" && keep(s.record)) events.push(s);
      },
      () => events.length,
      filter.limit,
    );
    return events
      .sort((a, b) => a.seq - b.seq)
      .slice(-filter.limit)
      .map((s) => s.record as EventRecord);
  }

  /**
   * Reads `*.*.<kind>` back from the stream's end in stretches (each sized
   * by the matches found so far) until `enough() >= limit` or the start.
   * False when the stream is empty.
   */
  async #newest(
    kind: "request" | "event",
    firstWindow: number,
    deadline: number,
    onRecord: (s: StoredRecord) => void,
    enough: () => number,
    limit: number,
  ): Promise<boolean> {
    const info = await this.#info(await this.#jsm());
    if (info === undefined || info.state.messages === 0) return false;
    const filter = this.#subject("*", kind);
    let end = info.state.last_seq;
    let window = firstWindow;
    let newestWindow = true;
    let read = 0;
    while (end >= info.state.first_seq) {
      const start = Math.max(info.state.first_seq, end - window + 1);
      // The newest stretch reads on to the end: records written since the stream info count too.
      const until = newestWindow ? Number.POSITIVE_INFINITY : end;
      await this.#collect(filter, start, until, deadline, (s) => {
        onRecord(s);
        return true;
      });
      const found = enough();
      if (found >= limit) break;
      newestWindow = false;
      read += end - start + 1;
      end = start - 1;
      // Size the next stretch by how dense the matches were so far (a quarter more), at least doubling when none were.
      const wanted = found > 0 ? Math.ceil(((limit - found) * read * 1.25) / found) : window * 2;
      window = Math.min(Math.max(wanted, 256), 1 << 20);
    }
    return true;
  }

  /** One request per action id: the first written wins, a later one (another node's, after the duplicate window) is a conflict. */
  #keepFirstRequest(requests: Map<string, StoredRecord>, found: StoredRecord): void {
    const held = requests.get(found.record.action);
    if (held !== undefined) this.#skip("conflict");
    if (held === undefined || found.seq < held.seq) requests.set(found.record.action, found);
  }

  /**
   * Every record of one action (filter `*.<action>.>`: whichever node wrote
   * it), in the order written, from its author only: the node whose request
   * came first. Records of that id from any other node are skipped as
   * conflicts. The read starts near the time the action id names (a ULID)
   * and, when nothing is there, from the stream's start.
   */
  async show(action: string): Promise<ActionRecord[]> {
    if (!actionIdSchema.safeParse(action).success) return [];
    const deadline = this.#o.clock.now() + this.#o.readDeadlineMs;
    const info = await this.#info(await this.#jsm());
    if (info === undefined || info.state.messages === 0) return [];
    const stored: StoredRecord[] = [];
    const filter = this.#subject(action);
    const collect = (from: number) =>
      this.#collect(filter, from, Number.POSITIVE_INFINITY, deadline, (s) => {
        stored.push(s);
        return true;
      });
    const near = await this.#seqNear(action, info);
    await collect(near ?? info.state.first_seq);
    if (stored.length === 0 && near !== undefined && near > info.state.first_seq)
      await collect(info.state.first_seq);
    const first = stored.find((s) => s.record.kind === "request") ?? stored[0];
    if (first === undefined) return [];
    const author = authorOf(first.record);
    const records: ActionRecord[] = [];
    let requests = 0;
    for (const { record } of stored) {
      const second = record.kind === "request" && requests++ > 0;
      if (authorOf(record) !== author || second) this.#skip("conflict");
      else records.push(record);
    }
    return records;
  }

  /** The first sequence stored after the time a ULID action id names (less the clock slack), if it is one. */
  async #seqNear(action: string, info: StreamInfo): Promise<number | undefined> {
    let at: number;
    try {
      at = decodeTime(action.toUpperCase());
    } catch {
      return undefined;
    }
    try {
      const jsm = await this.#jsm();
      const m = await jsm.streams.getMessage(this.stream, {
        start_time: new Date(Math.max(0, at - CLOCK_SLACK_MS)),
      } as never);
      return m?.seq !== undefined && m.seq >= info.state.first_seq ? m.seq : undefined;
    } catch {
      return undefined;
    }
  }

  /** The records on `query`'s subject from its start sequence on, at most `limit`. */
  async read(query: RecordQuery): Promise<RecordPage> {
    if (query.action !== undefined && !actionIdSchema.safeParse(query.action).success)
      return { records: [], next: query.fromSeq ?? 1 };
    const deadline = this.#o.clock.now() + this.#o.readDeadlineMs;
    const filter = this.#subject(query.action ?? "*", query.kind);
    const records: StoredRecord[] = [];
    const next = await this.#collect(filter, query.fromSeq ?? 1, Number.POSITIVE_INFINITY, deadline, (s) => {
      records.push(s);
      return records.length < query.limit;
    });
    return { records, next };
  }

  /** The subject filter of one action's records, or one kind's, or both. */
  #subject(action: string, kind?: ActionRecord["kind"]): string {
    if (kind === undefined) return `${this.#prefix}*.${action}.>`;
    return `${this.#prefix}*.${action}.${kind}${kind === "reply" ? ".*" : ""}`;
  }

  #skip(reason: SkipReason): void {
    this.skips[reason]++;
  }

  /**
   * Reads `filter` from `start` to `until`, checking each record against its
   * subject (those that fail are skipped and counted), until `onRecord` says
   * stop. Resolves with the sequence to read on from.
   */
  async #collect(
    filter: string,
    start: number,
    until: number,
    deadline: number,
    onRecord: (s: StoredRecord) => boolean,
  ): Promise<number> {
    const cursor: ReadCursor = { next: Math.max(1, start), delivered: 0 };
    const options: StreamReadOptions = {
      js: this.#js,
      stream: this.stream,
      clock: this.#o.clock,
      timeoutMs: this.#o.timeoutMs,
      retries: this.#o.readRetries,
      batch: BATCH,
    };
    try {
      await readStream(options, filter, cursor, until, deadline, (m: JsMsg) => {
        const checked = this.#check(m.subject, () => m.json());
        if (typeof checked === "string") {
          this.#skip(checked);
          return true;
        }
        return onRecord({ seq: m.seq, record: checked });
      });
    } finally {
      this.delivered += cursor.delivered;
    }
    return cursor.next;
  }

  /** The record on `subject`, or why it is not believed. */
  #check(subject: string, value: () => unknown): ActionRecord | SkipReason {
    if (!subject.startsWith(this.#prefix)) return "subject";
    let json: unknown;
    try {
      json = value();
    } catch {
      return "invalid";
    }
    return recordOnKey(subject.slice(this.#prefix.length), json);
  }
}

function pick(config: Partial<StreamConfig>): Partial<StreamConfig> {
  const limits: Record<string, unknown> = {};
  for (const field of LIMIT_FIELDS) limits[field] = config[field];
  return limits as Partial<StreamConfig>;
}

function isWrongLastSequence(error: unknown): boolean {
  if (error instanceof JetStreamApiError) return error.code === 10071;
  return /wrong last sequence/i.test((error as Error | undefined)?.message ?? "");
}

/** STREAM.CREATE refused because a stream of that name exists (another node created it first). */
function isStreamExists(error: unknown): boolean {
  if (error instanceof JetStreamApiError) return error.code === 10058;
  return /already in use|already exists/i.test((error as Error | undefined)?.message ?? "");
}

/** A JetStream answer that the stream or message does not exist. */
export function isNotFound(error: unknown): boolean {
  if (error instanceof JetStreamApiError) return error.code === 10059 || error.code === 10037;
  return /not found/i.test((error as Error | undefined)?.message ?? "");
}
