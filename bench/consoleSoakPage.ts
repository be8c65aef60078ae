// The browser side of `npm run console-soak`: a probe installed in the
// Cluster page that watches its event table (a MutationObserver, no polling),
// and the page's own figures read through the DevTools protocol (JS heap after
// a forced GC, DOM nodes, main-thread task time).
//
// The functions handed to `page.evaluate` run in the page: they are compiled
// here, without the DOM's types (tsconfig has none), so they name the little
// they use through ProbeGlobal. They are passed as functions, never as
// strings: the console's Content-Security-Policy forbids evaluated strings.
import type { CDPSession, Page } from "playwright-core";

/** What the probe keeps in the page: two numbers and one watched node, nothing that grows. */
interface ProbeState {
  /** Event rows added to the table since the probe was installed. */
  rows: number;
  /** The node whose first PARTITION row is awaited, or null. */
  watching: number | null;
}

interface ProbeNode {
  readonly nodeType: number;
  readonly classList?: { contains(name: string): boolean };
  readonly children?: ArrayLike<{ readonly textContent: string | null }>;
}

interface ProbeGlobal {
  readonly document: {
    querySelector(selector: string): unknown;
    querySelectorAll(selector: string): { readonly length: number };
  };
  readonly MutationObserver: new (
    callback: (records: ArrayLike<{ readonly addedNodes: ArrayLike<ProbeNode> }>) => void,
  ) => { observe(target: unknown, options: { childList: boolean; subtree: boolean }): void };
  __dvsSoak?: ProbeState;
  /** The binding the bench exposes: called with the node and the page's Date.now() when its PARTITION row appears. */
  __dvsSoakSeen?: (node: number, at: number) => void;
}

/** The binding's name in the page. */
const BINDING = "__dvsSoakSeen";

/**
 * Installs the probe on the Cluster page (already showing its tables) and
 * returns the way to watch for one node's PARTITION row: the promise resolves
 * with the page's `Date.now()` at the moment the row was added.
 */
export async function installProbe(page: Page): Promise<Probe> {
  let waiter: { node: number; resolve: (at: number) => void } | undefined;
  await page.exposeBinding(BINDING, (_source, node: number, at: number) => {
    if (waiter?.node === node) {
      waiter.resolve(at);
      waiter = undefined;
    }
  });
  const installed = await page.evaluate(() => {
    const g = globalThis as unknown as ProbeGlobal;
    const table = g.document.querySelector("#events");
    if (!table) return false;
    const state: ProbeState = { rows: 0, watching: null };
    g.__dvsSoak = state;
    new g.MutationObserver((records) => {
      // The moment the rows were added: observers run in the same task, before the next paint.
      const now = Date.now();
      for (let r = 0; r < records.length; r++) {
        const added = records[r]?.addedNodes;
        if (!added) continue;
        for (let i = 0; i < added.length; i++) {
          const row = added[i];
          if (row?.nodeType !== 1 || !row.classList?.contains("event")) continue;
          state.rows++;
          const watching = state.watching;
          if (watching === null || !row.classList.contains("event-PARTITION")) continue;
          // The "changed" cell: "<node>/<incarnation>, …".
          const changed = row.children?.[3]?.textContent ?? "";
          if (changed.split(", ").some((m) => m.startsWith(`${watching}/`))) {
            state.watching = null;
            g.__dvsSoakSeen?.(watching, now);
          }
        }
      }
    }).observe(table, { childList: true, subtree: true });
    return true;
  });
  if (!installed)
    throw new Error("the Cluster page has no #events table: is this the console's Cluster page?");
  return {
    watch(node) {
      const seen = new Promise<number>((resolve) => {
        waiter = { node, resolve };
      });
      const armed = page.evaluate((n) => {
        const s = (globalThis as unknown as ProbeGlobal).__dvsSoak;
        if (s) s.watching = n;
      }, node);
      return { armed, seen };
    },
    rowsSeen: () => page.evaluate(() => (globalThis as unknown as ProbeGlobal).__dvsSoak?.rows ?? Number.NaN),
    rowsOnPage: () =>
      page.evaluate(
        () => (globalThis as unknown as ProbeGlobal).document.querySelectorAll("#events tbody tr").length,
      ),
  };
}

export interface Probe {
  /** Arms the probe for `node`'s first PARTITION row from now on; `seen` resolves with the page's time of it. */
  watch(node: number): { armed: Promise<void>; seen: Promise<number> };
  /** Event rows added since the probe was installed. */
  rowsSeen(): Promise<number>;
  /** Event rows in the table now (the page keeps the last 500). */
  rowsOnPage(): Promise<number>;
}

/** One reading of the page's figures. */
export interface PageSample {
  /** `performance.now()` in the bench when read. */
  readonly at: number;
  /** Main-thread task time since the page's start, in ms (CDP TaskDuration), read before the GC. */
  readonly taskMs: number;
  /** After HeapProfiler.collectGarbage, in bytes. */
  readonly heapUsed: number;
  readonly heapTotal: number;
  /** DOM nodes (CDP `Nodes`) after the GC. */
  readonly domNodes: number;
  readonly listeners: number;
}

export class PageMetrics {
  private constructor(readonly cdp: CDPSession) {}

  static async open(page: Page): Promise<PageMetrics> {
    const cdp = await page.context().newCDPSession(page);
    await cdp.send("Performance.enable");
    return new PageMetrics(cdp);
  }

  async sample(): Promise<PageSample> {
    const at = performance.now();
    const before = await this.#metrics();
    // A fair heap reading: garbage not yet collected is not a leak.
    await this.cdp.send("HeapProfiler.collectGarbage");
    const after = await this.#metrics();
    return {
      at,
      taskMs: (before.get("TaskDuration") ?? Number.NaN) * 1000,
      heapUsed: after.get("JSHeapUsedSize") ?? Number.NaN,
      heapTotal: after.get("JSHeapTotalSize") ?? Number.NaN,
      domNodes: after.get("Nodes") ?? Number.NaN,
      listeners: after.get("JSEventListeners") ?? Number.NaN,
    };
  }

  async close(): Promise<void> {
    await this.cdp.detach().catch(() => {});
  }

  async #metrics(): Promise<Map<string, number>> {
    const { metrics } = await this.cdp.send("Performance.getMetrics");
    return new Map(metrics.map((m) => [m.name, m.value]));
  }
}
