// dvsctl's view of the action log (SPEC 6.4): `actions` lists the newest
// actions with their outcome (or, with --events, the cluster's own events:
// COMMITs, coordinator changes, membership), `actions show ID` every record of
// one action with each node's address, result and data, and `actions
// retention` applies the retention limits to the stream. It reads the
// JetStream stream directly, so it needs the `admin` user. Records the reader
// cannot believe are skipped and reported on stderr.
import type { Command } from "commander";
import type {
  ActionRecord,
  ActionSummary,
  EventRecord,
  LogReach,
  ReplyRecord,
  RequestRecord,
} from "../../client/actions.js";
import { ActionLogError, JetStreamActionLog } from "../../client/actions.js";
import { formatTable } from "../../client/table.js";
import { actionIdSchema } from "../../client/wire.js";
import { count, nodeId } from "./args.js";
import { elapsed } from "./durations.js";
import { CommandError } from "./errors.js";
import { EXIT, type GlobalOptions, withConnection } from "./session.js";

const time = (at: number) => new Date(at).toISOString();
const EVENT_TYPES = ["COMMIT", "COORDINATOR", "JOIN", "DISCONNECT", "PARTITION", "MERGE"] as const;

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

/** What an event says beyond its type and node. */
function eventDetail(e: EventRecord): string {
  if (e.type === "COMMIT" && e.file)
    return `${e.file.name}${e.file.version !== undefined ? ` v${e.file.version}` : ""} ${e.file.outcome}${
      e.file.holders ? ` holders ${e.file.holders.join(",")}` : ""
    }`;
  if (e.type === "COORDINATOR") return `coordinator ${e.coordinator ?? "none"} epoch ${e.epoch ?? "?"}`;
  const members = e.view ? `view ${e.view.id} [${e.view.members.join(",")}]` : "";
  return `${members} changed [${(e.changed ?? []).join(",")}] ${e.cause ?? ""}`.trim();
}

function eventTable(events: readonly EventRecord[]): string {
  return formatTable(
    ["action", "at", "type", "node", "addr", "ok", "detail"],
    events.map((e) => [e.action, time(e.at), e.type, e.node, e.addr, e.ok, eventDetail(e)]),
  );
}

