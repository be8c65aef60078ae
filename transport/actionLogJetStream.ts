// The action log in a JetStream stream (SPEC 6.4): file storage, one subject
// per record, `dvs.<c>.actions.<author>.<action>.request|outcome|reply.<node>`,
// where <author> is the node that wrote it (the one the request came in on).
// nats.conf lets node N publish only under `dvs.<c>.actions.N.>`, so the
// subject is a server-checked author: a reader believes a record only when its
// subject names the node its body says wrote it, and skips (and counts) any
// other. A record is durable when its publish is acknowledged: nats-server has
// written it to the stream's file, so it survives a kill -9 of the server (the
// sync policy is in docs/operations.md). Nodes only create the stream (never
// update, purge or delete it); readers walk back from its end, so listing the
// newest actions costs what they take, not the whole log.

import {
  type ConsumerMessages,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
  type StreamInfo,
} from "@nats-io/jetstream";
import { type NatsConnection, nanos } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { actionIdSchema } from "../protocol/messages.js";
import {
  type ActionFilter,
  type ActionLog,
  type ActionRecord,
  type ActionSummary,
  authorOf,
  matches,
  noSkips,
  type OutcomeRecord,
  type RequestRecord,
  recordKey,
  recordOnKey,
  type SkipCounts,
  type SkipReason,
} from "./actionLog.js";
import { type Clock, monotonicClock, type TimerHandle } from "./clock.js";
import { ActionExistsError, ActionLogError } from "./errors.js";
import { UntrustedStreamError, untrustedStream } from "./streamTrust.js";

export interface JetStreamActionLogOptions {
  readonly cluster: string;
  /** How long records are kept. */
  readonly maxAgeMs?: number;
  /** The stream's size limit; the oldest records go first. */
  readonly maxBytes?: number;
  /** Stream replicas in a clustered nats-server deployment (1 for one server). */
  readonly replicas?: number;
  /** Longest wait for one acknowledgement, API answer or batch of records. */
  readonly timeoutMs?: number;
  /** Longest one list or show may take in all. */
  readonly readDeadlineMs?: number;
  /** Told when the stream exists with other limits than these (it is used as it is). */
  readonly logger?: Pick<Logger, "warn">;
  /** Measures the read deadline (default: the monotonic clock). */
  readonly clock?: Clock;
}

const DAY_MS = 86_400_000;
/** Records asked for in one batch while reading. */
const BATCH = 256;
/** The first stretch of the stream a listing reads back from its end (it doubles until enough are found). */
const FIRST_WINDOW = 512;

/** The stream's name for a cluster (stream names cannot hold dots). */
export function actionStreamName(cluster: string): string {
  return `DVS_ACTIONS_${cluster}`;
}

/** Everything a listing or a lookup read, with where each record sits. */
interface Stored {
  readonly seq: number;
  readonly record: ActionRecord;
}

export class JetStreamActionLog implements ActionLog {
  readonly stream: string;
  /** What the reads so far passed over, by reason (see SkipReason); they never fail on such records. */
  readonly skips: SkipCounts = noSkips();
  /** Records the reads so far were handed by the server (what a read cost). */
  delivered = 0;
  readonly #nc: NatsConnection;
  readonly #o: Required<Omit<JetStreamActionLogOptions, "logger">> &
    Pick<JetStreamActionLogOptions, "logger">;
  readonly #js: JetStreamClient;
  readonly #prefix: string;
  #ready: Promise<JetStreamManager> | undefined;
  #manager: Promise<JetStreamManager> | undefined;

