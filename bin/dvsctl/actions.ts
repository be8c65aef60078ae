// dvsctl's view of the action log (SPEC 6.4): `actions` lists the newest
// actions with their outcome, `actions show ID` every record of one action.
// It reads the JetStream stream directly, so it needs the `admin` user. Records
// the reader cannot believe (they fail validation, or their subject does not
// name the node that wrote them) are skipped and reported on stderr.
import type { Command } from "commander";
import type { ActionRecord, ActionSummary, RequestRecord } from "../../client/actions.js";
import { JetStreamActionLog } from "../../client/actions.js";
import { formatTable } from "../../client/table.js";
import { actionIdSchema } from "../../client/wire.js";
import { count, nodeId } from "./args.js";
import { elapsed } from "./durations.js";
import { CommandError } from "./errors.js";
import { EXIT, withConnection } from "./session.js";

const time = (at: number) => new Date(at).toISOString();

function listTable(actions: readonly ActionSummary[]): string {
  return formatTable(
    ["action", "at", "via", "role", "src", "type", "dst", "result", "ok", "failed", "took"],
    actions.map(({ request: r, outcome: o }) => [
      r.action,
      time(r.at),
      r.node,
      r.role,
      r.src,
      r.type,
      r.dst,
      o ? (o.error ?? o.rcode) : "(no outcome)",
      o?.ok,
      o?.failed,
      elapsed(o?.durationMs),
    ]),
  );
}

/** A request's params as the log holds them: left out (refused, or too large) with their size. */
function paramsOf(r: RequestRecord): string {
  if (r.params !== undefined) return JSON.stringify(r.params);
  const why = r.refused !== undefined ? `refused ${r.refused}` : "too large";
  return `(params left out, ${why}: ${r.paramsBytes ?? "?"} bytes)`;
}

/** Says on stderr what the reader passed over, if anything. */
function reportSkipped(log: JetStreamActionLog): void {
  if (log.skipped === 0) return;
  const reasons = Object.entries(log.skips)
    .filter(([, n]) => n > 0)
    .map(([reason, n]) => `${n} ${reason}`)
    .join(", ");
  process.stderr.write(`dvsctl: skipped ${log.skipped} records that failed validation (${reasons})\n`);
}

function showTable(records: readonly ActionRecord[]): string {
  return formatTable(
    ["kind", "at", "node", "result", "detail"],
    records.map((r) => {
      if (r.kind === "request")
        return [
          r.kind,
          time(r.at),
          r.node,
          "",
          `${r.role} ${r.src} ${r.type} dst=${r.dst} seq=${r.seq} ${paramsOf(r)}`,
        ];
      if (r.kind === "reply") return [r.kind, time(r.at), r.node, r.error ?? r.rcode, r.summary];
      return [
        r.kind,
        time(r.at),
        r.node,
        r.error ?? r.rcode,
        `${r.ok} ok, ${r.failed} failed, took ${elapsed(r.durationMs) ?? "?"}`,
      ];
    }),
  );
}

export function addActionCommands(program: Command): void {
  const actions = program
    .command("actions")
    .description("the action log: every administrative request, each node's reply and the outcome")
    .option("--limit <n>", "the newest N actions", count, 20)
    .option("--node <id>", "only actions sent to this node (or to all)", nodeId)
    .option("--type <type>", "only actions of this request type (e.g. KILL)")
    .addHelpText(
      "after",
      [
        "",
        "Reads the JetStream stream DVS_ACTIONS_<cluster> (admin user), back from its end. Oldest",
        "first; an action whose node stopped before it ended shows (no outcome). Records that fail",
        "validation, or whose subject does not name the node that wrote them, are skipped and counted",
        "on stderr.",
        "",
        "Examples:",
        "  $ dvsctl actions --limit 5",
        "  $ dvsctl actions --type KILL --node 2",
        "  $ dvsctl actions show 01JD3V6Q8W4X5Y6Z7A8B9C0D1E",
      ].join("\n"),
    )
    .action(async (opts: { limit: number; node?: number; type?: string }, cmd: Command) => {
      await withConnection(cmd, async (t, g) => {
        const log = new JetStreamActionLog(t.connection, { cluster: g.cluster, timeoutMs: g.timeout });
        const listed = await log.list({
          limit: Math.max(1, opts.limit),
          ...(opts.node !== undefined ? { node: opts.node } : {}),
          ...(opts.type !== undefined ? { type: opts.type.replace(/^RQST_/, "").toUpperCase() } : {}),
        });
        if (g.json) for (const a of listed) process.stdout.write(`${JSON.stringify(a)}\n`);
        else process.stdout.write(`${listed.length ? listTable(listed) : "no actions"}\n`);
        reportSkipped(log);
      });
    });

  actions
    .command("show <id>")
    .description("every record of one action: the request, each node's reply, the outcome")
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      if (!actionIdSchema.safeParse(id).success)
        throw new CommandError(`${JSON.stringify(id)} is not an action id`, EXIT.usage);
      await withConnection(cmd, async (t, g) => {
        const log = new JetStreamActionLog(t.connection, { cluster: g.cluster, timeoutMs: g.timeout });
        const records = await log.show(id);
        reportSkipped(log);
        if (records.length === 0) throw new CommandError(`no action ${id} in the log`, EXIT.replyError);
        if (g.json) for (const r of records) process.stdout.write(`${JSON.stringify(r)}\n`);
        else process.stdout.write(`${showTable(records)}\n`);
      });
    });
}
