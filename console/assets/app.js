// The console's page: asks who it is (the session), then shows one page at a
// time by the address's #fragment. Each page module exports mount(root,
// session) and returns the function that stops its streams.
import { el, getJson } from "./lib.js";

const PAGES = {
  cluster: () => import("./pages/cluster.js"),
  request: () => import("./pages/request.js"),
  actions: () => import("./pages/actions.js"),
  files: () => import("./pages/files.js"),
  hosts: () => import("./pages/hosts.js"),
};

const root = document.getElementById("page");
let unmount = () => {};

async function show(session) {
  const name = location.hash.slice(1) in PAGES ? location.hash.slice(1) : "cluster";
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.page === name);
  unmount();
  root.replaceChildren();
  const page = await PAGES[name]();
  unmount = page.mount(root, session) ?? (() => {});
}

async function main() {
  let session;
  try {
    session = await getJson("/api/session");
  } catch (error) {
    root.replaceChildren(el("p", { class: "error" }, `cannot reach the console: ${error.message}`));
    return;
  }
  document
    .getElementById("identity")
    .replaceChildren(
      `cluster ${session.cluster} · ${session.user}`,
      el("span", { class: `role ${session.role}`, id: "role" }, session.role),
    );
  document.title = `dvsd console · ${session.cluster}`;
  window.addEventListener("hashchange", () => show(session));
  await show(session);
}

main();
