// Files: the catalog as the coordinator lists it (pushed when it changes),
// each file's newest version to download (UPDATE), and for an admin console
// an upload that is committed (COMMIT) with its progress both ways.
import { bytes, dateTime, el, errorLine, listen, sortableTable, upload } from "../lib.js";

export function mount(root, session) {
  const status = el("div", { id: "files-status" });
  const link = (name) =>
    el(
      "a",
      { href: `/api/files/content?name=${encodeURIComponent(name)}`, download: name.split("/").pop() },
      "UPDATE ↓",
    );
  const table = sortableTable([
    { key: "name", label: "name" },
    { key: "version", label: "version" },
    { key: "size", label: "size", num: true, format: bytes },
    { key: "holders", label: "holders" },
    { key: "sha256", label: "sha256", format: (h) => el("code", { title: h }, h.slice(0, 16)) },
    { key: "at", label: "recorded", format: dateTime },
    { key: "get", label: "", format: link },
  ]);
  let files = [];
  const render = () =>
    table.setRows(
      files.map((f) => [f.name, f.version, f.size, f.holders.join(", "), f.sha256, f.at, f.name]),
    );

  const commitSection = el("section", {}, el("h2", {}, "Commit a file"));
  if (session.disabled.commit) {
    commitSection.append(el("p", { class: "note", id: "commit-disabled" }, session.disabled.commit));
  } else {
    const picker = el("input", { type: "file" });
    const name = el("input", { type: "text", placeholder: "name in the store", maxlength: 180 });
    const sent = el("progress", { max: 1, value: 0 });
    const replicated = el("progress", { max: 1, value: 0 });
    const outcome = el("div");
    const go = el("button", { type: "button" }, "Commit");
    picker.addEventListener("change", () => {
      if (!name.value && picker.files[0]) name.value = picker.files[0].name;
    });
    go.addEventListener("click", async () => {
      const file = picker.files[0];
      if (!file || !name.value)
        return outcome.replaceChildren(el("p", { class: "error" }, "pick a file and a name"));
      if (file.size > session.maxFileBytes) {
        return outcome.replaceChildren(
          el(
            "p",
            { class: "error" },
            `over the console's limit of ${bytes(session.maxFileBytes)}: use dvsctl file commit`,
          ),
        );
      }
      go.disabled = true;
      outcome.replaceChildren(el("span", { class: "muted" }, "uploading…"));
      try {
        await upload(`/api/files/content?name=${encodeURIComponent(name.value)}`, file, {
          onSent: (done, total) => {
            sent.max = total || 1;
            sent.value = done;
          },
          onLine: (line) => {
            if (line.kind === "received")
              outcome.replaceChildren(
                el("span", { class: "muted" }, `received ${bytes(line.size)}, committing…`),
              );
            else if (line.kind === "progress") {
              replicated.max = line.total || 1;
              replicated.value = line.done;
            } else if (line.kind === "committed") {
              replicated.value = replicated.max;
              outcome.replaceChildren(
                el(
                  "p",
                  {},
                  `committed ${line.name} version ${line.version} (${bytes(line.size)}) on nodes ${line.holders.join(", ")}`,
                ),
              );
            } else if (line.kind === "error")
              outcome.replaceChildren(errorLine({ code: line.error, message: line.message }));
          },
        });
      } catch (error) {
        outcome.replaceChildren(errorLine(error));
      } finally {
        go.disabled = false;
      }
    });
    commitSection.append(
      el("div", { class: "controls" }, el("label", {}, "file", picker), el("label", {}, "name", name), go),
      el(
        "div",
        { class: "controls" },
        el("label", {}, "sent to the console", sent),
        el("label", {}, "read by the holders", replicated),
      ),
      outcome,
    );
  }

  root.append(el("section", {}, el("h2", {}, "Catalog"), status, table.element), commitSection);
  status.replaceChildren(el("span", { class: "muted" }, "asking the coordinator…"));
  return listen("/api/files/stream", {
    catalog: (c) => {
      files = c.files;
      status.replaceChildren(el("span", { class: "muted" }, `${files.length} files`));
      render();
    },
    error: () => status.replaceChildren(el("span", { class: "muted" }, "reconnecting…")),
  });
}
