// The replicated file store (SPEC 8) with real processes: five `dvsd run`
// nodes, two of them passive servers, on a nats-server of this file's own,
// driven with dvsctl as an operator would (`file commit`, `file update`,
// `file ls`). Holders and the coordinator are SIGKILLed; what dvsctl reports
// must always match what a later UPDATE reads back, byte for byte.
import { createCipheriv, createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subscription } from "@nats-io/transport-node";
import { monotonicFactory } from "ulid";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEV_USERS } from "../../client/credentials.js";
import { bytesSource, FileClient } from "../../client/fileClient.js";
import { decode } from "../../protocol/codec.js";
import type { FileListing } from "../../protocol/files.js";
import { FileStoreError } from "../../protocol/files.js";
import { serverMessageSchema } from "../../protocol/messages.js";
import { subjects } from "../../protocol/subjects.js";
import { sleep, systemClock, systemRandom } from "../../transport/clock.js";
import { connectNats, type NatsTransport } from "../../transport/nats.js";
import { requireBuild } from "../support/cli.js";
import { dvsctlRunner } from "../support/dvsctl.js";
import { DvsdNode } from "../support/dvsdProcess.js";
import { EventWatch } from "../support/eventWatch.js";
import { startTestNatsServer, type TestNatsServer } from "../support/natsServer.js";

const ALL = [1, 2, 3, 4, 5] as const;
const PASSIVE: readonly number[] = [4, 5];
/** How often the coordinator looks for versions with too few holders (config `files.repairEveryMs`). */
const REPAIR_EVERY_MS = 500;
const SUBJECTS = subjects("dvs");
const MiB = 1024 * 1024;

const dir = mkdtempSync(join(tmpdir(), "dvs-files-"));
const nodes = new Map<number, DvsdNode>();
let server: TestNatsServer;
let watch: EventWatch;
let serverTraffic: Subscription;
/**
 * The client of the coordinator-kill test, in this process with short timeouts, so a
 * commit whose coordinator died is given up (nothing heard of it for 2 × requestTimeoutMs)
 * and sent again within a few seconds of each round rather than the default 10 s.
 */
let committer: FileClient;
let committerTransport: NatsTransport;
/** Each server's last ALIVE as the test received it: whom it takes for the coordinator. */
const alive = new Map<number, { coordinator: number | null; receivedAt: number }>();

const env = () => ({ DVS_NATS: server.url });
const { dvsctl, dvsctlBytes } = dvsctlRunner(env);

const nodeOf = (node: number): DvsdNode => {
  const n = nodes.get(node);
  if (!n) throw new Error(`no node ${node}`);
  return n;
};
const running = () => ALL.filter((n) => nodeOf(n).running);
const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

/** The first line of dvsctl's output that is JSON (an object or an array). */
function jsonOf<T>(output: string): T {
  const line = output.split("\n").find((l) => l.startsWith("{") || l.startsWith("["));
  if (line === undefined) throw new Error(`dvsctl printed no JSON:\n${output}`);
  return JSON.parse(line) as T;
}

/** The coordinator every registry agrees on (`dvsctl who`, waiting out an election). */
async function coordinator(): Promise<number> {
  const who = await dvsctl("--json", "who", "--wait", "10000");
  expect(who.code, who.output).toBe(0);
  return jsonOf<{ coordinator: number }>(who.output).coordinator;
}

/**
 * Waits until the coordinator is agreed and every running server has sent an
 * ALIVE naming it since this call: each knows the term, and the coordinator
 * has heard from each, so it can place replicas on all of them.
 */
async function ready(timeoutMs = 20_000): Promise<number> {
  const since = performance.now();
  const c = await coordinator();
  const up = running();
  await watch.until(
    () =>
      up.every((n) => {
        const a = alive.get(n);
        return a !== undefined && a.receivedAt > since && a.coordinator === c;
      }),
    () =>
      `an ALIVE naming coordinator ${c} from each of nodes ${up.join(", ")}; last: ${[...alive]
        .map(([n, a]) => `${n}→${a.coordinator}`)
        .join(", ")}`,
    { timeoutMs, pollMs: 50 },
  );
  return c;
}

/** Starts `node` again (same state dir) and waits until it is back in the view and knows the coordinator. */
async function restart(node: number): Promise<void> {
  const n = nodeOf(node);
  if (n.running) await n.kill();
  n.start();
  try {
    await watch.converged(ALL, 20_000);
  } catch (error) {
    throw new Error(
      `${(error as Error).message}\nnode ${node}'s output:\n${n.process.output().slice(-3_000)}`,
    );
  }
  await ready();
}

