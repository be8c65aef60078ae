// Entry of `npm run console-soak`: issue 23's last line, measured. A real
// `dvsd up` cluster (16 nodes by default) with its web console, and Debian's
// chromium on the console's Cluster page (playwright-core):
//
// - detection: a node is SIGKILLed and the time from the signal (the bench's
//   Date.now()) to the moment its PARTITION row is added to the page (the
//   page's Date.now(), taken in a MutationObserver: same machine, same clock)
//   is judged against 1,000 ms; once before the soak, once after it;
// - soak: for --minutes, one live node after another leaves the DVS (DVSEND)
//   and comes back (DVSINIT), signed with the admin key `dvsd up` wrote, so
//   every node publishes DISCONNECT and JOIN events the page shows; every
//   --sample-seconds the page's JS heap (after a forced GC), DOM nodes and
//   main-thread task time are read through the DevTools protocol. The heap
//   and DOM at the end over those at the first sample, and the page's CPU in
//   the last interval over the first, are judged ≤ 2 ("flat").
//
// Prints a table and writes results/console-soak.{json,md} (bench/results.ts).
// The parts: consoleSoakCluster.ts (`dvsd up`, the events on NATS, /proc),
// consoleSoakPage.ts (the probe in the page, the DevTools figures),
// consoleSoakRun.ts (the soak and its rows).
import { existsSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type Browser, chromium, type Page } from "playwright-core";
import { loadAdminSigner } from "../client/adminKey.js";
import { connectNats } from "../client/connection.js";
import { DEV_USERS } from "../client/credentials.js";
import { DvsClient } from "../client/dvsClient.js";
import { freePort } from "../daemon/natsServer.js";
import {
  CLUSTER,
  closeTransport,
  consoleProcessRss,
  describe,
  EventCounter,
  startCluster,
  WAIT_MS,
} from "./consoleSoakCluster.js";
import { installProbe, PageMetrics } from "./consoleSoakPage.js";
import { FLAT_TARGET, runSoak } from "./consoleSoakRun.js";
import {
  abortError,
  abortOnSignals,
  type LastResort,
  runLastResort,
  Scope,
  sleep,
  within,
} from "./context.js";
import { runIfMain } from "./entry.js";
import { BenchAbortedError, BenchError } from "./errors.js";
import { findRepoRoot } from "./repoRoot.js";
import { errorRow, judgeResultRow, type ResultRow, renderResultTable, writeResults } from "./results.js";

const DEFAULTS = {
  nodes: 16,
  minutes: 10,
  sampleSeconds: 60,
  everySeconds: 5,
  readySeconds: 180,
} as const;
/** The figure for detection. */
const DETECT_TARGET_MS = 1_000;
/** The longest wait for a PARTITION row before it is called missing. */
const DETECT_TIMEOUT_MS = 15_000;

export interface ConsoleSoakOptions {
  readonly nodes: number;
  readonly minutes: number;
  readonly sampleSeconds: number;
  /** One DVSEND + DVSINIT cycle every this many seconds. */
  readonly everySeconds: number;
  readonly readySeconds: number;
  readonly chromium: string;
  readonly signal: AbortSignal;
  readonly progress: (message: string) => void;
}

export interface ConsoleSoakReport {
  readonly rows: ResultRow[];
  readonly notes: string[];
  readonly meta: Record<string, unknown>;
  readonly errors: number;
}

/** The chromium to drive: DVS_CHROMIUM, else Debian's. */
export function chromiumPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.DVS_CHROMIUM ?? "/usr/bin/chromium";
}

/** Chromium is not there: exit status 2, saying what to install. */
export class ChromiumMissingError extends BenchError {
  override name = "ChromiumMissingError";
  constructor(readonly path: string) {
    super(
      `no chromium at ${path}: install it (Debian: apt-get install -y chromium) or name one with DVS_CHROMIUM=/path/to/chromium`,
    );
  }
}

