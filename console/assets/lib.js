// What every page shares: building elements (text only, never HTML from
// data), calling the console's API, reading NDJSON and server-sent events,
// sortable tables, and bounded lists so a page left open stays the same size.

/** An element with attributes and children; strings become text nodes. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

/** The headers every call that acts carries (the console refuses one without). */
const ACTS = { "x-dvs-console": "1" };

/** An API error with the console's code (`EPERM`, `EINVAL`, …) and message. */
export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message ?? `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.code = body?.error ?? "EUNKNOWN";
    this.issues = body?.issues ?? [];
  }
}

export async function getJson(path) {
  const res = await fetch(path, { headers: { accept: "application/json" } });
  const body = await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, body);
  return body;
}

/** POSTs JSON and calls `onLine` with each NDJSON line of the answer as it arrives. */
export async function postNdjson(path, body, onLine) {
  const res = await fetch(path, {
    method: "POST",
    headers: { ...ACTS, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new ApiError(res.status, await res.json().catch(() => null));
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += decoder.decode(value, { stream: true });
    let nl = buffered.indexOf("\n");
    while (nl >= 0) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (line) onLine(JSON.parse(line));
      nl = buffered.indexOf("\n");
    }
  }
}

/** Uploads with progress (XMLHttpRequest: fetch has no upload progress); NDJSON lines of the answer go to `onLine`. */
export function upload(path, file, { onSent, onLine }) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    let seen = 0;
    const drain = () => {
      const text = xhr.responseText;
      let nl = text.indexOf("\n", seen);
      while (nl >= 0) {
        const line = text.slice(seen, nl).trim();
        seen = nl + 1;
        if (line && xhr.status === 200) onLine(JSON.parse(line));
        nl = text.indexOf("\n", seen);
      }
    };
    xhr.open("POST", path);
    xhr.setRequestHeader("x-dvs-console", "1");
    xhr.setRequestHeader("content-type", "application/octet-stream");
    xhr.upload.onprogress = (e) => onSent(e.loaded, e.total);
    xhr.onprogress = drain;
    xhr.onload = () => {
      if (xhr.status !== 200) {
        let body = null;
        try {
          body = JSON.parse(xhr.responseText);
        } catch {}
        reject(new ApiError(xhr.status, body));
        return;
      }
      drain();
      resolve();
    };
    xhr.onerror = () => reject(new Error("the upload failed (connection closed)"));
    xhr.send(file);
  });
}

/** Listens to a server-sent events stream; returns the function that closes it. */
export function listen(path, handlers) {
  const source = new EventSource(path);
  for (const [event, fn] of Object.entries(handlers)) {
    if (event === "error" || event === "open") source.addEventListener(event, fn);
    else source.addEventListener(event, (e) => fn(JSON.parse(e.data)));
  }
  return () => source.close();
}

export const time = (ms) => (ms ? new Date(ms).toLocaleTimeString() : "");
export const dateTime = (ms) => (ms ? new Date(ms).toISOString().replace("T", " ").slice(0, 23) : "");

export function bytes(n) {
  if (typeof n !== "number") return n ?? "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

/** A short form of any value for a cell. */
export function cell(v) {
  if (v === null || v === undefined) return "";
  if (Array.isArray(v)) return v.every((x) => typeof x !== "object") ? v.join(", ") : JSON.stringify(v);
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

/** Reply data as a table: a list of objects by their keys, one object as key/value, anything else as text. */
export function dataTable(data, maxRows = 100) {
  if (data === null || data === undefined) return el("span", { class: "muted" }, "—");
  if (
    Array.isArray(data) &&
    data.length > 0 &&
    data.every((d) => d && typeof d === "object" && !Array.isArray(d))
  ) {
    const keys = [...new Set(data.slice(0, maxRows).flatMap((d) => Object.keys(d)))];
    const rows = data.slice(0, maxRows).map((d) => keys.map((k) => cell(d[k])));
    const table = sortableTable(
      keys.map((k) => ({ key: k, label: k })),
      rows,
      { className: "data" },
    );
    if (data.length <= maxRows) return table.element;
    return el("div", {}, table.element, el("p", { class: "muted" }, `… ${data.length - maxRows} more`));
  }
  if (typeof data === "object" && !Array.isArray(data)) {
    return el(
      "table",
      { class: "data" },
      el(
        "tbody",
        {},
        Object.entries(data).map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, cell(v)))),
      ),
    );
  }
  return el("span", {}, cell(data));
}

const numeric = (v) => v !== "" && v !== null && !Number.isNaN(Number(v));

/**
 * A table whose headers sort it (numbers as numbers), keeping its sort when
 * its rows are replaced. `columns`: [{ key, label, num?, format? }] (`format`
 * shows a cell, the raw value sorts it); rows: arrays of cells.
 */
export function sortableTable(columns, rows = [], { className = "", rowAttrs } = {}) {
  let sort = { index: -1, dir: 1 };
  let current = rows;
  const tbody = el("tbody");
  const heads = columns.map((c, i) =>
    el(
      "th",
      {
        class: "sortable",
        onclick: () => {
          sort = { index: i, dir: sort.index === i ? -sort.dir : 1 };
          render();
        },
      },
      c.label,
    ),
  );
  const render = () => {
    heads.forEach((h, i) => {
      h.classList.toggle("sorted-asc", sort.index === i && sort.dir === 1);
      h.classList.toggle("sorted-desc", sort.index === i && sort.dir === -1);
    });
    const ordered = [...current.keys()];
    if (sort.index >= 0) {
      ordered.sort((a, b) => {
        const x = current[a][sort.index];
        const y = current[b][sort.index];
        const d = numeric(x) && numeric(y) ? Number(x) - Number(y) : String(x).localeCompare(String(y));
        return d * sort.dir;
      });
    }
    tbody.replaceChildren(
      ...ordered.map((r) =>
        el(
          "tr",
          rowAttrs ? rowAttrs(r) : {},
          current[r].map((v, i) =>
            el(
              "td",
              { class: columns[i].num || typeof v === "number" ? "num" : "" },
              columns[i].format ? columns[i].format(v) : cell(v),
            ),
          ),
        ),
      ),
    );
  };
  const element = el("table", { class: className }, el("thead", {}, el("tr", {}, heads)), tbody);
  render();
  return {
    element,
    setRows(next) {
      current = next;
      render();
    },
  };
}

/** Shows an error where it happened. */
export function errorLine(error) {
  const issues = (error.issues ?? []).map((i) => `${i.path}: ${i.message}`).join("; ");
  return el(
    "p",
    { class: "error" },
    `${error.code ? `${error.code}: ` : ""}${error.message}${issues ? ` (${issues})` : ""}`,
  );
}
