// A read of the action log's stream never hangs and never fails the whole
// command on one stall: a fetch that brings nothing while records are pending
// is retried on a fresh consumer from the sequence after the last one read,
// and only stalls in a row past the retries fail, with ActionLogReadError
// naming where the read stopped.
import type { JetStreamClient, JsMsg } from "@nats-io/jetstream";
import { describe, expect, it } from "vitest";
import { ActionLogReadError } from "../../transport/errors.js";
import { SimClock } from "../../transport/sim/clock.js";
import { type ReadCursor, readStream } from "../../transport/streamRead.js";

/** A stream of `total` messages whose fetches numbered in `stalls` (1 is the first) bring nothing. */
function fakeJs(total: number, stalls: Set<number>) {
  const starts: number[] = [];
  let fetches = 0;
  const js = {
    consumers: {
      get: async (_stream: string, opts: { opt_start_seq: number }) => {
        let next = opts.opt_start_seq;
        starts.push(next);
        return {
          info: async () => ({ num_pending: total - next + 1 }),
          fetch: async ({ max_messages }: { max_messages: number }) => {
            const batch: JsMsg[] = [];
            if (!stalls.has(++fetches))
              for (let i = 0; i < max_messages && next <= total; i++, next++)
                batch.push({ seq: next, subject: "s", info: { pending: total - next } } as unknown as JsMsg);
            return Object.assign(
              (async function* () {
                yield* batch;
              })(),
              { close: async () => {} },
            );
          },
          delete: async () => true,
        };
      },
    },
  } as unknown as JetStreamClient;
  return { js, starts };
}

async function read(total: number, stalls: Set<number>, retries: number, batch = 4) {
  const clock = new SimClock();
  const stop = clock.autoRun();
  const { js, starts } = fakeJs(total, stalls);
  const seen: number[] = [];
  const cursor: ReadCursor = { next: 1, delivered: 0 };
  try {
    await readStream(
      { js, stream: "S", clock, timeoutMs: 1_000, retries, batch },
      "f",
      cursor,
      Number.POSITIVE_INFINITY,
      clock.now() + 60_000,
      (m) => {
        seen.push(m.seq);
        return true;
      },
    );
    return { seen, starts, cursor };
  } finally {
    stop();
  }
}

describe("reading a stream by filter and start sequence", () => {
  it("resumes a stalled read on a fresh consumer from the record after the last one read, none twice", async () => {
    const { seen, starts } = await read(10, new Set([1]), 3);
    expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(starts[0]).toBe(1);
    expect(starts[1]).toBe(1);
  });

  it("forgives a stall once the read moves on again", async () => {
    // Fetches 2 and 4 stall: never twice in a row, so one retry is enough.
    const { seen, starts } = await read(20, new Set([2, 4]), 1, 5);
    expect(seen).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(starts).toEqual([1, 6, 11]);
  });

  it("fails with ActionLogReadError at the sequence where it stopped once stalls in a row pass the retries", async () => {
    const error = await read(10, new Set([2, 3, 4, 5]), 3, 4).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ActionLogReadError);
    expect(error).toMatchObject({ name: "ActionLogReadError", atSeq: 5, attempts: 4, filter: "f" });
  });
});
