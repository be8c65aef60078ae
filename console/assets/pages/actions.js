// Actions: the action log, filtered by type, node and time; new actions
// appear as the nodes write them; one action opens its request, each node's
// reply and the outcome. The log is the admin user's: a viewer console says so.
import { dateTime, el, errorLine, getJson, listen, sortableTable } from "../lib.js";

const MAX_ROWS = 500;
const COLUMNS = ["at", "action", "via", "role", "src", "type", "dst", "result", "ok", "failed", "ms"];

function rowOf(a) {
  const r = a.request;
  const o = a.outcome;
  return [
    dateTime(r.at),
    r.action,
    r.node,
    r.role,
    r.src,
    r.type,
    r.dst,
    o ? (o.error ?? o.rcode) : (r.refused ?? "…"),
    o?.ok ?? "",
    o?.failed ?? "",
    o ? Math.round(o.durationMs) : "",
  ];
}

function detail(records) {
  const request = records.find((r) => r.kind === "request");
  const replies = records.filter((r) => r.kind === "reply");
  const outcome = records.find((r) => r.kind === "outcome");
  const params =
    request?.params !== undefined
      ? JSON.stringify(request.params, null, 1)
      : request?.refused
        ? `left out: refused ${request.refused} (${request.paramsBytes ?? "?"} bytes)`
        : "left out (too large)";
  return el(
    "div",
    { id: "action-detail" },
    el("h2", {}, `Action ${request?.action ?? ""}`),
    request
      ? el(
          "p",
          {},
          `${request.type} from ${request.src} (${request.role}) to ${request.dst}, via node ${request.node} at ${dateTime(request.at)}`,
        )
      : el("p", { class: "muted" }, "no request record"),
    el("pre", {}, params),
    el("h2", {}, "Replies"),
    sortableTable(
      ["node", "via", "rcode", "count", "summary"].map((k) => ({ key: k, label: k })),
      replies.map((r) => [r.node, r.via, r.error ?? r.rcode, r.count, r.summary]),
      { className: "data" },
    ).element,
    el("h2", {}, "Outcome"),
    outcome
      ? el(
          "p",
          {},
          `${outcome.error ?? outcome.rcode}: ${outcome.ok} ok, ${outcome.failed} failed, ${Math.round(outcome.durationMs)} ms`,
        )
      : el(
          "p",
          { class: "muted" },
          "no outcome (the node stopped before the action ended, or it is still running)",
        ),
  );
}

export function mount(root, session) {
  if (session.disabled.actions) {
    root.append(
      el(
        "section",
        {},
        el("h2", {}, "Actions"),
        el("p", { class: "note", id: "actions-disabled" }, session.disabled.actions),
      ),
    );
    return;
  }
  const types = Object.values(session.requests.groups).flat();
  const type = el(
    "select",
    { name: "type" },
    el("option", { value: "" }, "any"),
    types.map((t) => el("option", { value: t }, t)),
  );
  const node = el("input", { name: "node", type: "number", min: 0, max: 65535, placeholder: "any" });
  const since = el("input", { name: "since", type: "datetime-local" });
  const until = el("input", { name: "until", type: "datetime-local" });
  const limit = el("input", { name: "limit", type: "number", min: 1, max: 500, value: 100 });
  const status = el("div");
  const side = el("section", {}, el("p", { class: "muted" }, "Pick an action to see its records."));
  let actions = [];
  const table = sortableTable(
    COLUMNS.map((k) => ({ key: k, label: k })),
    [],
    {
      rowAttrs: (i) => ({ class: "clickable", onclick: () => open(actions[i].request.action) }),
    },
  );
  const render = () => table.setRows(actions.map(rowOf));

  const open = async (id) => {
    side.replaceChildren(el("p", { class: "muted" }, "…"));
    try {
      side.replaceChildren(detail((await getJson(`/api/actions/${encodeURIComponent(id)}`)).records));
    } catch (error) {
      side.replaceChildren(errorLine(error));
    }
  };
  const query = () => {
    const q = new URLSearchParams();
    if (type.value) q.set("type", type.value);
    if (node.value) q.set("node", node.value);
    if (since.value) q.set("since", String(new Date(since.value).getTime()));
    if (until.value) q.set("until", String(new Date(until.value).getTime()));
    if (limit.value) q.set("limit", limit.value);
    return q;
  };
  const matches = (r) =>
    (!type.value || r.type === type.value) &&
    (!node.value || r.dst === "ALL" || r.dst === Number(node.value)) &&
    (!since.value || r.at >= new Date(since.value).getTime()) &&
    (!until.value || r.at <= new Date(until.value).getTime());
  const load = async () => {
    status.replaceChildren(el("span", { class: "muted" }, "reading the log…"));
    try {
      const answer = await getJson(`/api/actions?${query()}`);
      actions = answer.actions;
      render();
      status.replaceChildren(
        el(
          "span",
          { class: "muted" },
          `${actions.length} actions${answer.skipped ? `, ${answer.skipped} records skipped (failed validation)` : ""}`,
        ),
      );
    } catch (error) {
      status.replaceChildren(errorLine(error));
    }
  };

  root.append(
    el(
      "section",
      {},
      el("h2", {}, "Actions"),
      el(
        "form",
        {
          class: "controls",
          onsubmit: (e) => {
            e.preventDefault();
            load();
          },
        },
        el("label", {}, "type", type),
        el("label", {}, "node", node),
        el("label", {}, "since", since),
        el("label", {}, "until", until),
        el("label", {}, "limit", limit),
        el("button", { type: "submit" }, "Filter"),
      ),
      status,
    ),
    el("div", { class: "split" }, el("section", {}, table.element), side),
  );
  load();
  return listen("/api/actions/stream", {
    record: (r) => {
      if (r.kind === "request" && matches(r) && !actions.some((a) => a.request.action === r.action)) {
        actions.unshift({ request: r });
        actions.length = Math.min(actions.length, MAX_ROWS);
        render();
      } else if (r.kind === "outcome") {
        const a = actions.find((x) => x.request.action === r.action);
        if (a) {
          a.outcome = r;
          render();
        }
      }
    },
  });
}
