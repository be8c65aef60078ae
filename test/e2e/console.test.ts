// The web console as an operator uses it: a real 3-node cluster on a
// nats-server the test owns, `dvsd console` (a viewer, the default) and
// Debian's chromium driven by playwright-core. The page sees three nodes,
// sends GETDVSINFO to ALL and sees three rows, finds KILL disabled, and sees a
// SIGKILLed node's PARTITION arrive. The console's HTTP API is then attacked
// directly: a viewer console cannot make a mutating request succeed (the nodes
// answer EPERM), and cross-origin, foreign-Host and malformed calls are refused.
//
// DVS_SCREENSHOT=1 writes the Cluster page to docs/console.png (the README's);
// otherwise the screenshot goes to the test's temporary directory.
// Without chromium (DVS_CHROMIUM, else /usr/bin/chromium) the test is skipped
// with the reason, except in CI (CI=true), where that is a failure.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectNats, type NatsTransport } from "../../client/connection.js";
import { DEV_USERS } from "../../client/credentials.js";
import { DvsClient } from "../../client/dvsClient.js";
import { TEST_ADMIN, testAdminKeyEnv } from "../../sim/testAdmin.js";
import { dvsdBin, isAlive, requireBuild, type Spawned, spawnNode } from "../support/cli.js";
import { type DvsdNode, startDvsdNodes } from "../support/dvsdProcess.js";
import { repoRoot, startTestNatsServer, type TestNatsServer } from "../support/natsServer.js";

const CHROMIUM = process.env.DVS_CHROMIUM ?? "/usr/bin/chromium";
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && process.env.CI === "true") {
  throw new Error(`${CHROMIUM} is missing: CI must install chromium (apt-get install chromium)`);
}
if (!haveChromium) {
  process.stderr.write(`console.test.ts: skipped: no chromium at ${CHROMIUM} (apt-get install chromium)\n`);
}

/** Every wait in the browser ends by this. */
const WAIT_MS = 15_000;

const dir = mkdtempSync(join(tmpdir(), "dvs-console-"));
let server: TestNatsServer;
let nodes: DvsdNode[] = [];
let admin: NatsTransport | undefined;
let console_: Spawned | undefined;
let url = "";
let browser: Browser | undefined;
let page: Page;

/** Calls the console's HTTP API as a script would: no browser, headers of its choosing. */
async function call(path: string, init: RequestInit & { headers?: Record<string, string> } = {}) {
  const res = await fetch(new URL(path, url), init);
  const text = await res.text();
  return { status: res.status, text, lines: text.trim() ? text.trim().split("\n") : [] };
}

/** Waits (by locators: the console's CSP forbids evaluated strings) until three nodes answer. */
async function threeNodesAnswer(): Promise<void> {
  await page.locator("#nodes tbody tr:not(.down)").nth(2).waitFor({ timeout: WAIT_MS });
  expect(await page.locator("#nodes tbody tr").count()).toBe(3);
}

const acting = { "x-dvs-console": "1", "content-type": "application/json" };