  constructor(nc: NatsConnection, options: JetStreamActionLogOptions) {
    this.#nc = nc;
    this.#o = {
      maxAgeMs: 90 * DAY_MS,
      maxBytes: 1024 ** 3,
      replicas: 1,
      timeoutMs: 2_000,
      readDeadlineMs: 60_000,
      clock: monotonicClock,
      ...options,
    };
    this.stream = actionStreamName(options.cluster);
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
      num_replicas: this.#o.replicas,
      // Long enough to cover a requester's retries of one action.
      duplicate_window: nanos(120_000),
    } as StreamConfig;
  }

  /**
   * Creates the stream when it is missing (STREAM.INFO, then STREAM.CREATE);
   * one that exists is used as it is, with a warning when its limits differ
   * (a node never updates it: an operator does). Retried on the next call after a failure.
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
    const reasons = untrustedStream(have, [`${this.#prefix}>`]);
    if (reasons.length > 0) throw new UntrustedStreamError(this.stream, reasons);
    const differ: Record<string, { readonly stream: unknown; readonly configured: unknown }> = {};
    for (const field of ["max_age", "max_bytes", "num_replicas", "duplicate_window", "storage"] as const) {
      if (have[field] !== wanted[field]) differ[field] = { stream: have[field], configured: wanted[field] };
    }
    const covers = have.subjects?.some((s) => s === `${this.#prefix}>`);
    if (!covers) differ.subjects = { stream: have.subjects, configured: wanted.subjects };
    if (Object.keys(differ).length === 0) return;
    this.#o.logger?.warn(
      { stream: this.stream, differ },
      "the action log stream exists with other limits than configured: it is used as it is (an operator updates it)",
    );
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
    const jsm = await this.#ensure();
    const key = recordKey(record);
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

  /**
   * The newest `limit` matching actions, oldest first. Reads back from the
   * stream's end, a stretch at a time (doubling), the requests and outcomes
   * only (`*.*.*`: replies have one more token), until it has `limit` matches
   * or reaches the start: an outcome is always after its request, so it was
   * read by then.
   */
  async list(filter: ActionFilter): Promise<ActionSummary[]> {
    const deadline = this.#o.clock.now() + this.#o.readDeadlineMs;
    const info = await this.#info(await this.#jsm());
    if (info === undefined || info.state.messages === 0) return [];
    const requests = new Map<string, Stored>();
    const outcomes = new Map<string, OutcomeRecord>();
    const matched = () =>
      [...requests.values()].filter((r) => matches(r.record as RequestRecord, filter)).length;
    let end = info.state.last_seq;
    let window = Math.max(FIRST_WINDOW, filter.limit * 4);
    let newestWindow = true;
    while (end >= info.state.first_seq) {
      const start = Math.max(info.state.first_seq, end - window + 1);
      // The newest stretch reads on to the end: records written since the stream info count too.
      const until = newestWindow ? Number.POSITIVE_INFINITY : end;
      for await (const { seq, record } of this.#read(`${this.#prefix}*.*.*`, start, until, deadline)) {
        if (record.kind === "outcome") outcomes.set(`${record.node}.${record.action}`, record);
        else if (record.kind === "request") this.#keepFirstRequest(requests, { seq, record });
      }
      if (matched() >= filter.limit) break;
      newestWindow = false;
      end = start - 1;
      window = Math.min(window * 2, 1 << 20);
    }
    const kept = [...requests.values()]
      .filter((r) => matches(r.record as RequestRecord, filter))
      .sort((a, b) => a.seq - b.seq)
      .slice(-filter.limit);
    return kept.map(({ record }) => {
      const request = record as RequestRecord;
      const outcome = outcomes.get(`${request.node}.${request.action}`);
      return outcome ? { request, outcome } : { request };
    });
  }

  /** One request per action id: the first written wins, a later one (another node's, after the duplicate window) is a conflict. */
  #keepFirstRequest(requests: Map<string, Stored>, found: Stored): void {
    const held = requests.get(found.record.action);
    if (held !== undefined) this.#skip("conflict");
    if (held === undefined || found.seq < held.seq) requests.set(found.record.action, found);
  }

  /**
   * Every record of one action (filter `*.<action>.>`: whichever node wrote
   * it), in the order written, from its author only: the node whose request
   * came first. Records of that id from any other node are skipped as conflicts.
   */
  async show(action: string): Promise<ActionRecord[]> {
    if (!actionIdSchema.safeParse(action).success) return [];
    const deadline = this.#o.clock.now() + this.#o.readDeadlineMs;
    const info = await this.#info(await this.#jsm());
    if (info === undefined || info.state.messages === 0) return [];
    const stored: Stored[] = [];
    for await (const s of this.#read(
      `${this.#prefix}*.${action}.>`,
      info.state.first_seq,
      Number.POSITIVE_INFINITY,
      deadline,
    ))
      stored.push(s);
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

  #skip(reason: SkipReason): void {
    this.skips[reason]++;
  }

  /**
   * The records on `filter` from sequence `start` up to `until`, oldest first,
   * through an ordered consumer; each checked against its subject, and those
   * that fail skipped and counted. Every wait is bounded: the API calls by the
   * timeout, each batch by its expiry, and the whole read by `deadline`.
   */
  async *#read(filter: string, start: number, until: number, deadline: number): AsyncGenerator<Stored> {
    // A string, not an array: one filter_subject, which nats-server 2.9 understands.
    const consumer = await this.#js.consumers.get(this.stream, {
      filter_subjects: filter,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: Math.max(1, start),
    });
    let messages: ConsumerMessages | undefined;
    try {
      let pending = (await consumer.info()).num_pending;
      while (pending > 0) {
        if (this.#o.clock.now() > deadline)
          throw new ActionLogError(
            `reading ${this.stream} took longer than ${this.#o.readDeadlineMs} ms with ${pending} records left`,
          );
        messages = await consumer.fetch({
          max_messages: Math.min(pending, BATCH),
          expires: this.#o.timeoutMs,
        });
        let got = 0;
        for await (const m of messages) {
          got++;
          this.delivered++;
          pending = m.info.pending;
          if (m.seq > until) {
            pending = 0;
            break;
          }
          const checked = this.#check(m.subject, () => m.json());
          if (typeof checked === "string") this.#skip(checked);
          else yield { seq: m.seq, record: checked };
          if (pending === 0) break;
        }
        if (got === 0)
          throw new ActionLogError(`reading ${this.stream} stalled with ${pending} records left`);
      }
    } finally {
      await bounded(this.#o.clock, messages?.close(), this.#o.timeoutMs);
      await bounded(this.#o.clock, consumer.delete(), this.#o.timeoutMs);
    }
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

/** Waits for `promise` (whatever it settles to), but no longer than `ms`. */
async function bounded(clock: Clock, promise: Promise<unknown> | undefined, ms: number): Promise<void> {
  if (promise === undefined) return;
  let timer: TimerHandle | undefined;
  await Promise.race([
    promise.catch(() => {}),
    new Promise<void>((resolve) => {
      timer = clock.setTimeout(resolve, ms);
    }),
  ]);
  clock.clearTimeout(timer);
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