export async function runConsoleSoak(options: ConsoleSoakOptions): Promise<ConsoleSoakReport> {
  if (!existsSync(options.chromium)) throw new ChromiumMissingError(options.chromium);
  const dvsdJs = join(findRepoRoot(), "dist", "bin", "dvsd.js");
  if (!existsSync(dvsdJs)) throw new BenchError(`${dvsdJs} is missing: run npm run build first`);
  const lastResort: LastResort = new Set();
  const onExit = () => runLastResort(lastResort);
  process.on("exit", onExit);
  const scope = new Scope(lastResort);
  const { signal, progress } = options;
  const wait = <T>(ms: number, what: string, p: Promise<T>) => within(signal, ms, what, p);
  const rows: ResultRow[] = [];
  const notes: string[] = [];
  const meta: Record<string, unknown> = {
    options: {
      nodes: options.nodes,
      minutes: options.minutes,
      sampleSeconds: options.sampleSeconds,
      everySeconds: options.everySeconds,
      chromium: options.chromium,
    },
    cpuModel: cpus()[0]?.model.trim() ?? "unknown",
  };
  const load = (when: string) => {
    const [one, five] = loadavg();
    notes.push(
      `load average ${when}: ${one?.toFixed(2)} (1 min), ${five?.toFixed(2)} (5 min) on ${cpus().length} CPUs`,
    );
  };
  load("at the start");
  try {
    // ---- the cluster ----
    const dataDir = scope.tempDir("dvs-console-soak-");
    const natsPort = await freePort();
    let consolePort = await freePort();
    while (consolePort === natsPort) consolePort = await freePort();
    const cluster = startCluster(scope, dvsdJs, {
      nodes: options.nodes,
      natsPort,
      consolePort,
      dataDir,
      readyMs: options.readySeconds * 1000,
    });
    progress(`dvsd up --nodes ${options.nodes} (pid ${cluster.child.pid}), data in ${dataDir}`);
    const up = await wait(options.readySeconds * 1000 + 15_000, "dvsd up to be ready", cluster.ready);
    progress(`cluster up at ${up.natsUrl}; console ${up.consoleUrl}; ${up.pids.size} node pids`);
    meta.natsServerPid = up.natsPid ?? null;

    const transport = await wait(
      10_000,
      "connecting to NATS",
      connectNats({
        servers: [up.natsUrl],
        name: "console-soak",
        connectTimeoutMs: 5_000,
        ...DEV_USERS.admin,
      }),
    );
    scope.defer("close the NATS connection", () => closeTransport(transport));
    const client = new DvsClient(transport, {
      cluster: CLUSTER,
      clientId: "console-soak",
      signer: loadAdminSigner(join(dataDir, "admin.nk")),
      timeoutMs: 10_000,
    });
    const events = new EventCounter(transport);

    // ---- the browser ----
    const browser: Browser = await wait(
      30_000,
      "chromium to start",
      chromium.launch({
        executablePath: options.chromium,
        args: ["--no-sandbox"],
        headless: true,
        // Ctrl-C is ours: the browser is closed with everything else, in order.
        handleSIGINT: false,
        handleSIGTERM: false,
      }),
    );
    scope.defer("close chromium", () => browser.close());
    const page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
    let pageErrors = 0;
    page.on("pageerror", (error) => {
      if (++pageErrors <= 3) progress(`page error: ${error.message}`);
    });
    await wait(WAIT_MS, "the Cluster page to load", page.goto(`${up.consoleUrl}#cluster`));
    await page
      .locator("#nodes tbody tr:not(.down)")
      .nth(options.nodes - 1)
      .waitFor({ timeout: WAIT_MS });
    const coordinator = await coordinatorOnPage(page);
    progress(`the page shows ${options.nodes} nodes; coordinator: node ${coordinator ?? "?"}`);
    meta.coordinator = coordinator ?? null;
    const probe = await installProbe(page);
    // Counted from here on both sides: the page's rows and the events on NATS.
    events.reset();
    const metrics = await PageMetrics.open(page);
    scope.defer("detach the DevTools session", () => metrics.close());

    // Nodes the run may use: alive and not the coordinator (its DVSEND would add elections to the
    // events). The first is killed before the soak, the last after it; the soak churns those between.
    const usable = [...up.pids.keys()].filter((n) => n !== coordinator).sort((a, b) => b - a);
    const [firstVictim, ...churned] = usable;
    const lastVictim = churned.pop();
    if (firstVictim === undefined || lastVictim === undefined || churned.length === 0) {
      throw new BenchError(`${usable.length} nodes besides the coordinator: the run needs 3`);
    }
    meta.victims = [firstVictim, lastVictim];

    const detect = async (victim: number, label: string): Promise<ResultRow[]> => {
      const pid = up.pids.get(victim);
      if (pid === undefined) throw new BenchError(`no pid known for node ${victim}`);
      const group = `detect-${label}`;
      const { armed, seen } = probe.watch(victim);
      await wait(WAIT_MS, "arming the page's probe", armed);
      const onNats = events.firstPartition(victim);
      // Nothing between the clock reading and the signal.
      const killedAt = Date.now();
      process.kill(pid, "SIGKILL");
      up.pids.delete(victim);
      progress(`${label}: SIGKILLed node ${victim} (pid ${pid})`);
      let pageAt: number;
      try {
        pageAt = await wait(DETECT_TIMEOUT_MS, `node ${victim}'s PARTITION row on the page`, seen);
      } catch (error) {
        if (signal.aborted) throw abortError(signal);
        progress(`${label}: ${describe(error)}`);
        return [errorRow(group, error)];
      }
      const natsAt = await Promise.race([onNats, sleep(2_000, signal).then(() => Number.NaN)]);
      const pageMs = pageAt - killedAt;
      const natsMs = natsAt - killedAt;
      progress(
        `${label}: node ${victim}'s PARTITION on the page ${Math.round(pageMs)} ms after SIGKILL (first on NATS at ${Math.round(natsMs)} ms)`,
      );
      return [
        {
          name: `${group}/page`,
          group,
          value: pageMs,
          unit: "ms",
          of: `SIGKILL of node ${victim} → its PARTITION row added to the Cluster page (Date.now() in both)`,
          target: { op: "<=", value: DETECT_TARGET_MS },
        },
        {
          name: `${group}/nats`,
          group,
          value: natsMs,
          unit: "ms",
          of: "SIGKILL → the first PARTITION naming it received by the bench on NATS",
        },
      ];
    };

    // ---- detection, on a quiet cluster ----
    rows.push(...(await detect(firstVictim, "first")));

    // ---- the soak ----
    load("before the soak");
    const soak = await runSoak({
      options,
      client,
      events,
      probe,
      metrics,
      nodes: churned,
      wait,
      progress,
    });
    rows.push(...soak.rows);
    notes.push(...soak.notes);
    meta.samples = soak.samples;
    meta.churn = soak.churn;
    const consoleRss = consoleProcessRss(cluster.child.pid);
    if (consoleRss !== undefined) meta.consoleRssMiB = consoleRss;

    // ---- detection again, after the soak: the list full, the page minutes old ----
    rows.push(...(await detect(lastVictim, "after-soak")));
    rows.push({
      name: "page/errors",
      group: "page",
      value: pageErrors,
      unit: "",
      of: "uncaught errors in the page during the run",
      target: { op: "<=", value: 0 },
    });
    load("at the end");
  } finally {
    for (const failure of await scope.close()) progress(`cleanup: ${failure.message}`);
    process.off("exit", onExit);
  }
  meta.notes = notes;
  const judged = rows.map(judgeResultRow);
  return { rows: judged, notes, meta, errors: judged.filter((r) => r.error).length };
}

