// Request: pick a type (its form is built from the JSON Schema of the params
// the nodes validate with), one node, ALL (one request, gathered by a node)
// or EACH (one request per node), send, and watch one row per node fill in.
// A viewer console shows the mutating types disabled, with the reason.
import { dataTable, el, errorLine, getJson, listen, postNdjson } from "../lib.js";

/** One form field for one property of the params' JSON Schema. */
function field(name, prop, required) {
  const label = `${name}${required ? " *" : ""}`;
  const attrs = { name, "data-param": name, required: required || undefined };
  if (prop.enum) {
    return {
      element: el(
        "label",
        {},
        label,
        el(
          "select",
          attrs,
          el("option", { value: "" }, ""),
          prop.enum.map((v) => el("option", { value: v }, v)),
        ),
      ),
      read: (form) => form.elements[name].value || undefined,
    };
  }
  if (prop.type === "integer" || prop.type === "number") {
    const input = el("input", {
      ...attrs,
      type: "number",
      min: prop.minimum,
      max: prop.maximum,
      step: prop.type === "integer" ? 1 : "any",
    });
    return {
      element: el("label", {}, label, input),
      read: () => (input.value === "" ? undefined : Number(input.value)),
    };
  }
  if (prop.type === "boolean") {
    const input = el("input", { ...attrs, type: "checkbox" });
    return { element: el("label", {}, label, input), read: () => input.checked };
  }
  if (prop.type === "string") {
    const input = el("input", { ...attrs, type: "text", maxlength: prop.maxLength });
    return {
      element: el("label", {}, label, input),
      read: () => (input.value === "" ? undefined : input.value),
    };
  }
  if (prop.type === "array" && prop.items && ["integer", "string", "number"].includes(prop.items.type)) {
    const input = el("input", { ...attrs, type: "text", placeholder: "comma-separated" });
    const read = () => {
      if (input.value.trim() === "") return undefined;
      const parts = input.value.split(",").map((s) => s.trim());
      return prop.items.type === "string" ? parts : parts.map(Number);
    };
    return { element: el("label", {}, `${label} (list)`, input), read };
  }
  // Objects and free values (SPAWN's input, SEND's body): JSON.
  const area = el("textarea", { ...attrs, rows: 2, cols: 30, placeholder: "JSON" });
  const read = () => {
    if (area.value.trim() === "") return undefined;
    try {
      return JSON.parse(area.value);
    } catch {
      throw new Error(`${name}: not JSON`);
    }
  };
  return { element: el("label", {}, `${label} (JSON)`, area), read };
}

