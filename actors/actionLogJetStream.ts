// The action log in a JetStream stream (SPEC 6.4): file storage, one subject
// per record (`dvs.<c>.actions.<action>.request|reply.<node>|outcome`), the
// record's key as the message id so a record written twice is stored once.
// A record is durable when its publish is acknowledged: nats-server has written
// it to the stream's file, so it survives a kill -9 of the server (the sync
// policy is in docs/operations.md).
import {
  type ConsumerMessages,
  DiscardPolicy,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
} from "@nats-io/jetstream";
import { type NatsConnection, nanos } from "@nats-io/transport-node";
import { actionIdSchema } from "../transport/protocol.js";
import {
  type ActionFilter,
  type ActionLog,
  type ActionRecord,
  type ActionSummary,
  actionRecordSchema,
  matches,
  newest,
  type OutcomeRecord,
  outcomeRecordSchema,
  type RequestRecord,
  recordKey,
} from "./actionLog.js";
import { ActionExistsError, ActionLogError } from "./errors.js";

export interface JetStreamActionLogOptions {
  readonly cluster: string;
  /** How long records are kept. */
  readonly maxAgeMs?: number;
  /** The stream's size limit; the oldest records go first. */
  readonly maxBytes?: number;
  /** Stream replicas in a clustered nats-server deployment (1 for one server). */
  readonly replicas?: number;
  /** Longest wait for one acknowledgement or read. */
  readonly timeoutMs?: number;
}

const DAY_MS = 86_400_000;

/** The stream's name for a cluster (stream names cannot hold dots). */
export function actionStreamName(cluster: string): string {
  return `DVS_ACTIONS_${cluster}`;
}

export class JetStreamActionLog implements ActionLog {
  readonly stream: string;
  readonly #nc: NatsConnection;
  readonly #o: Required<JetStreamActionLogOptions>;
  readonly #js: JetStreamClient;
  #ready: Promise<JetStreamManager> | undefined;
  #manager: Promise<JetStreamManager> | undefined;

  constructor(nc: NatsConnection, options: JetStreamActionLogOptions) {
    this.#nc = nc;
    this.#o = {
      maxAgeMs: 90 * DAY_MS,
      maxBytes: 1024 ** 3,
      replicas: 1,
      timeoutMs: 2_000,
      ...options,
    };
    this.stream = actionStreamName(options.cluster);
    this.#js = jetstream(nc, { timeout: this.#o.timeoutMs });
  }

  #subject(suffix: string): string {
    return `dvs.${this.#o.cluster}.actions.${suffix}`;
  }

  /** Creates the stream, or brings its limits up to date; retried on the next call after a failure. */
  #ensure(): Promise<JetStreamManager> {
    this.#ready ??= (async () => {
      const jsm = await this.#jsm();
      const config = {
        name: this.stream,
        subjects: [this.#subject(">")],
        storage: StorageType.File,
        retention: RetentionPolicy.Limits,
        discard: DiscardPolicy.Old,
        max_age: nanos(this.#o.maxAgeMs),
        max_bytes: this.#o.maxBytes,
        num_replicas: this.#o.replicas,
        // Long enough to cover a requester's retries of one action.
        duplicate_window: nanos(120_000),
      };
      try {
        await jsm.streams.info(this.stream);
        await jsm.streams.update(this.stream, config);
      } catch (error) {
        if (!isNotFound(error)) throw error;
        await jsm.streams.add(config);
      }
      return jsm;
    })().catch((error: unknown) => {
      this.#ready = undefined;
      throw new ActionLogError(`action log stream ${this.stream} is not available`, { cause: error });
    });
    return this.#ready;
  }

  /** The JetStream API, without touching the stream: readers never change its limits. */
  #jsm(): Promise<JetStreamManager> {
    this.#manager ??= jetstreamManager(this.#nc, { timeout: this.#o.timeoutMs }).catch((error: unknown) => {
      this.#manager = undefined;
      throw new ActionLogError("JetStream is not available", { cause: error });
    });
    return this.#manager;
  }

  async #exists(jsm: JetStreamManager): Promise<boolean> {
    try {
      await jsm.streams.info(this.stream);
      return true;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw new ActionLogError(`cannot read ${this.stream}`, { cause: error });
    }
  }

  async append(record: ActionRecord): Promise<void> {
    await this.#ensure();
    const key = recordKey(record);
    const first = record.kind === "request";
    let duplicate: boolean;
    try {
      const ack = await this.#js.publish(this.#subject(key), JSON.stringify(record), {
        msgID: key,
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

  async list(filter: ActionFilter): Promise<ActionSummary[]> {
    const jsm = await this.#jsm();
    if (!(await this.#exists(jsm))) return [];
    const requests: RequestRecord[] = [];
    for await (const record of this.#read(this.#subject("*.request"))) {
      if (record.kind === "request" && matches(record, filter)) requests.push(record);
    }
    const kept = newest(requests, filter.limit);
    return Promise.all(
      kept.map(async (request) => {
        const outcome = await this.#outcome(jsm, request.action);
        return outcome ? { request, outcome } : { request };
      }),
    );
  }

  async show(action: string): Promise<ActionRecord[]> {
    if (!actionIdSchema.safeParse(action).success) return [];
    if (!(await this.#exists(await this.#jsm()))) return [];
    const records: ActionRecord[] = [];
    for await (const record of this.#read(this.#subject(`${action}.>`))) records.push(record);
    return records;
  }

  /** Records that fail validation (written by something else) are skipped and counted. */
  skipped = 0;

  async #outcome(jsm: JetStreamManager, action: string): Promise<OutcomeRecord | undefined> {
    try {
      const stored = await jsm.streams.getMessage(this.stream, {
        last_by_subj: this.#subject(`${action}.outcome`),
      });
      if (!stored) return undefined;
      const parsed = outcomeRecordSchema.safeParse(stored.json());
      if (!parsed.success) this.skipped++;
      return parsed.success ? parsed.data : undefined;
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  /** Every stored record on `filter`, oldest first, through an ordered consumer that ends at the last one. */
  async *#read(filter: string): AsyncGenerator<ActionRecord> {
    // A string, not an array: one filter_subject, which nats-server 2.9 understands.
    const consumer = await this.#js.consumers.get(this.stream, { filter_subjects: filter });
    const info = await consumer.info();
    let pending = info.num_pending;
    let messages: ConsumerMessages | undefined;
    try {
      while (pending > 0) {
        messages = await consumer.fetch({
          max_messages: Math.min(pending, 1_000),
          expires: this.#o.timeoutMs,
        });
        let got = 0;
        for await (const m of messages) {
          got++;
          pending = m.info.pending;
          const parsed = (() => {
            try {
              return actionRecordSchema.safeParse(m.json());
            } catch {
              return undefined;
            }
          })();
          if (parsed?.success) yield parsed.data;
          else this.skipped++;
          if (pending === 0) break;
        }
        if (got === 0)
          throw new ActionLogError(`reading ${this.stream} stalled with ${pending} records left`);
      }
    } finally {
      await messages?.close();
      await consumer.delete().catch(() => {});
    }
  }
}

function isWrongLastSequence(error: unknown): boolean {
  if (error instanceof JetStreamApiError) return error.code === 10071;
  return /wrong last sequence/i.test((error as Error | undefined)?.message ?? "");
}

/** A JetStream answer that the stream or message does not exist. */
export function isNotFound(error: unknown): boolean {
  if (error instanceof JetStreamApiError) return error.code === 10059 || error.code === 10037;
  return /not found/i.test((error as Error | undefined)?.message ?? "");
}