async function coordinatorOnPage(page: Page): Promise<number | undefined> {
  const locator = page.locator("#coordinator", { hasText: /node \d+/ });
  try {
    await locator.waitFor({ timeout: 10_000 });
  } catch {
    return undefined;
  }
  const text = (await locator.textContent()) ?? "";
  const m = /node (\d+)/.exec(text);
  return m ? Number(m[1]) : undefined;
}

export function renderConsoleSoakTable(report: ConsoleSoakReport): string {
  return renderResultTable(report.rows, report.notes);
}

// ---- command line ----

function usage(): string {
  return `Usage: npm run console-soak -- [options]    (or: node dist/bench/consoleSoak.js [options])

Issue 23's last line: with N nodes, the console's Cluster page shows a
SIGKILLed node's PARTITION within 1 s, and the page's own CPU and memory stay
flat over minutes of events. Prints a table; results also go to
results/console-soak.json and console-soak.md, and a line of
results/history.jsonl.

It starts \`dvsd up --nodes N\` (its own nats-server, free ports, a temporary
data dir, its console as a viewer) and headless chromium (playwright-core) on
the console's Cluster page, then:

  detection  SIGKILLs one node (not the coordinator) and times, from the
             signal (the bench's Date.now()) to the moment its PARTITION row is
             added to the page (Date.now() in the page, by a MutationObserver);
             judged ≤ ${DETECT_TARGET_MS} ms. The first PARTITION naming it on NATS is
             timed too, to tell the cluster's part from the console's.
  soak       for --minutes, a live node (not the coordinator) leaves the DVS
             (DVSEND) and comes back (DVSINIT), signed with <data>/admin.nk,
             one cycle every --every seconds, so every node publishes
             DISCONNECT and JOIN events. Every --sample-seconds, through the
             DevTools protocol: JS heap used after a forced GC, DOM nodes, and
             main-thread task time per wall second (page CPU); and the CPU
             time of chromium's renderer processes from /proc. Judged ≤ ${FLAT_TARGET}
             ("flat"): heap and DOM nodes at the end over the first sample,
             CPU in the last interval over the first, and over the first
             interval that began with the event list full (the page keeps
             500 rows: before that, growth is the list filling up). Events
             published on NATS and event rows added to the page are counted
             (≥ 0.99 shown).
  detection  once more after the soak, on another node: the page now minutes
             old, its event list full.

Everything it started (dvsd up and its nodes, nats-server and console; chromium)
is stopped at the end, on Ctrl-C, and on an error. Exit status 0 (a MISS is
reported, not fatal), 1 when a row could not be measured, 2 for a usage error
or no chromium, 130 when interrupted.

Options:
  --nodes <n>             nodes of the cluster (default ${DEFAULTS.nodes}; at least 4)
  --minutes <m>           length of the soak (default ${DEFAULTS.minutes})
  --sample-seconds <s>    seconds between samples of the page (default ${DEFAULTS.sampleSeconds})
  --every <s>             seconds per DVSEND + DVSINIT cycle (default ${DEFAULTS.everySeconds})
  --ready-timeout <s>     longest wait for dvsd up's cluster and console (default ${DEFAULTS.readySeconds})
  --out <dir>             write the results files there instead of results/
  -h, --help              show this help

Environment:
  DVS_CHROMIUM            the chromium binary (default /usr/bin/chromium;
                          Debian: apt-get install -y chromium)
`;
}