export function mount(root, session) {
  const { groups, mutating, unicastOnly, mutatingDisabled } = session.requests;
  const typeSelect = el(
    "select",
    { id: "type" },
    Object.entries(groups).map(([group, types]) =>
      el(
        "optgroup",
        { label: group },
        types.map((t) => {
          const off = mutating.includes(t) && mutatingDisabled !== null;
          return el(
            "option",
            { value: t, disabled: off, title: off ? mutatingDisabled : undefined },
            off ? `${t} (admin)` : t,
          );
        }),
      ),
    ),
  );
  typeSelect.value = "GETDVSINFO";
  const dstSelect = el("select", { id: "dst" });
  const timeout = el("input", { id: "timeout", type: "number", min: 100, max: 120000, value: 5000 });
  const params = el("form", { class: "params", id: "params", onsubmit: (e) => e.preventDefault() });
  const send = el("button", { id: "send", type: "button" }, "Send");
  const status = el("div", { id: "request-status" });
  const results = el("tbody");
  const reason = mutatingDisabled
    ? el(
        "p",
        { class: "note", id: "mutating-reason" },
        `Types that change nodes are disabled: ${mutatingDisabled}`,
      )
    : null;
  let fields = [];

  root.append(
    el(
      "section",
      {},
      el("h2", {}, "Request"),
      reason,
      el(
        "div",
        { class: "controls" },
        el("label", {}, "type", typeSelect),
        el("label", {}, "to", dstSelect),
        el("label", {}, "timeout (ms)", timeout),
        send,
      ),
      el("h2", {}, "Params"),
      params,
    ),
    el(
      "section",
      {},
      el("h2", {}, "Replies"),
      status,
      el(
        "table",
        { id: "results" },
        el(
          "thead",
          {},
          el(
            "tr",
            {},
            ["node", "rcode", "count", "data"].map((h) => el("th", {}, h)),
          ),
        ),
        results,
      ),
    ),
  );

  const setNodes = (nodes) => {
    const keep = dstSelect.value;
    const type = typeSelect.value;
    const one = unicastOnly.includes(type);
    dstSelect.replaceChildren(
      el("option", { value: "ALL", disabled: one }, "ALL (one request, gathered)"),
      el("option", { value: "EACH", disabled: one }, "EACH node (one request each)"),
      ...nodes.map((n) => el("option", { value: String(n) }, `node ${n}`)),
    );
    const options = [...dstSelect.options].filter((o) => !o.disabled).map((o) => o.value);
    dstSelect.value = options.includes(keep) ? keep : (options[0] ?? "");
  };
  let nodeIds = [];
  const stop = listen("/api/cluster/stream", {
    snapshot: ({ picture }) => {
      nodeIds = picture.nodes.map((n) => n.node);
      setNodes(nodeIds);
    },
    picture: (p) => {
      const next = p.nodes.map((n) => n.node);
      if (next.join() === nodeIds.join()) return;
      nodeIds = next;
      setNodes(nodeIds);
    },
  });

  const loadForm = async () => {
    const type = typeSelect.value;
    setNodes(nodeIds);
    params.replaceChildren(el("span", { class: "muted" }, "…"));
    try {
      const schema = await getJson(`/api/types/${type}/schema`);
      const required = schema.required ?? [];
      fields = Object.entries(schema.properties ?? {}).map(([name, prop]) => ({
        name,
        ...field(name, prop, required.includes(name)),
      }));
      params.replaceChildren(
        ...(fields.length ? fields.map((f) => f.element) : [el("span", { class: "muted" }, "no params")]),
      );
    } catch (error) {
      params.replaceChildren(errorLine(error));
    }
  };
  typeSelect.addEventListener("change", loadForm);

  const rowOf = new Map();
  const pendingRow = (node) => {
    const row = el(
      "tr",
      { class: "pending", dataset: { node } },
      el("td", { class: "num" }, node),
      el("td", { class: "rcode" }, "waiting…"),
      el("td"),
      el("td"),
    );
    rowOf.set(node, row);
    results.append(row);
    return row;
  };
  const fill = (line) => {
    const row = rowOf.get(line.node) ?? pendingRow(line.node);
    row.className = line.rcode === null || line.rcode < 0 ? "failed answered" : "answered";
    const code =
      line.rcode === null
        ? line.rcodeName
        : line.rcodeName
          ? `${line.rcodeName} (${line.rcode})`
          : String(line.rcode);
    row.replaceChildren(
      el("td", { class: "num" }, line.node),
      el("td", { class: "rcode" }, code),
      el("td", { class: "num" }, line.count),
      el("td", {}, dataTable(line.data)),
    );
  };

  send.addEventListener("click", async () => {
    let values;
    try {
      values = Object.fromEntries(
        fields.map((f) => [f.name, f.read(params)]).filter(([, v]) => v !== undefined),
      );
    } catch (error) {
      status.replaceChildren(errorLine(error));
      return;
    }
    const dst =
      dstSelect.value === "ALL" || dstSelect.value === "EACH" ? dstSelect.value : Number(dstSelect.value);
    results.replaceChildren();
    rowOf.clear();
    send.disabled = true;
    status.replaceChildren(el("span", { class: "muted" }, "sending…"));
    try {
      await postNdjson(
        "/api/requests",
        { type: typeSelect.value, dst, params: values, timeoutMs: Number(timeout.value) || 5000 },
        (line) => {
          if (line.kind === "sent") {
            status.replaceChildren(
              el(
                "span",
                { class: "muted" },
                `${line.type} sent to ${line.dst}, waiting for ${line.expect.join(", ") || "?"}`,
              ),
            );
            for (const n of line.expect) pendingRow(n);
          } else if (line.kind === "entry") fill(line);
          else if (line.kind === "done") {
            const actions = line.actions.length ? `; action ${line.actions.join(", ")}` : "";
            status.replaceChildren(
              el(
                "span",
                { id: "request-done" },
                `done in ${line.ms} ms${line.answeredBy !== undefined ? `, answered by node ${line.answeredBy}` : ""}${actions}`,
              ),
            );
          } else if (line.kind === "error")
            status.replaceChildren(errorLine({ code: line.error, message: line.message }));
        },
      );
    } catch (error) {
      status.replaceChildren(errorLine(error));
    } finally {
      send.disabled = false;
    }
  });

  loadForm();
  return stop;
}
