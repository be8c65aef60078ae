// How dvsctl shows replies: a reply to one node is one entry, an aggregated
// reply to ALL is one entry per member of the answering node's view. Each
// request type has a view that turns an entry's `data` into table columns;
// `--json` bypasses all of this and prints the RPLY as it came.

import { formatTable } from "../../client/table.js";
import { errorName, NODE_FLAGS, type Rply } from "../../client/wire.js";

/** Turns one successful entry's `data` into rows of cells (usually one row). */
export interface ReplyView {
  readonly headers: readonly string[];
  readonly rows: (data: unknown) => unknown[][];
}

type Row = Record<string, unknown>;
const asRow = (data: unknown): Row =>
  typeof data === "object" && data !== null && !Array.isArray(data) ? (data as Row) : {};

/** One row of the named fields of an object. */
export function fieldsView(...fields: string[]): ReplyView {
  return { headers: fields, rows: (data) => [fields.map((f) => asRow(data)[f])] };
}

/** One row per element of an array, each shown through `view`. */
export function listView(view: ReplyView): ReplyView {
  return {
    headers: view.headers,
    rows: (data) => (Array.isArray(data) ? data.flatMap((d) => view.rows(d)) : view.rows(data)),
  };
}

/** Columns computed from the data, for shapes that need more than a field each. */
export function computedView(columns: Record<string, (row: Row) => unknown>): ReplyView {
  const headers = Object.keys(columns);
  return { headers, rows: (data) => [Object.values(columns).map((cell) => cell(asRow(data)))] };
}

/** No columns beyond node and rcode (DVSEND, DCEND). */
export const EMPTY_VIEW: ReplyView = { headers: [], rows: () => [[]] };

/** The data as (shortened) JSON: for types without a view of their own. */
export const DATA_VIEW: ReplyView = { headers: ["data"], rows: (data) => [[shortJson(data, 100)]] };

export const DVS_VIEW = fieldsView(
  "name",
  "nr_dcs",
  "nr_nodes",
  "nr_procs",
  "nr_tasks",
  "nr_sysprocs",
  "max_copybuf",
  "max_copylen",
  "dbglvl",
  "version",
);

export const DC_VIEW = fieldsView(
  "dcid",
  "name",
  "nodes",
  "nr_nodes",
  "nr_procs",
  "nr_tasks",
  "nr_sysprocs",
  "flags",
  "warn2proc",
  "warnmsg",
);

export const NODE_VIEW = computedView({
  nodeid: (r) => r.nodeid,
  name: (r) => r.name,
  incarnation: (r) => r.incarnation,
  state: (r) => r.state,
  flags: (r) => nodeFlags(r.flags),
  view: (r) => r.view,
  dcs: (r) => r.dcs,
  proxies: (r) => r.proxies,
  "msgs sent": (r) => r.msgs_sent,
  "msgs received": (r) => r.msgs_received,
});

/** `node_usr` flags as a number and the names of its bits. */
function nodeFlags(flags: unknown): string | undefined {
  if (typeof flags !== "number") return undefined;
  const names = Object.entries(NODE_FLAGS)
    .filter(([, bit]) => (flags & bit) !== 0)
    .map(([name]) => name);
  return names.length ? `${flags} (${names.join(",")})` : String(flags);
}

/** An ALL request is answered with one RPLY whose data holds one RPLY per node; a unicast with one. */
export function entriesOf(rply: Rply, all: boolean): Rply[] {
  if (all && Array.isArray(rply.data) && rply.data.every(isRply)) return rply.data as Rply[];
  return [rply];
}

function isRply(value: unknown): boolean {
  return typeof value === "object" && value !== null && "rcode" in value && "src" in value;
}

/** `ENOENT (-2)` for an error, the number itself for 0 and positive results. */
export function rcodeLabel(code: number): string {
  return code < 0 ? `${errorName(code) ?? "EUNKNOWN"} (${code})` : String(code);
}

/** The readable reason an error reply carries in `data.message`. */
export function errorMessage(rply: Rply): string | undefined {
  const message = asRow(rply.data).message;
  return typeof message === "string" ? message : undefined;
}

/** One table: a row per entry (or more, as the view says); a failed entry leaves the data columns empty and says why. */
export function formatEntries(entries: readonly Rply[], view: ReplyView): string {
  const failed = entries.some((e) => e.rcode < 0);
  const headers = ["node", "rcode", ...view.headers, ...(failed ? ["error"] : [])];
  const blank = view.headers.map(() => "");
  const rows = entries.flatMap((e): unknown[][] => {
    const lead = [e.src, rcodeLabel(e.rcode)];
    if (e.rcode < 0) return [[...lead, ...blank, errorMessage(e) ?? shortJson(e.data, 100)]];
    const rows = e.data === null || e.data === undefined ? [] : view.rows(e.data);
    if (rows.length === 0) return [[...lead, ...blank]];
    return rows.map((r) => [...lead, ...r.map(cell)]);
  });
  return formatTable(headers, rows);
}

/** A table cell: arrays joined by commas, objects as short JSON, nothing as `-`. */
export function cell(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (Array.isArray(value)) return value.length ? value.map((v) => cell(v) ?? "-").join(",") : "-";
  if (typeof value === "object") return shortJson(value, 60);
  return String(value);
}

export function shortJson(value: unknown, max: number): string {
  const text = JSON.stringify(value) ?? "-";
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
