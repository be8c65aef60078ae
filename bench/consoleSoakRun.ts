// The soak of `npm run console-soak` (consoleSoak.ts): one node after another
// leaves the DVS (DVSEND) and comes back (DVSINIT) while the Cluster page's
// heap, DOM nodes and CPU are sampled; and the rows made of those samples.
import type { DvsClient } from "../client/dvsClient.js";
import { CLUSTER, describe, type EventCounter, rendererCpuMs, WAIT_MS } from "./consoleSoakCluster.js";
import type { PageMetrics, PageSample, Probe } from "./consoleSoakPage.js";
import { sleep } from "./context.js";
import { BenchError } from "./errors.js";
import type { ResultRow } from "./results.js";

/** Heap, DOM nodes and CPU at the end over the first: "flat" within this. */
export const FLAT_TARGET = 2;
const MiB = 1024 * 1024;

export interface SoakOptions {
  readonly minutes: number;
  readonly sampleSeconds: number;
  /** One DVSEND + DVSINIT cycle every this many seconds. */
  readonly everySeconds: number;
  readonly signal: AbortSignal;
}

// ---- the soak ----

export interface SoakInput {
  readonly options: SoakOptions;
  readonly client: DvsClient;
  readonly events: EventCounter;
  readonly probe: Probe;
  readonly metrics: PageMetrics;
  /** The nodes to send away and back, in turn (not the coordinator, not one to be killed). */
  readonly nodes: readonly number[];
  readonly wait: <T>(ms: number, what: string, p: Promise<T>) => Promise<T>;
  readonly progress: (message: string) => void;
}

export interface SoakSample extends PageSample {
  /** Seconds since the soak started. */
  readonly second: number;
  /** CPU time (user + system) of chromium's renderer processes so far, in ms, from /proc; NaN when unknown. */
  readonly rendererCpuMs: number;
  readonly published: number;
  readonly rowsSeen: number;
  readonly rowsOnPage: number;
}

export interface Churn {
  cycles: number;
  failed: number;
  firstFailure?: string;
}