async function listing(): Promise<FileListing[]> {
  const ls = await dvsctl("--json", "file", "ls");
  expect(ls.code, ls.output).toBe(0);
  return jsonOf<FileListing[]>(ls.output);
}

/** Polls `file ls` until `name`'s entry satisfies `done`; fails with the last listing. */
async function listedUntil(
  name: string,
  done: (entry: FileListing | undefined) => boolean,
  what: string,
  timeoutMs = 20_000,
): Promise<FileListing | undefined> {
  const deadline = performance.now() + timeoutMs;
  let last: FileListing | undefined;
  while (performance.now() < deadline) {
    last = (await listing()).find((f) => f.name === name);
    if (done(last)) return last;
    await sleep(systemClock, 200);
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}; last listing: ${JSON.stringify(last)}`,
  );
}

/**
 * `size` bytes that look random and are the same for the same label in every
 * run (AES-256-CTR of zeros under the label's hash), so a failure is replayed
 * with the same contents.
 */
function contents(label: string, size: number): Buffer {
  const key = createHash("sha256").update(label).digest();
  return createCipheriv("aes-256-ctr", key, Buffer.alloc(16)).update(Buffer.alloc(size));
}

/** A file of `contents(label, size)` in the test's directory. */
function randomFile(label: string, size: number): { path: string; bytes: Buffer } {
  const bytes = contents(label, size);
  const path = join(dir, `${label}.bin`);
  writeFileSync(path, bytes);
  return { path, bytes };
}

let outputs = 0;

interface Fetched {
  readonly version: number;
  readonly source: number;
  readonly bytes: Buffer;
}

/** `dvsctl file update NAME -o PATH`: the version read, its source and the bytes written. */
async function fetch(name: string): Promise<Fetched> {
  const out = join(dir, `out-${++outputs}`);
  const run = await dvsctl("file", "update", name, "-o", out);
  expect(run.code, run.output).toBe(0);
  const m = /^(\S+) version (\d+), (\d+) bytes from node (\d+)$/m.exec(run.output);
  expect(m, run.output).not.toBeNull();
  const bytes = readFileSync(out);
  rmSync(out);
  expect(m?.[1]).toBe(name);
  expect(Number(m?.[3])).toBe(bytes.byteLength);
  // No temporary file is left beside the target.
  expect(readdirSync(dir).filter((f) => f.includes(".part"))).toEqual([]);
  return { version: Number(m?.[2]), source: Number(m?.[4]), bytes };
}

/** Unfinished replica writes (`.part-` files) in every node's files directory. */
function partFiles(): string[] {
  return ALL.flatMap((n) => {
    try {
      return readdirSync(join(nodeOf(n).stateDir, "files"), { recursive: true, encoding: "utf8" })
        .filter((f) => /\.part-/.test(f))
        .map((f) => `${n}:${f}`);
    } catch {
      return [];
    }
  });
}

/** Resolves once `check` holds (polled every few ms), or after `timeoutMs` with false. */
async function polled(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (check()) return true;
    await sleep(systemClock, 3);
  }
  return false;
}

/** Error-level lines in the nodes' logs (a replica that failed its hash check is one). */
function errorLines(): string[] {
  return ALL.flatMap((n) =>
    nodeOf(n)
      .output()
      .split("\n")
      .filter((l) => l.startsWith("{") && /"level":(50|60)/.test(l))
      .map((l) => `node ${n}: ${l.slice(0, 400)}`),
  );
}

beforeAll(async () => {
  requireBuild();
  server = await startTestNatsServer();
  watch = await EventWatch.start(server.url);
  serverTraffic = watch.connection.subscribe(SUBJECTS.servers, {
    callback: (err, msg) => {
      if (err) return;
      const decoded = decode(msg.data, "cbor");
      const parsed = decoded.ok ? serverMessageSchema.safeParse(decoded.value) : undefined;
      if (parsed?.success && parsed.data.type === "ALIVE")
        alive.set(parsed.data.from, {
          coordinator: parsed.data.coordinator,
          receivedAt: performance.now(),
        });
    },
  });
  await watch.connection.flush();
  for (const node of ALL) {
    const n = new DvsdNode({
      node,
      dir,
      natsUrl: server.url,
      config: {
        log: { level: "info" },
        election: { server: PASSIVE.includes(node) ? "passive" : "active" },
        files: { repairEveryMs: REPAIR_EVERY_MS },
        shutdown: { graceMs: 3_000 },
      },
    });
    nodes.set(node, n);
    n.start();
  }
  await watch.converged(ALL, 30_000);
  committerTransport = await connectNats({ servers: [server.url], name: "e2e-files", ...DEV_USERS.admin });
  const ids = monotonicFactory(() => systemRandom.next());
  committer = new FileClient({
    transport: committerTransport,
    subjects: SUBJECTS,
    clock: systemClock,
    newCommitId: () => ids(systemClock.now()),
    requestTimeoutMs: 1_000,
    readTimeoutMs: 250,
    readWindow: 16,
  });
  await ready();
}, 60_000);

afterAll(async () => {
  await Promise.all([...nodes.values()].map((n) => n.kill()));
  serverTraffic?.unsubscribe();
  await committerTransport?.close();
  await watch?.close();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("the file store across real dvsd processes, through dvsctl", () => {
  it("commits on three servers, survives a holder's SIGKILL with a repair, and serves the newest version byte for byte", async () => {
    const c = await ready();
    const v1 = randomFile("a1", 1.5 * MiB);
    const first = await dvsctl("--json", "file", "commit", "a.bin", v1.path);
    expect(first.code, first.output).toBe(0);
    const committed = jsonOf<{ type: string; version: number; holders: number[]; sha256: string }>(
      first.output,
    );
    expect(committed).toMatchObject({
      type: "SUCCESS",
      name: "a.bin",
      version: 1,
      size: v1.bytes.byteLength,
    });
    expect(committed.sha256).toBe(sha256(v1.bytes));
    expect(new Set(committed.holders).size).toBe(3);
    // Passive servers are asked first.
    expect(committed.holders).toEqual(expect.arrayContaining([...PASSIVE]));

    const listed = await listedUntil("a.bin", (f) => f?.holders.length === 3, "a.bin with 3 holders");
    expect(listed).toMatchObject({ name: "a.bin", version: 1, size: v1.bytes.byteLength });
    const table = await dvsctl("file", "ls");
    expect(table.code, table.output).toBe(0);
    expect(table.output).toMatch(/^name\s+version\s+size\s+holders\s+at/m);
    expect(table.output).toMatch(/^a\.bin\s+1\s+1\.5 MiB\s+[\d,]+\s+\d{4}-\d\d-\d\dT/m);

    // A holder that is not the coordinator dies; the version is copied to another live server.
    const victim = committed.holders.find((h) => h !== c) as number;
    const killedAt = performance.now();
    await nodeOf(victim).kill();
    // At least 3: a repair round that runs before the new holder's next ALIVE copies the version
    // again (repairEveryMs 500 < the STATUS period), so a fourth holder is possible.
    const repaired = await listedUntil(
      "a.bin",
      (f) => f !== undefined && f.holders.length >= 3 && !f.holders.includes(victim),
      `a.bin repaired to 3 live holders without node ${victim}`,
    );

    console.info(
      `SIGKILL of holder ${victim}: a.bin held by ${repaired?.holders.join(",")} again after ${Math.round(performance.now() - killedAt)} ms`,
    );
    expect((await fetch("a.bin")).bytes.equals(v1.bytes)).toBe(true);

    // The next version, with the holder still dead, in dvsctl's human form.
    const v2 = randomFile("a2", 1.5 * MiB + 7);
    const second = await dvsctl("file", "commit", "a.bin", v2.path);
    expect(second.code, second.output).toBe(0);
    const line =
      /^committed a\.bin version (\d+) \((\d+) bytes, sha256 ([0-9a-f]{12})\) on nodes ([\d, ]+)$/m.exec(
        second.output,
      );
    expect(line, second.output).not.toBeNull();
    expect(Number(line?.[1])).toBe(2);
    expect(Number(line?.[2])).toBe(v2.bytes.byteLength);
    expect(line?.[3]).toBe(sha256(v2.bytes).slice(0, 12));
    const holders = (line?.[4] ?? "").split(", ").map(Number);
    expect(holders).toHaveLength(3);
    expect(holders).not.toContain(victim);

    const got = await fetch("a.bin");
    expect(got.version).toBe(2);
    expect(got.bytes.equals(v2.bytes)).toBe(true);
    // To stdout too, and nothing else there.
    const piped = await dvsctlBytes("file", "update", "a.bin");
    expect(piped.code, piped.stderr).toBe(0);
    expect(piped.stdout.equals(v2.bytes)).toBe(true);
    expect(piped.stderr).toMatch(/^a\.bin version 2, 1572871 bytes from node \d+$/m);

    const now = await listedUntil(
      "a.bin",
      (f) => f?.version === 2 && f.holders.length >= 3 && !f.holders.includes(victim),
      "a.bin version 2 on 3 live holders",
    );
    expect(now?.sha256).toBe(sha256(v2.bytes));

    await restart(victim);
    expect(errorLines()).toEqual([]);
  }, 90_000);

  it("update of a missing file is ENOENT; a viewer may list and fetch files but not commit one", async () => {
    await ready();
    const missing = await dvsctl("file", "update", "no/such.bin", "-o", join(dir, "never"));
    expect(missing.code, missing.output).toBe(1);
    expect(missing.output).toMatch(/^dvsctl: file update: ENOENT: /m);
    expect(readdirSync(dir).filter((f) => f.startsWith("never") || f.includes(".part"))).toEqual([]);

    const shared = randomFile("shared", 10_000);
    const committed = await dvsctl("file", "commit", "docs/shared.bin", shared.path);
    expect(committed.code, committed.output).toBe(0);
    const ls = await dvsctl("--user", "viewer", "--json", "file", "ls", "docs/");
    expect(ls.code, ls.output).toBe(0);
    expect(jsonOf<FileListing[]>(ls.output)).toEqual([
      expect.objectContaining({ name: "docs/shared.bin", sha256: sha256(shared.bytes) }),
    ]);
    const out = join(dir, "viewer.bin");
    const update = await dvsctl("--user", "viewer", "file", "update", "docs/shared.bin", "-o", out);
    expect(update.code, update.output).toBe(0);
    expect(readFileSync(out).equals(shared.bytes)).toBe(true);

    const small = randomFile("viewer", 1_000);
    const started = performance.now();
    const commit = await dvsctl("--user", "viewer", "file", "commit", "v.bin", small.path);
    expect(commit.code, commit.output).toBe(4);
    expect(commit.output).toMatch(/^dvsctl: file commit: EPERM: /m);
    // Refused at once, not retried until the deadline.
    expect(performance.now() - started).toBeLessThan(10_000);
    expect((await listing()).map((f) => f.name)).not.toContain("v.bin");
  }, 60_000);

  it("a commit whose coordinator is SIGKILLed either succeeds with its bytes readable or fails leaving the previous version", async () => {
    await ready();
    const name = "c.bin";
    const base = randomFile("c1", 64 * 1024);
    const first = await dvsctl("--json", "file", "commit", name, base.path);
    expect(first.code, first.output).toBe(0);
    let previous = { version: jsonOf<{ version: number }>(first.output).version, bytes: base.bytes };

    // Where in the commit the coordinator dies: as the first holder starts writing, after a
    // short delay (the COMMIT just sent or the delegation under way), once every holder is done.
    const moments = ["holder writing", "after 150 ms", "holders done"] as const;
    const outcomes: string[] = [];
    for (const moment of moments) {
      const c = await ready();
      const next = contents(`c-${moment}`, 8 * MiB);
      const startedAt = performance.now();
      const commit = committer.commit(name, bytesSource(next)).then(
        (answer) => ({ ok: true, answer }) as const,
        (error: unknown) => ({ ok: false, error }) as const,
      );
      if (moment === "after 150 ms") await sleep(systemClock, 150);
      else {
        const writing = await polled(() => partFiles().length > 0, 10_000);
        if (moment === "holders done" && writing) await polled(() => partFiles().length === 0, 10_000);
      }
      const killedAfter = Math.round(performance.now() - startedAt);
      await nodeOf(c).kill();
      const outcome = await commit;
      const tookMs = Math.round(performance.now() - startedAt);

      const got = await fetch(name);
      if (outcome.ok) {
        expect(outcome.answer).toMatchObject({ name, sha256: sha256(next), size: next.byteLength });
        expect(outcome.answer.version).toBe(previous.version + 1);
        expect(got.version).toBe(outcome.answer.version);
        expect(got.bytes.equals(next), "update returned other bytes than the SUCCESS named").toBe(true);
        previous = { version: outcome.answer.version, bytes: next };
      } else {
        expect(outcome.error).toBeInstanceOf(FileStoreError);
        expect(got.version, `a failed commit (${String(outcome.error)}) left a new version`).toBe(
          previous.version,
        );
        expect(got.bytes.equals(previous.bytes)).toBe(true);
      }
      const result = outcome.ok
        ? `SUCCESS v${outcome.answer.version}`
        : `${(outcome.error as FileStoreError).code} (${(outcome.error as Error).message})`;
      outcomes.push(
        `${moment}: coordinator ${c} killed after ${killedAfter} ms → ${result} after ${tookMs} ms`,
      );
      await restart(c);
    }
    console.info(`coordinator SIGKILL during an 8 MiB commit:\n  ${outcomes.join("\n  ")}`);
    expect(errorLines()).toEqual([]);
  }, 120_000);
});
