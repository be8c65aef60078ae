// Hosts: PS, VMSTAT or DF of one node or all, as sortable tables; the console
// asks again every few seconds while the page is open and pushes each round.
import { bytes, el, errorLine, listen, sortableTable, time } from "../lib.js";

const n2 = (v) => (typeof v === "number" ? Math.round(v * 100) / 100 : v);

/** Columns in bytes: shown as KiB/MiB/GiB, sorted by the number. */
const SIZES = new Set([
  "rss",
  "size",
  "used",
  "available",
  "mem total",
  "mem used",
  "mem available",
  "swap used",
]);

const VIEWS = {
  PS: {
    columns: ["node", "pid", "ppid", "user", "state", "name", "cpu %", "mem %", "rss", "command"],
    rows: (node, data) =>
      (data ?? []).map((p) => [
        node,
        p.pid,
        p.ppid,
        p.user,
        p.state,
        p.name,
        n2(p.cpu),
        n2(p.mem),
        p.rss,
        p.command,
      ]),
  },
  VMSTAT: {
    columns: [
      "node",
      "mem total",
      "mem used",
      "mem available",
      "swap used",
      "cpu busy %",
      "load 1",
      "load 5",
      "load 15",
      "running",
      "blocked",
      "uptime s",
    ],
    rows: (node, d) => [
      [
        node,
        d?.memory?.total,
        d?.memory?.used,
        d?.memory?.available,
        d?.swap?.used,
        n2(d?.cpu?.busy),
        d?.load?.one,
        d?.load?.five,
        d?.load?.fifteen,
        d?.procs?.running,
        d?.procs?.blocked,
        d?.uptime,
      ],
    ],
  },
  DF: {
    columns: ["node", "filesystem", "type", "mount", "size", "used", "available", "use %", "read-only"],
    rows: (node, data) =>
      (data ?? []).map((f) => [
        node,
        f.filesystem,
        f.type,
        f.mount,
        f.size,
        f.used,
        f.available,
        n2(f.usePercent),
        f.readOnly,
      ]),
  },
};

export function mount(root) {
  const type = el(
    "select",
    { id: "host-type" },
    Object.keys(VIEWS).map((t) => el("option", { value: t }, t)),
  );
  const dst = el("input", { id: "host-dst", type: "text", value: "ALL", size: 5, title: "ALL or a node id" });
  const every = el("input", { type: "number", min: 2, max: 300, value: 5 });
  const start = el("button", { type: "button" }, "Show");
  const status = el("div");
  const errors = el("div");
  const holder = el("div", { id: "host-table" });
  root.append(
    el(
      "section",
      {},
      el("h2", {}, "Hosts"),
      el(
        "div",
        { class: "controls" },
        el("label", {}, "what", type),
        el("label", {}, "node (or ALL)", dst),
        el("label", {}, "every (s)", every),
        start,
      ),
      status,
      errors,
    ),
    el("section", {}, holder),
  );
  let stop = () => {};
  const show = () => {
    stop();
    const view = VIEWS[type.value];
    const table = sortableTable(
      view.columns.map((c) => ({ key: c, label: c, ...(SIZES.has(c) ? { num: true, format: bytes } : {}) })),
    );
    holder.replaceChildren(table.element);
    const q = new URLSearchParams({
      type: type.value,
      dst: dst.value.trim().toUpperCase() === "ALL" ? "ALL" : dst.value.trim(),
      everyMs: String(Math.max(2, Number(every.value) || 5) * 1000),
    });
    status.replaceChildren(el("span", { class: "muted" }, "asking…"));
    stop = listen(`/api/hosts/stream?${q}`, {
      round: (r) => {
        const failed = r.entries.filter((e) => e.rcode < 0);
        table.setRows(r.entries.filter((e) => e.rcode >= 0).flatMap((e) => view.rows(e.node, e.data)));
        status.replaceChildren(
          el("span", { class: "muted" }, `${r.type} at ${time(r.at)}: ${r.entries.length} node(s)`),
        );
        errors.replaceChildren(
          ...failed.map((e) =>
            el("p", { class: "error" }, `node ${e.node}: ${e.rcodeName} ${e.data?.message ?? ""}`),
          ),
        );
      },
      failure: (f) => errors.replaceChildren(errorLine({ code: f.error, message: f.message })),
    });
  };
  start.addEventListener("click", show);
  show();
  return () => stop();
}
