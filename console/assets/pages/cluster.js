// Cluster: every node (incarnation, state, view, members, pid, address), the
// coordinator and its epoch, the components the nodes' views make (a minority
// or partitioned one said so), and the events as they happen, newest first.
import { el, listen, time } from "../lib.js";

/** Events kept on the page: the oldest row goes when a new one comes. */
const MAX_EVENTS = 500;

function nodeRow(n, picture) {
  const majority = picture.components.find((c) => c.majority);
  const inMinority = n.answering && (n.minority || (majority && !majority.holders.includes(n.node)));
  const status = !n.answering
    ? el("span", { class: "badge bad" }, "not answering")
    : inMinority
      ? el("span", { class: "badge minority" }, "minority")
      : el("span", { class: "badge ok" }, "ok");
  return el(
    "tr",
    { class: !n.answering ? "down" : inMinority ? "minority" : "", dataset: { node: n.node } },
    el("td", { class: "num" }, n.node),
    el("td", { class: "num" }, n.incarnation),
    el("td", {}, n.state),
    el("td", { class: "num" }, n.view.id),
    el("td", {}, n.view.members.join(", ")),
    el("td", { class: "num" }, n.pid),
    el("td", {}, n.address ?? "?"),
    el("td", {}, status),
    el("td", {}, n.answering ? "" : `last seen ${time(n.seenAt)}`),
  );
}

function componentLine(c, picture) {
  const known = picture.nodes.length;
  const kind = c.majority ? "majority" : "minority";
  return el(
    "li",
    { class: kind },
    el("span", { class: `badge ${c.majority ? "ok" : "minority"}` }, kind),
    ` view ${c.viewId}: members ${c.members.join(", ")} (${c.members.length} of ${known} known), held by ${c.holders.join(", ")}`,
  );
}

function eventRow(e) {
  const what =
    e.event === "COORDINATOR"
      ? e.coordinator === null
        ? `stepped down from epoch ${e.epoch}`
        : `coordinator ${e.coordinator}, epoch ${e.epoch}`
      : e.changed.map((m) => `${m.node}/${m.incarnation}`).join(", ");
  return el(
    "tr",
    { class: `event event-${e.event}`, dataset: { event: e.event, node: e.node } },
    el("td", {}, time(e.at)),
    el("td", { class: "num" }, e.node),
    el("td", {}, el("span", { class: `badge ${e.event}` }, e.event)),
    el("td", {}, what),
    el("td", { class: "num" }, e.view ? e.view.id : ""),
    el("td", {}, e.view ? e.view.members.join(", ") : ""),
    el("td", {}, e.cause),
  );
}

export function mount(root) {
  const summary = el("div", { class: "summary", id: "summary" });
  const components = el("ul", { id: "components" });
  const nodes = el("tbody");
  const events = el("tbody");
  const connection = el("span", { class: "muted", id: "connection" }, "connecting…");
  root.append(
    el("section", {}, el("h2", {}, "Cluster ", connection), summary, components),
    el(
      "section",
      {},
      el("h2", {}, "Nodes"),
      el(
        "table",
        { id: "nodes" },
        el(
          "thead",
          {},
          el(
            "tr",
            {},
            ["node", "incarnation", "state", "view", "members", "pid", "address", "", ""].map((h) =>
              el("th", {}, h),
            ),
          ),
        ),
        nodes,
      ),
    ),
    el(
      "section",
      {},
      el("h2", {}, `Events (newest first, the last ${MAX_EVENTS})`),
      el(
        "table",
        { id: "events" },
        el(
          "thead",
          {},
          el(
            "tr",
            {},
            ["at", "observer", "event", "changed", "view", "members", "cause"].map((h) => el("th", {}, h)),
          ),
        ),
        events,
      ),
    ),
  );

  const showPicture = (p) => {
    const holder = p.nodes.find((n) => n.node === p.coordinator.node);
    const coordinator =
      p.coordinator.node === null
        ? "none"
        : `node ${p.coordinator.node}${holder && !holder.answering ? " (not answering)" : ""}`;
    connection.replaceChildren(p.nats === "connected" ? "live" : `NATS ${p.nats}: as of ${time(p.at)}`);
    connection.className = p.nats === "connected" ? "muted" : "note";
    summary.replaceChildren(
      el("div", {}, el("span", {}, "cluster"), p.cluster),
      el("div", { id: "coordinator" }, el("span", {}, "coordinator"), coordinator),
      el("div", {}, el("span", {}, "epoch"), p.coordinator.epoch ?? "—"),
      el(
        "div",
        {},
        el("span", {}, "nodes answering"),
        `${p.nodes.filter((n) => n.answering).length} of ${p.nodes.length}`,
      ),
      el("div", {}, el("span", {}, "asked at"), time(p.at)),
    );
    components.replaceChildren(
      ...(p.components.length > 1
        ? [el("li", { class: "note" }, "the nodes hold different views: the cluster is partitioned")]
        : []),
      ...p.components.map((c) => componentLine(c, p)),
    );
    nodes.replaceChildren(...p.nodes.map((n) => nodeRow(n, p)));
  };
  const addEvent = (e) => {
    events.prepend(eventRow(e));
    while (events.childElementCount > MAX_EVENTS) events.lastElementChild.remove();
  };

  return listen("/api/cluster/stream", {
    open: () => connection.replaceChildren("live"),
    error: () => connection.replaceChildren("reconnecting…"),
    snapshot: ({ picture, events: past }) => {
      events.replaceChildren();
      for (const e of past) addEvent(e);
      showPicture(picture);
    },
    picture: showPicture,
    event: addEvent,
  });
}
