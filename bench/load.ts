// The load shapes rows are built from: sequential requests timed one by one,
// a fixed number of requests kept in flight, and blocks that alternate between
// contenders so that machine noise (another process, a GC, CPU frequency)
// lands on each side alike.
import { abortError } from "./context.js";
import type { BenchContext } from "./row.js";

/** Sends one request and resolves when its reply has arrived and been checked. */
export type Requester = () => Promise<void>;

/** Latencies in microseconds of `count` requests sent one after the other. */
export async function sequential(send: Requester, count: number, signal: AbortSignal): Promise<number[]> {
  const samples: number[] = new Array(count);
  for (let i = 0; i < count; i++) {
    if (signal.aborted) throw abortError(signal);
    const start = process.hrtime.bigint();
    await send();
    samples[i] = Number(process.hrtime.bigint() - start) / 1_000;
  }
  return samples;
}

export interface Throughput {
  readonly requests: number;
  readonly seconds: number;
}

/** Sends `total` requests keeping `inFlight` outstanding; stops every worker at the first failure. */
export async function pipelined(
  send: Requester,
  total: number,
  inFlight: number,
  signal: AbortSignal,
): Promise<Throughput> {
  let issued = 0;
  let failed = false;
  const worker = async () => {
    while (issued < total && !failed) {
      if (signal.aborted) throw abortError(signal);
      issued++;
      try {
        await send();
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  const start = process.hrtime.bigint();
  await Promise.all(Array.from({ length: Math.min(inFlight, total) }, worker));
  return { requests: total, seconds: Number(process.hrtime.bigint() - start) / 1e9 };
}

/**
 * Runs `blocks` rounds; in each, every contender runs one block, in an order
 * that reverses every round (A B, B A, A B, …). Returns each contender's block
 * results in round order. Each block is bounded by `blockTimeoutMs`.
 */
export async function interleaved<K extends string, T>(
  ctx: BenchContext,
  options: { readonly blocks: number; readonly blockTimeoutMs: number; readonly label: string },
  contenders: Record<K, (block: number) => Promise<T>>,
): Promise<Record<K, T[]>> {
  const names = Object.keys(contenders) as K[];
  const results = Object.fromEntries(names.map((n) => [n, [] as T[]])) as Record<K, T[]>;
  for (let block = 0; block < options.blocks; block++) {
    const order = block % 2 === 0 ? names : [...names].reverse();
    for (const name of order) {
      const what = `${options.label}: ${name} block ${block + 1}/${options.blocks}`;
      results[name].push(await ctx.within(options.blockTimeoutMs, what, contenders[name](block)));
    }
  }
  return results;
}