/** How far back the log reaches, for the line under a listing. */
function reachLine(reach: LogReach): string {
  if (reach.firstSeq === undefined) return "the action log is empty";
  const from = reach.firstAt !== undefined ? time(reach.firstAt) : "?";
  const keeps = [
    reach.maxAgeMs !== undefined ? `${Math.round((reach.maxAgeMs / 86_400_000) * 100) / 100} days` : "",
    reach.maxBytes !== undefined ? `${Math.round(reach.maxBytes / 1024 / 1024)} MiB` : "",
  ]
    .filter(Boolean)
    .join(", ");
  return `the action log reaches back to ${from} (sequence ${reach.firstSeq} of ${reach.lastSeq}, ${reach.records} records, ${Math.round(reach.bytes / 1024)} KiB${keeps ? `; keeps ${keeps}` : ""})`;
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

/** A reply's data as the log holds it: whole, or its start and how much was cut. */
function dataOf(r: ReplyRecord): string {
  if (r.truncated) return `${r.dataText ?? ""}… (truncated: ${r.dataBytes ?? "?"} bytes in all)`;
  if ("data" in r) return JSON.stringify(r.data, null, 2);
  return `${r.summary} (a summary: written before replies kept their data)`;
}

function resultOf(r: { ok?: 0 | 1 | undefined; rcode: number; error?: string | undefined }): string {
  const ok = r.ok ?? (r.rcode < 0 ? 0 : 1);
  return `result ${ok} (${r.error ?? `rcode ${r.rcode}`})`;
}

/** One action as blocks: the request, each node's reply (address, result, data), the outcome. */
function showText(records: readonly ActionRecord[]): string {
  return records
    .map((r) => {
      if (r.kind === "request")
        return `request  ${time(r.at)}  via node ${r.node}: ${r.role} ${r.src} ${r.type} dst=${r.dst} seq=${r.seq}\nparams: ${paramsOf(r)}`;
      if (r.kind === "reply")
        return `reply    ${time(r.at)}  node ${r.node} at ${r.addr ?? "(no address)"}: ${resultOf(r)}, ${r.count} entries, via node ${r.via}\n${dataOf(r)}`;
      if (r.kind === "outcome")
        return `outcome  ${time(r.at)}  node ${r.node}: ${resultOf({ rcode: r.rcode, ...(r.error ? { error: r.error } : {}) })}, ${r.ok} ok, ${r.failed} failed, took ${elapsed(r.durationMs) ?? "?"}`;
      return `event    ${time(r.at)}  ${r.type} by node ${r.node}${r.addr ? ` at ${r.addr}` : ""}: ok ${r.ok}, ${eventDetail(r)}`;
    })
    .join("\n\n");
}

function openLog(t: { connection: ConstructorParameters<typeof JetStreamActionLog>[0] }, g: GlobalOptions) {
  return new JetStreamActionLog(t.connection, {
    cluster: g.cluster,
    // Each fetch and API answer waits --timeout at most; a stalled fetch is retried from where it stopped.
    timeoutMs: Math.min(g.timeout, 10_000),
    readDeadlineMs: Math.max(30_000, g.timeout * 6),
  });
}

/** Runs a read; a log that cannot be read is one clear error, never a hang. */
async function reading<T>(what: string, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (error) {
    if (error instanceof ActionLogError)
      throw new CommandError(`could not read the action log (${what}): ${error.message}`, EXIT.unreachable, {
        cause: error,
      });
    throw error;
  }
}

export function addActionCommands(program: Command): void {
  const actions = program
    .command("actions")
    .description(
      "the action log: every administrative request, each node's reply and the outcome; the cluster's events",
    )
    .option("--limit <n>", "the newest N actions", count, 20)
    .option("--node <id>", "only actions sent to this node (or to all)", nodeId)
    .option(
      "--type <type>",
      "only actions of this request type (e.g. KILL), or with --events this event type",
    )
    .option(
      "--events",
      "list the cluster's events instead: COMMIT, COORDINATOR, JOIN, DISCONNECT, PARTITION, MERGE",
    )
    .addHelpText(
      "after",
      [
        "",
        "Reads the JetStream stream DVS_ACTIONS_<cluster> (admin user), back from its end, by subject:",
        "the requests, then their outcomes. Oldest first; an action whose node stopped before it ended",
        "shows (no outcome). The last line says how far back the log reaches and what it keeps.",
        "Records that fail validation, or whose subject does not name the node that wrote them, are",
        "skipped and counted on stderr. A read that stalls is retried from where it stopped.",
        "",
        "Examples:",
        "  $ dvsctl actions --limit 5",
        "  $ dvsctl actions --type KILL --node 2",
        "  $ dvsctl actions --events --type COORDINATOR",
        "  $ dvsctl actions show 01JD3V6Q8W4X5Y6Z7A8B9C0D1E",
        "  $ dvsctl actions retention --max-age-days 30 --max-megabytes 512",
      ].join("\n"),
    )
    .action(async (opts: { limit: number; node?: number; type?: string; events?: boolean }, cmd: Command) => {
      await withConnection(cmd, async (t, g) => {
        const log = openLog(t, g);
        const limit = Math.max(1, opts.limit);
        const type = opts.type?.replace(/^RQST_/, "").toUpperCase();
        if (opts.events) {
          if (type !== undefined && !(EVENT_TYPES as readonly string[]).includes(type))
            throw new CommandError(
              `--type ${type}: an event is one of ${EVENT_TYPES.join(", ")}`,
              EXIT.usage,
            );
          const events = await reading("events", () =>
            log.events({ limit, ...(type ? { type: type as EventRecord["type"] } : {}) }),
          );
          if (g.json) for (const e of events) process.stdout.write(`${JSON.stringify(e)}\n`);
          else process.stdout.write(`${events.length ? eventTable(events) : "no events"}\n`);
        } else {
          const listed = await reading("list", () =>
            log.list({
              limit,
              ...(opts.node !== undefined ? { node: opts.node } : {}),
              ...(type !== undefined ? { type } : {}),
            }),
          );
          if (g.json) for (const a of listed) process.stdout.write(`${JSON.stringify(a)}\n`);
          else process.stdout.write(`${listed.length ? listTable(listed) : "no actions"}\n`);
        }
        const reach = await reading("stream info", () => log.reach());
        // With --json the listing stays one object per line on stdout; the reach goes to stderr.
        (g.json ? process.stderr : process.stdout).write(`${reachLine(reach)}\n`);
        reportSkipped(log);
      });
    });

  actions
    .command("show <id>")
    .description(
      "every record of one action: the request, each node's reply (address, result, data), the outcome",
    )
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      if (!actionIdSchema.safeParse(id).success)
        throw new CommandError(`${JSON.stringify(id)} is not an action id`, EXIT.usage);
      await withConnection(cmd, async (t, g) => {
        const log = openLog(t, g);
        const records = await reading("show", () => log.show(id));
        reportSkipped(log);
        if (records.length === 0) throw new CommandError(`no action ${id} in the log`, EXIT.replyError);
        if (g.json) for (const r of records) process.stdout.write(`${JSON.stringify(r)}\n`);
        else process.stdout.write(`${showText(records)}\n`);
      });
    });

  actions
    .command("retention")
    .description("set the action log stream's retention (admin): how long and how many megabytes it keeps")
    .requiredOption("--max-age-days <days>", "how long records are kept", Number)
    .requiredOption("--max-megabytes <mb>", "the stream's size limit; the oldest records go first", count)
    .addHelpText(
      "after",
      "\nNodes create the stream with their config's actions.maxAgeDays and actions.maxMegabytes but never\nchange an existing one (a node that could shorten the retention could purge the log): apply\nchanged values here, as admin.",
    )
    .action(async (opts: { maxAgeDays: number; maxMegabytes: number }, cmd: Command) => {
      if (!Number.isFinite(opts.maxAgeDays) || opts.maxAgeDays < 1 / 24 || opts.maxAgeDays > 36_500)
        throw new CommandError("--max-age-days: a number from 1/24 to 36500", EXIT.usage);
      await withConnection(cmd, async (t, g) => {
        const log = new JetStreamActionLog(t.connection, {
          cluster: g.cluster,
          timeoutMs: g.timeout,
          maxAgeMs: opts.maxAgeDays * 86_400_000,
          maxBytes: opts.maxMegabytes * 1024 * 1024,
        });
        const { before, after } = await reading("retention", () => log.applyLimits());
        if (g.json) process.stdout.write(`${JSON.stringify({ stream: log.stream, before, after })}\n`);
        else process.stdout.write(`${log.stream}: ${JSON.stringify(before)} -> ${JSON.stringify(after)}\n`);
      });
    });
}
