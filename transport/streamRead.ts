// Reads one stretch of a JetStream stream by subject filter and start
// sequence, the way the action log's readers need it: every wait bounded, a
// fetch that stalls (no message while some are pending, or an error) retried
// on a fresh ordered consumer from the sequence after the last one read, and
// a named error (ActionLogReadError, with that sequence) once retries run out.
import { DeliverPolicy, type JetStreamClient, type JsMsg } from "@nats-io/jetstream";
import { type Clock, sleep, type TimerHandle } from "./clock.js";
import { ActionLogReadError } from "./errors.js";

export interface StreamReadOptions {
  readonly js: JetStreamClient;
  readonly stream: string;
  readonly clock: Clock;
  /** Longest wait for one API answer or one batch. */
  readonly timeoutMs: number;
  /** Fresh consumers tried after a stall before the read fails. */
  readonly retries: number;
  /** Messages asked for in one fetch. */
  readonly batch: number;
}

/** Where a read is: the next sequence to read, and how many messages it was handed. */
export interface ReadCursor {
  next: number;
  delivered: number;
}

/**
 * Calls `onMessage` for each message on `filter` from `cursor.next` up to
 * `until` (inclusive), oldest first, until it returns false or the stream
 * ends. Fails with ActionLogReadError past `deadline` or after `retries`
 * stalls in a row; a stall that is followed by progress is forgiven.
 */
export async function readStream(
  o: StreamReadOptions,
  filter: string,
  cursor: ReadCursor,
  until: number,
  deadline: number,
  onMessage: (m: JsMsg) => boolean,
): Promise<void> {
  let stalls = 0;
  for (;;) {
    const before = cursor.next;
    try {
      await readOnce(o, filter, cursor, until, deadline, onMessage);
      return;
    } catch (error) {
      if (error instanceof ActionLogReadError) throw error;
      stalls = cursor.next > before ? 1 : stalls + 1;
      if (stalls > o.retries)
        throw new ActionLogReadError(
          `reading ${o.stream} (${filter}) stalled at sequence ${cursor.next} ${stalls} times in a row`,
          filter,
          cursor.next,
          stalls,
          { cause: error },
        );
      await sleep(o.clock, Math.min(1_000, 100 * stalls));
    }
  }
}

class Stalled extends Error {
  override name = "Stalled";
}

async function readOnce(
  o: StreamReadOptions,
  filter: string,
  cursor: ReadCursor,
  until: number,
  deadline: number,
  onMessage: (m: JsMsg) => boolean,
): Promise<void> {
  if (cursor.next > until) return;
  // A string, not an array: one filter_subject, which nats-server 2.9 understands.
  const consumer = await within(
    o,
    o.js.consumers.get(o.stream, {
      filter_subjects: filter,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: Math.max(1, cursor.next),
    }),
  );
  let messages: Awaited<ReturnType<typeof consumer.fetch>> | undefined;
  try {
    let pending = (await within(o, consumer.info())).num_pending;
    while (pending > 0) {
      if (o.clock.now() > deadline)
        throw new ActionLogReadError(
          `reading ${o.stream} (${filter}) ran out of time at sequence ${cursor.next} with ${pending} records left`,
          filter,
          cursor.next,
          0,
        );
      messages = await within(
        o,
        consumer.fetch({ max_messages: Math.min(pending, o.batch), expires: o.timeoutMs }),
      );
      let got = 0;
      for await (const m of messages) {
        got++;
        cursor.delivered++;
        pending = m.info.pending;
        if (m.seq > until) return;
        cursor.next = m.seq + 1;
        if (!onMessage(m)) return;
        if (pending === 0) break;
      }
      if (got === 0) throw new Stalled(`no message within ${o.timeoutMs} ms with ${pending} pending`);
    }
  } finally {
    await bounded(o.clock, messages?.close(), o.timeoutMs);
    await bounded(o.clock, consumer.delete(), o.timeoutMs);
  }
}

/** `promise`, or a Stalled error after the timeout. */
async function within<T>(o: StreamReadOptions, promise: Promise<T>): Promise<T> {
  let timer: TimerHandle | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = o.clock.setTimeout(
          () => reject(new Stalled(`no answer within ${o.timeoutMs} ms`)),
          o.timeoutMs,
        );
      }),
    ]);
  } finally {
    o.clock.clearTimeout(timer);
  }
}

/** Waits for `promise` (whatever it settles to), but no longer than `ms`. */
export async function bounded(
  clock: Clock,
  promise: Promise<unknown> | undefined,
  ms: number,
): Promise<void> {
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