export async function runSoak(input: SoakInput): Promise<{
  rows: ResultRow[];
  notes: string[];
  samples: SoakSample[];
  churn: Churn;
}> {
  const { options, client, events, probe, metrics, wait, progress } = input;
  const { signal } = options;
  const churned = input.nodes;
  const totalMs = options.minutes * 60_000;
  const sampleMs = options.sampleSeconds * 1000;
  const everyMs = options.everySeconds * 1000;
  const churn: Churn = { cycles: 0, failed: 0 };
  const stop = new AbortController();
  const stopped = AbortSignal.any([signal, stop.signal]);

  const read = async (started: number): Promise<SoakSample> => {
    const s = await wait(WAIT_MS, "a sample of the page's metrics", metrics.sample());
    return {
      ...s,
      second: Math.round((s.at - started) / 1000),
      rendererCpuMs: rendererCpuMs(),
      published: events.published,
      rowsSeen: await wait(WAIT_MS, "the probe's count", probe.rowsSeen()),
      rowsOnPage: await wait(WAIT_MS, "the event rows", probe.rowsOnPage()),
    };
  };
  const fail = (what: string, error: unknown) => {
    churn.failed++;
    if (churn.firstFailure === undefined) churn.firstFailure = `${what}: ${describe(error)}`;
    if (churn.failed <= 3) progress(`soak: ${what} failed: ${describe(error)}`);
  };
  const send = async (type: "DVSEND" | "DVSINIT", node: number) => {
    const params = type === "DVSINIT" ? { name: CLUSTER } : {};
    const rply = await wait(WAIT_MS, `${type} to node ${node}`, client.request(type, params, { dst: node }));
    if (rply.rcode < 0) throw new BenchError(`${type} to node ${node} answered rcode ${rply.rcode}`);
  };
  const cycleLoop = async () => {
    for (let i = 0; !stopped.aborted; i++) {
      const node = churned[i % churned.length] as number;
      const next = performance.now() + everyMs;
      try {
        await send("DVSEND", node);
        await sleep(everyMs / 2, stopped);
        await send("DVSINIT", node);
        churn.cycles++;
      } catch (error) {
        // Stopped half-way, or failed: the node is not left outside the DVS.
        const bringBack = send("DVSINIT", node).catch(() => {});
        if (stopped.aborted) return bringBack;
        fail(`cycle ${i + 1} (node ${node})`, error);
        await bringBack;
      }
      await sleep(Math.max(0, next - performance.now()), stopped).catch(() => {});
    }
  };

  const started = performance.now();
  const samples: SoakSample[] = [await read(started)];
  progress(
    `soak: ${options.minutes} min, a DVSEND + DVSINIT cycle every ${options.everySeconds} s over nodes ${churned.join(", ")}; a sample every ${options.sampleSeconds} s`,
  );
  const cycles = cycleLoop();
  try {
    for (let i = 1; i * sampleMs <= totalMs; i++) {
      await sleep(Math.max(0, started + i * sampleMs - performance.now()), signal);
      const s = await read(started);
      const prev = samples.at(-1) as SoakSample;
      samples.push(s);
      progress(
        `soak ${s.second} s: heap ${(s.heapUsed / MiB).toFixed(2)} MiB, ${s.domNodes} DOM nodes, CPU ${cpuMsPerS(prev, s).toFixed(1)} ms/s (renderer ${rendererMsPerS(prev, s).toFixed(1)}), events ${s.published} published / ${s.rowsSeen} shown, ${s.rowsOnPage} rows; ${churn.cycles} cycles, ${churn.failed} failed`,
      );
    }
  } finally {
    stop.abort();
    await cycles.catch(() => {});
  }
  // Let the last cycle's events reach the page before they are counted.
  await sleep(3_000, signal);
  const end = await read(started);

  const start = samples[0] as SoakSample;
  const firstSample = samples[1] ?? start;
  const last = samples.at(-1) as SoakSample;
  const beforeLast = samples.at(-2) ?? samples[0];
  if (!firstSample || !beforeLast) throw new BenchError("no sample of the page was taken");
  const firstCpu = cpuMsPerS(start, firstSample);
  const lastCpu = cpuMsPerS(beforeLast, last);
  // The first interval that starts with the event list as full as it gets: from there on, growth is a leak.
  const fullRows = Math.max(...samples.map((x) => x.rowsOnPage));
  const fullAt = samples.findIndex((x, i) => i < samples.length - 2 && x.rowsOnPage === fullRows);
  const full: [SoakSample, SoakSample] | undefined =
    fullAt >= 0 ? [samples[fullAt] as SoakSample, samples[fullAt + 1] as SoakSample] : undefined;
  const first = `at ${firstSample.second} s`;
  const g = "soak";
  const rows: ResultRow[] = [
    {
      name: `${g}/heap.first`,
      group: g,
      value: firstSample.heapUsed / MiB,
      unit: "MiB",
      of: `JSHeapUsedSize after a GC, ${first}`,
    },
    { name: `${g}/heap.end`, group: g, value: last.heapUsed / MiB, unit: "MiB", of: `at ${last.second} s` },
    {
      name: `${g}/heap.ratio`,
      group: g,
      value: last.heapUsed / firstSample.heapUsed,
      unit: "×",
      of: "heap.end / heap.first",
      target: { op: "<=", value: FLAT_TARGET },
    },
    {
      name: `${g}/dom-nodes.first`,
      group: g,
      value: firstSample.domNodes,
      unit: "nodes",
      of: `CDP Nodes after a GC, ${first}`,
    },
    { name: `${g}/dom-nodes.end`, group: g, value: last.domNodes, unit: "nodes", of: `at ${last.second} s` },
    {
      name: `${g}/dom-nodes.ratio`,
      group: g,
      value: last.domNodes / firstSample.domNodes,
      unit: "×",
      of: "dom-nodes.end / dom-nodes.first",
      target: { op: "<=", value: FLAT_TARGET },
    },
    {
      name: `${g}/cpu.first`,
      group: g,
      value: firstCpu,
      unit: "ms/s",
      of: `page main-thread task time (CDP TaskDuration) per wall second, 0–${firstSample.second} s`,
    },
    {
      name: `${g}/cpu.last`,
      group: g,
      value: lastCpu,
      unit: "ms/s",
      of: `${beforeLast.second}–${last.second} s`,
    },
    {
      name: `${g}/cpu.ratio`,
      group: g,
      value: lastCpu / firstCpu,
      unit: "×",
      of: "cpu.last / cpu.first",
      target: { op: "<=", value: FLAT_TARGET },
    },
    {
      name: `${g}/cpu.ratio-full-list`,
      group: g,
      value: full ? lastCpu / cpuMsPerS(full[0], full[1]) : Number.NaN,
      unit: "×",
      of: full
        ? `cpu.last / the first interval with the event list already full (${full[0].second}–${full[1].second} s: ${cpuMsPerS(full[0], full[1]).toFixed(1)} ms/s)`
        : "not measured: the event list was never full for a whole interval before the last",
      ...(full ? { target: { op: "<=", value: FLAT_TARGET } as const } : {}),
    },
    {
      name: `${g}/renderer-cpu.first`,
      group: g,
      value: rendererMsPerS(start, firstSample),
      unit: "ms/s",
      of: `CPU time of chromium's renderer processes (/proc, all threads) per wall second, 0–${firstSample.second} s`,
    },
    {
      name: `${g}/renderer-cpu.last`,
      group: g,
      value: rendererMsPerS(beforeLast, last),
      unit: "ms/s",
      of: `${beforeLast.second}–${last.second} s`,
    },
    {
      name: `${g}/cpu-per-event.first`,
      group: g,
      value: msPerEvent(start, firstSample),
      unit: "ms",
      of: "page task time per event row added, first interval (the event rate can vary)",
    },
    {
      name: `${g}/cpu-per-event.last`,
      group: g,
      value: msPerEvent(beforeLast, last),
      unit: "ms",
      of: "last interval",
    },
    {
      name: `${g}/events.published`,
      group: g,
      value: end.published,
      unit: "events",
      of: `on dvs.${CLUSTER}.events.*, from the first kill to the end of the soak (${(((end.published - start.published) / (end.at - started)) * 1000).toFixed(1)}/s in the soak)`,
    },
    {
      name: `${g}/events.shown`,
      group: g,
      value: end.rowsSeen,
      unit: "events",
      of: "event rows added to the page in that time",
    },
    {
      name: `${g}/events.shown-ratio`,
      group: g,
      value: end.rowsSeen / end.published,
      unit: "×",
      of: "events.shown / events.published",
      target: { op: ">=", value: 0.99 },
    },
    {
      name: `${g}/event-rows.end`,
      group: g,
      value: end.rowsOnPage,
      unit: "rows",
      of: "rows in the page's event table at the end (it keeps 500)",
    },
    { name: `${g}/cycles`, group: g, value: churn.cycles, unit: "", of: "DVSEND + DVSINIT cycles completed" },
    {
      name: `${g}/cycles.failed`,
      group: g,
      value: churn.failed,
      unit: "",
      of: churn.firstFailure ?? "cycles with a request that failed",
    },
  ];
  const notes = [
    `soak samples (s: heap MiB / DOM nodes / page CPU ms/s / renderer CPU ms/s / rows): ${samples
      .map(
        (s, i) =>
          `${s.second}: ${(s.heapUsed / MiB).toFixed(2)} / ${s.domNodes} / ${i === 0 ? "–" : cpuMsPerS(samples[i - 1] as SoakSample, s).toFixed(1)} / ${i === 0 ? "–" : rendererMsPerS(samples[i - 1] as SoakSample, s).toFixed(1)} / ${s.rowsOnPage}`,
      )
      .join("; ")}`,
    `events by kind during the run: ${[...events.byName].map(([k, v]) => `${k} ${v}`).join(", ")}`,
  ];
  if (samples.length < 3) {
    notes.push(
      `only ${samples.length - 1} sample(s) after the start: the first and the last are the same interval, so the ratios say nothing; run longer or lower --sample-seconds`,
    );
  }
  return { rows, notes, samples: [...samples, end], churn };
}

const cpuMsPerS = (a: PageSample, b: PageSample) => (b.taskMs - a.taskMs) / ((b.at - a.at) / 1000);
const rendererMsPerS = (a: SoakSample, b: SoakSample) =>
  (b.rendererCpuMs - a.rendererCpuMs) / ((b.at - a.at) / 1000);
const msPerEvent = (a: SoakSample, b: SoakSample) => (b.taskMs - a.taskMs) / (b.rowsSeen - a.rowsSeen);