describe.skipIf(!haveChromium)("the web console on a 3-node cluster (viewer)", () => {
  beforeAll(async () => {
    requireBuild();
    server = await startTestNatsServer();
    // The console first: it sees the nodes join, as an operator watching a cluster come up would.
    console_ = spawnNode([dvsdBin, "console", "--nats", server.url, "--port", "0"]);
    url = /console (http:\/\/\S+)/.exec(await console_.waitFor(/console http:\/\/\S+/, 10_000))?.[1] ?? "";
    nodes = await startDvsdNodes([1, 2, 3], { natsUrl: server.url, dir, config: {} });
    // GETDVSINFO answers 0 once the DVS is initialised: the admin does it, as `dvsd up` would.
    admin = await connectNats({ servers: [server.url], name: "e2e-console-admin", ...DEV_USERS.admin });
    const client = new DvsClient(admin, {
      cluster: "dvs",
      clientId: "e2e",
      signer: TEST_ADMIN,
      timeoutMs: 10_000,
    });
    await client.request("DVSINIT", { name: "e2e" }, { gatherTimeoutMs: 5_000 });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"], headless: true });
    page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
  }, 45_000);

  afterAll(async () => {
    await browser?.close().catch(() => {});
    console_?.child.kill("SIGTERM");
    await console_?.exited(5_000).catch(() => console_?.child.kill("SIGKILL"));
    await admin?.close().catch(() => {});
    await Promise.all(nodes.map((n) => n.kill()));
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  it("shows every node of the cluster with its view, pid and address", async () => {
    await page.goto(`${url}#cluster`);
    await threeNodesAnswer();
    const rows = await page.$$eval("#nodes tbody tr", (trs) =>
      trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent ?? "")),
    );
    expect(rows.map((r) => r[0])).toEqual(["1", "2", "3"]);
    for (const r of rows) expect(r[4]).toBe("1, 2, 3");
    expect(rows.map((r) => Number(r[5]))).toEqual(nodes.map((n) => n.pid));
    expect(await page.textContent("#role")).toBe("viewer");
  });

  it("sends GETDVSINFO to ALL and fills one row per node", async () => {
    await page.goto(`${url}#request`);
    await page.waitForSelector("#params", { timeout: WAIT_MS });
    await page.selectOption("#type", "GETDVSINFO");
    // ALL, EACH and the three nodes.
    await page.locator("#dst option").nth(4).waitFor({ state: "attached", timeout: WAIT_MS });
    await page.selectOption("#dst", "ALL");
    await page.click("#send");
    await page.waitForSelector("#request-done", { timeout: WAIT_MS });
    const rows = await page.$$eval("#results > tbody > tr", (trs) =>
      trs.map((tr) => [...tr.children].slice(0, 2).map((td) => td.textContent ?? "")),
    );
    expect(rows.sort()).toEqual([
      ["1", "0"],
      ["2", "0"],
      ["3", "0"],
    ]);
    expect(await page.textContent("#results")).toContain("e2e");
  });

  it("shows KILL and the other mutating types disabled for a viewer, with the reason", async () => {
    await page.goto(`${url}#request`);
    await page.waitForSelector("#type", { timeout: WAIT_MS });
    expect(await page.$eval("#type option[value=KILL]", (o) => o.hasAttribute("disabled"))).toBe(true);
    expect(await page.$eval("#type option[value=DVSEND]", (o) => o.hasAttribute("disabled"))).toBe(true);
    expect(await page.$eval("#type option[value=PS]", (o) => o.hasAttribute("disabled"))).toBe(false);
    expect(await page.textContent("#mutating-reason")).toContain("viewer");
  });

  it("cannot make a mutating request succeed when its page is bypassed: the nodes answer EPERM", async () => {
    const victim = nodes[1] as DvsdNode;
    const kill = await call("/api/requests", {
      method: "POST",
      headers: acting,
      body: JSON.stringify({ type: "KILL", dst: 2, params: { pid: victim.pid, signal: "SIGKILL" } }),
    });
    expect(kill.status).toBe(200);
    const entry = kill.lines.map((l) => JSON.parse(l)).find((l) => l.kind === "entry");
    expect(entry).toMatchObject({ node: 2, rcodeName: "EPERM" });
    // DVSEND to EACH node: every one refuses.
    const end = await call("/api/requests", {
      method: "POST",
      headers: acting,
      body: JSON.stringify({ type: "DVSEND", dst: "EACH", params: {} }),
    });
    const refusals = end.lines.map((l) => JSON.parse(l)).filter((l) => l.kind === "entry");
    expect(refusals.map((e) => e.rcodeName)).toEqual(["EPERM", "EPERM", "EPERM"]);
    expect(isAlive(victim.pid)).toBe(true);
    // The action log is the admin's: the viewer console says so instead of reading it.
    const log = await call("/api/actions");
    expect(log.status).toBe(403);
    expect(JSON.parse(log.text)).toMatchObject({ error: "EPERM" });
  });

  it("refuses cross-origin, foreign-Host, header-less, malformed and oversized calls", async () => {
    const body = JSON.stringify({ type: "GETDVSINFO", dst: "ALL" });
    const crossOrigin = await call("/api/requests", {
      method: "POST",
      headers: { ...acting, origin: "http://evil.example" },
      body,
    });
    expect(crossOrigin.status).toBe(403);
    expect(JSON.parse(crossOrigin.text)).toMatchObject({ error: "EORIGIN" });
    const noHeader = await call("/api/requests", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
    expect(noHeader.status).toBe(403);
    // A browser sends text/plain across origins without a preflight: refused too.
    const plain = await call("/api/requests", {
      method: "POST",
      headers: { ...acting, "content-type": "text/plain" },
      body,
    });
    expect(plain.status).toBe(400);
    const unknown = await call("/api/requests", {
      method: "POST",
      headers: acting,
      body: JSON.stringify({ type: "FROB", dst: 1 }),
    });
    expect(unknown.status).toBe(400);
    const badParams = await call("/api/requests", {
      method: "POST",
      headers: acting,
      body: JSON.stringify({ type: "PS", dst: 1, params: { limit: "all" } }),
    });
    expect(badParams.status).toBe(400);
    expect(JSON.parse(badParams.text).issues[0].path).toBe("limit");
    const huge = await call("/api/requests", {
      method: "POST",
      headers: acting,
      body: JSON.stringify({ type: "PS", dst: 1, params: { pad: "x".repeat(300_000) } }),
    });
    expect(huge.status).toBe(413);
    // DNS rebinding: a name that resolves to loopback is still not the console's.
    const { port } = new URL(url);
    const rebound = await new Promise<number>((resolve, reject) => {
      import("node:http").then(({ get }) =>
        get(
          { host: "127.0.0.1", port, path: "/api/session", headers: { host: `evil.example:${port}` } },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        ).on("error", reject),
      );
    });
    expect(rebound).toBe(403);
  });

  describe("started with --admin", () => {
    let adminConsole: Spawned | undefined;
    let adminUrl = "";
    const at = (path: string) => new URL(path, adminUrl);

    beforeAll(async () => {
      adminConsole = spawnNode(
        [dvsdBin, "console", "--admin", "--nats", server.url, "--port", "0"],
        testAdminKeyEnv(dir),
      );
      adminUrl =
        /console (http:\/\/\S+)/.exec(await adminConsole.waitFor(/console http:\/\/\S+/, 10_000))?.[1] ?? "";
    }, 15_000);

    afterAll(async () => {
      adminConsole?.child.kill("SIGTERM");
      await adminConsole?.exited(5_000).catch(() => adminConsole?.child.kill("SIGKILL"));
    });

    it("sends a signed mutating request to ALL, and finds it in the action log with each node's reply", async () => {
      const res = await fetch(at("/api/requests"), {
        method: "POST",
        headers: acting,
        body: JSON.stringify({
          type: "DCINIT",
          dst: "ALL",
          params: { dcid: 7, name: "console", nodes: [1, 2, 3] },
        }),
      });
      const lines = (await res.text())
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l));
      expect(lines.filter((l) => l.kind === "entry").map((e) => e.rcode)).toEqual([7, 7, 7]);
      const action = lines.find((l) => l.kind === "done").actions[0] as string;
      const listed = (await (await fetch(at("/api/actions?type=DCINIT&limit=5"))).json()) as {
        actions: { request: { action: string } }[];
      };
      expect(listed.actions.map((a) => a.request.action)).toContain(action);
      const shown = (await (await fetch(at(`/api/actions/${action}`))).json()) as {
        records: { kind: string }[];
      };
      expect(shown.records.filter((r) => r.kind === "reply")).toHaveLength(3);
      expect(shown.records.some((r) => r.kind === "outcome")).toBe(true);
    });

    it("commits an upload with its progress, lists it and downloads it back", async () => {
      const bytes = Buffer.from("console upload\n".repeat(4_000));
      const res = await fetch(at("/api/files/content?name=console/notes.txt"), {
        method: "POST",
        headers: { "x-dvs-console": "1", "content-type": "application/octet-stream" },
        body: bytes,
      });
      const lines = (await res.text())
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l));
      expect(lines.at(-1)).toMatchObject({
        kind: "committed",
        name: "console/notes.txt",
        size: bytes.byteLength,
      });
      expect(lines.some((l) => l.kind === "progress")).toBe(true);
      const { files } = (await (await fetch(at("/api/files"))).json()) as { files: { name: string }[] };
      expect(files.map((f) => f.name)).toContain("console/notes.txt");
      const back = await fetch(at("/api/files/content?name=console/notes.txt"));
      expect(Buffer.from(await back.arrayBuffer()).equals(bytes)).toBe(true);
      // The viewer's console may read files but not commit them.
      const refused = await call("/api/files/content?name=x", {
        method: "POST",
        headers: { "x-dvs-console": "1", "content-type": "application/octet-stream" },
        body: "x",
      });
      expect(refused.status).toBe(403);
    });
  });

  it("shows a SIGKILLed node's PARTITION as it happens", async () => {
    await page.goto(`${url}#cluster`);
    await threeNodesAnswer();
    const victim = nodes[2] as DvsdNode;
    const killedAt = performance.now();
    await victim.kill();
    // The changed column names node 3's incarnation: "3/<incarnation>".
    await page
      .locator("#events tr.event-PARTITION td:nth-child(4)", { hasText: /(^|, )3\// })
      .first()
      .waitFor({ timeout: WAIT_MS });
    const ms = performance.now() - killedAt;
    process.stderr.write(
      `console.test.ts: node 3's PARTITION on the page ${Math.round(ms)} ms after SIGKILL\n`,
    );
    await page.waitForSelector("#nodes tbody tr.down", { timeout: WAIT_MS });
    const shot =
      process.env.DVS_SCREENSHOT === "1"
        ? join(repoRoot, "docs", "console.png")
        : join(tmpdir(), "dvs-console.png");
    await page.screenshot({ path: shot, fullPage: false });
    process.stderr.write(`console.test.ts: screenshot of the Cluster page in ${shot}\n`);
  });
});