class UsageError extends BenchError {
  override name = "UsageError";
}

function positiveNumber(flag: string, text: string | undefined, fallback: number, integer = true): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n)))
    throw new UsageError(
      `${flag} wants a positive ${integer ? "integer" : "number"}, not ${JSON.stringify(text)}`,
    );
  return n;
}

async function main(argv: readonly string[]): Promise<number> {
  let parsed: Omit<ConsoleSoakOptions, "signal" | "progress" | "chromium"> & { out?: string };
  try {
    const { values } = parseArgs({
      args: [...argv],
      options: {
        nodes: { type: "string" },
        minutes: { type: "string" },
        "sample-seconds": { type: "string" },
        every: { type: "string" },
        "ready-timeout": { type: "string" },
        out: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    });
    if (values.help) {
      process.stdout.write(usage());
      return 0;
    }
    const nodes = positiveNumber("--nodes", values.nodes, DEFAULTS.nodes);
    // Two killed, the coordinator spared, and at least one left to churn besides.
    if (nodes < 4) throw new UsageError("--nodes wants at least 4");
    parsed = {
      nodes,
      minutes: positiveNumber("--minutes", values.minutes, DEFAULTS.minutes, false),
      sampleSeconds: positiveNumber("--sample-seconds", values["sample-seconds"], DEFAULTS.sampleSeconds),
      everySeconds: positiveNumber("--every", values.every, DEFAULTS.everySeconds, false),
      readySeconds: positiveNumber("--ready-timeout", values["ready-timeout"], DEFAULTS.readySeconds),
      ...(values.out !== undefined ? { out: values.out } : {}),
    };
    if (parsed.sampleSeconds > parsed.minutes * 60) {
      throw new UsageError("--sample-seconds is longer than the soak: no sample would be taken");
    }
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n\n${usage()}`);
    return 2;
  }
  const interrupt = abortOnSignals("console-soak");
  try {
    const started = performance.now();
    const { out, ...options } = parsed;
    const report = await runConsoleSoak({
      ...options,
      chromium: chromiumPath(),
      signal: interrupt.signal,
      progress: (m) => process.stderr.write(`[console-soak] ${m}\n`),
    });
    const written = writeResults(
      {
        name: "console-soak",
        rows: report.rows,
        meta: { ...report.meta, durationMs: Math.round(performance.now() - started) },
      },
      out === undefined ? {} : { dir: out },
    );
    process.stdout.write(`${renderConsoleSoakTable(report)}\n`);
    process.stderr.write(
      `[console-soak] results written to ${written.json}, ${written.markdown} and ${written.history}\n`,
    );
    return report.errors > 0 ? 1 : 0;
  } catch (error) {
    if (error instanceof ChromiumMissingError) {
      process.stderr.write(`[console-soak] ${error.message}\n`);
      return 2;
    }
    if (error instanceof BenchAbortedError || interrupt.signal.aborted) {
      process.stderr.write(`[console-soak] ${describe(error)}\n`);
      return 130;
    }
    process.stderr.write(`[console-soak] ${describe(error)}\n`);
    return 1;
  } finally {
    interrupt.dispose();
  }
}

await runIfMain(import.meta.url, main);
