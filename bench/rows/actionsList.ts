// `dvsctl actions --limit 1000` against a long action log (SPEC 6.4: 1,000
// records in under 2 s). The row starts a nats-server of its own, fills the
// cluster's action log stream with 10,000 records (2,000 ALL actions of a
// 3-node cluster: request, three replies with PS-sized data, outcome), and
// times dvsctl as a real process, start to exit, against the 2 s target.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { jetstream } from "@nats-io/jetstream";
import { DEV_USERS } from "../../client/credentials.js";
import type { ActionRecord } from "../../transport/actionLog.js";
import { JetStreamActionLog } from "../../transport/actionLogJetStream.js";
import type { BenchContext, BenchRow, RowResult } from "../row.js";

const CLUSTER = "benchactions";
const NODES = [1, 2, 3];
const TARGET_MS = 2_000;

/** One ALL action as its node writes it: request, a reply per member, outcome. */
function actionRecords(n: number, at: number): ActionRecord[] {
  const action = `B${String(n).padStart(25, "0")}`;
  const ps = Array.from({ length: 12 }, (_, i) => ({ pid: 1_000 + i, comm: `proc${i}`, rss: 4096 * i }));
  return [
    {
      v: 1,
      kind: "request",
      action,
      at,
      node: 1,
      role: "admin",
      src: "dvsctl.1",
      type: "PS",
      dst: "ALL",
      seq: n,
      params: {},
    },
    ...NODES.map(
      (node): ActionRecord => ({
        v: 1,
        kind: "reply",
        action,
        at: at + 2,
        node,
        via: 1,
        addr: `10.0.0.${node}`,
        rcode: 12,
        ok: 1,
        count: 12,
        summary: JSON.stringify(ps).slice(0, 256),
        data: ps,
        dataBytes: JSON.stringify(ps).length,
        truncated: false,
      }),
    ),
    {
      v: 1,
      kind: "outcome",
      action,
      at: at + 3,
      node: 1,
      type: "PS",
      dst: "ALL",
      rcode: 0,
      ok: 3,
      failed: 0,
      durationMs: 3,
    },
  ];
}

function key(r: ActionRecord): string {
  const author = r.kind === "reply" ? r.via : r.node;
  return `${author}.${r.action}.${r.kind}${r.kind === "reply" ? `.${r.node}` : ""}`;
}

async function fill(ctx: BenchContext, url: string, actions: number): Promise<number> {
  const nc = await ctx.connectRaw("bench-actions-fill", url);
  // The stream as nodes create it (file storage, the default limits).
  const log = new JetStreamActionLog(nc, { cluster: CLUSTER });
  const [first, ...rest] = actionRecords(0, 1_700_000_000_000);
  if (first) await log.append(first);
  const js = jetstream(nc);
  let records = 1;
  let pending: Promise<unknown>[] = [];
  const write = (r: ActionRecord) => {
    records++;
    pending.push(js.publish(`dvs.${CLUSTER}.actions.${key(r)}`, JSON.stringify(r), { msgID: key(r) }));
  };
  for (const r of rest) write(r);
  for (let n = 1; n < actions; n++) {
    for (const r of actionRecords(n, 1_700_000_000_000 + n * 10)) write(r);
    if (pending.length >= 500) {
      await ctx.within(30_000, "filling the action log", Promise.all(pending));
      pending = [];
    }
  }
  await ctx.within(30_000, "filling the action log", Promise.all(pending));
  return records;
}

/** Runs dvsctl to its exit; resolves with its wall time, exit code and output. */
function timeDvsctl(ctx: BenchContext, args: readonly string[]) {
  const started = performance.now();
  const child = spawn(process.execPath, [join(ctx.repoRoot, "dist/bin/dvsctl.js"), ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, DVS_ADMIN_KEY_FILE: "none" },
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr.on("data", (c: Buffer) => {
    stderr += c.toString();
  });
  return ctx.within(
    120_000,
    "dvsctl actions",
    new Promise<{ ms: number; code: number | null; stdout: string; stderr: string }>((resolve) =>
      child.once("close", (code) => resolve({ ms: performance.now() - started, code, stdout, stderr })),
    ),
  );
}

export const actionsList: BenchRow = {
  name: "actions-list",
  title: "dvsctl actions --limit 1000 on a 10,000-record action log (target < 2 s)",
  async run(ctx: BenchContext): Promise<RowResult> {
    const actions = 2_000;
    const server = await ctx.startNatsServer();
    const records = await fill(ctx, server.url, actions);
    ctx.progress(`filled ${records} records; timing dvsctl actions --limit 1000`);
    const base = [
      "--nats",
      server.url,
      "--cluster",
      CLUSTER,
      "--user",
      "admin",
      "--pass",
      DEV_USERS.admin.pass,
    ];
    // Node's start-up and dvsctl's imports alone: what any dvsctl command costs before it reads anything.
    const startup = await timeDvsctl(ctx, ["--help"]);
    const runs: number[] = [];
    for (let i = 0; i < (ctx.quick ? 1 : 3); i++) {
      const run = await timeDvsctl(ctx, [...base, "--json", "actions", "--limit", "1000"]);
      const lines = run.stdout.split("\n").filter((l) => l.startsWith("{")).length;
      if (run.code !== 0 || lines !== 1_000)
        throw new Error(
          `dvsctl actions exited ${run.code} with ${lines} actions:\n${run.stderr.slice(0, 2_000)}`,
        );
      runs.push(run.ms);
    }
    runs.sort((a, b) => a - b);
    const listed = { ms: runs[Math.floor(runs.length / 2)] ?? Number.NaN };
    const shown = await timeDvsctl(ctx, [
      ...base,
      "actions",
      "show",
      actionRecords(actions - 1, 0)[0]?.action ?? "",
    ]);
    if (shown.code !== 0)
      throw new Error(`dvsctl actions show exited ${shown.code}:\n${shown.stderr.slice(0, 2_000)}`);
    return {
      measurements: [
        { name: "dvsctl actions --limit 1000 (median)", value: Math.round(listed.ms), unit: "ms" },
        { name: "dvsctl actions --limit 1000 (best)", value: Math.round(runs[0] ?? Number.NaN), unit: "ms" },
        { name: "dvsctl --help (start-up only)", value: Math.round(startup.ms), unit: "ms" },
        { name: "dvsctl actions show", value: Math.round(shown.ms), unit: "ms" },
        { name: "records in the stream", value: records, unit: "records" },
      ],
      ratios: [
        {
          name: "actions --limit 1000 / 2 s",
          value: listed.ms / TARGET_MS,
          of: "median wall time of the dvsctl process (3 runs) / 2000 ms",
          target: { op: "<=", value: 1 },
        },
      ],
      notes: [
        `${records} records (${actions} ALL actions of 3 nodes: request, 3 replies with PS data, outcome) on a nats-server of the row's own; dvsctl timed as a process from spawn to exit (Node start-up included)`,
      ],
    };
  },
};
