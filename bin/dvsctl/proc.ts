// `dvsctl proc …`: processes, the actors that run in a DC (SPAWN, SEND,
// GETPROCINFO, MIGRATE, GETPRIV/SETPRIV, PROCEND). Any node routes a request
// about a process to the node hosting it, so by default dvsctl asks the lowest
// node of the DC that is in the view; SPAWN runs the process on the node asked.
import { type Command, Option } from "commander";
import type { DvsClient } from "../../client/dvsClient.js";
import { ALL, ANY_ENDPOINT, ANY_RQST, type NodeId, PROC_FLAGS, type Rply } from "../../client/wire.js";
import { dcid, endpoint, jsonObject, jsonValue, nodeId } from "./args.js";
import { CommandError } from "./errors.js";
import { computedView, entriesOf, errorMessage, rcodeLabel, shortJson } from "./replies.js";
import { type DstResolver, EXIT, type GlobalOptions, runRequest, sendOptions } from "./session.js";

/** GETPROCINFO, SPAWN, MIGRATE, PROCEND: a process's `proc_usr`. */
export const PROC_VIEW = computedView({
  dcid: (r) => r.dcid,
  endpoint: (r) => r.endpoint,
  host: (r) => r.nodeid,
  name: (r) => r.name,
  machine: (r) => r.machine,
  state: (r) => r.state,
  status: (r) => r.status,
  value: (r) => (typeof r.value === "string" ? r.value : shortJson(r.value, 30)),
  flags: (r) => procFlags(r.flags),
  delivered: (r) => r.delivered,
  pending: (r) => r.pending,
  waitmigr: (r) => r.waitmigr,
  epoch: (r) => r.epoch,
  context: (r) => shortJson(r.context, 40),
});

/** SEND: the message's sequence number and the node hosting the destination. */
export const SEND_VIEW = computedView({ seq: (r) => r.seq, host: (r) => r.nodeid });

/** GETPRIV, SETPRIV: the request types and endpoints a process may use. */
export const PRIV_VIEW = computedView({
  rqsts: (r) => (Array.isArray(r.rqsts) ? r.rqsts.map((t) => (t === ANY_RQST ? "* (any)" : t)) : r.rqsts),
  endpoints: (r) =>
    Array.isArray(r.endpoints)
      ? r.endpoints.map((e) => (e === ANY_ENDPOINT ? `${e} (any)` : e))
      : r.endpoints,
});

function procFlags(flags: unknown): string | undefined {
  if (typeof flags !== "number") return undefined;
  const names = Object.entries(PROC_FLAGS)
    .filter(([, bit]) => (flags & bit) !== 0)
    .map(([name]) => name.toLowerCase());
  return names.length ? `${flags} (${names.join(",")})` : String(flags);
}

const NODE_NOTE =
  "--node <id>: the node asked (default: the lowest node of the DC that is in the view, found with GETDCINFO to all).";

const nodeOption = () =>
  new Option("--node <id>", "the node asked (default: the lowest node of the DC in the view)").argParser(
    nodeId,
  );

/** The node to ask: `--node`, or the lowest node of DC `dcid` among the members that know the DC. */
function askNode(node: number | undefined, dc: number): NodeId | DstResolver {
  return node ?? ((client, g) => lowestDcNode(client, g, dc));
}

async function lowestDcNode(client: DvsClient, g: GlobalOptions, dc: number): Promise<NodeId> {
  const rply = await client.request("GETDCINFO", { dcid: dc }, sendOptions(g, ALL));
  const entries = entriesOf(rply, true);
  const known = entries.filter((e) => e.rcode >= 0);
  const answered = new Set(known.map((e) => e.src));
  const dcNodes = known.flatMap((e) => nodesOf(e)).filter((n) => answered.has(n));
  const lowest = dcNodes.sort((a, b) => a - b)[0];
  if (lowest !== undefined) return lowest;
  const why = entries.map(
    (e) => `node ${e.src}: ${rcodeLabel(e.rcode)}${e.rcode < 0 ? ` ${errorMessage(e) ?? ""}` : ""}`,
  );
  throw new CommandError(
    `no node of DC ${dc} is in the view and knows the DC (GETDCINFO: ${why.join("; ") || "no answer"}); name one with --node`,
    entries.some((e) => e.rcode < 0) ? EXIT.replyError : EXIT.unreachable,
  );
}

function nodesOf(rply: Rply): number[] {
  const nodes = (rply.data as { nodes?: unknown } | null)?.nodes;
  return Array.isArray(nodes) ? nodes.filter((n): n is number => typeof n === "number") : [];
}

export function addProcCommands(program: Command): void {
  const proc = program
    .command("proc")
    .description("spawn, message, inspect, migrate and end processes (actors running in a DC)")
    .addHelpText("after", `\n${NODE_NOTE}\n\nExample:\n  $ dvsctl proc spawn 1 counter --endpoint 5`);

  proc
    .command("spawn")
    .description("start a process from a registered machine (SPAWN)")
    .argument("<dcid>", "the DC it runs in", dcid)
    .argument("<machine>", "the registered machine's name (the examples: counter, kvCell)")
    .option("--endpoint <n>", "its endpoint (default: the lowest free one)", endpoint)
    .option("--name <name>", "its name (default <machine>-<endpoint>)")
    .option("--input-json <json>", "the machine's input, as JSON", jsonValue)
    .addOption(nodeOption())
    .addHelpText(
      "after",
      [
        "",
        "The process runs on the node asked, which must be a node of the DC (EINVAL otherwise).",
        "rcode is the endpoint (0 for a negative one); EEXIST if the endpoint is taken.",
        NODE_NOTE,
        "",
        "Example:",
        `  $ dvsctl proc spawn 1 counter --endpoint 5 --input-json '{"count":10}' --node 2`,
      ].join("\n"),
    )
    .action(
      async (
        dc: number,
        machine: string,
        opts: { endpoint?: number; name?: string; inputJson?: unknown; node?: number },
        cmd: Command,
      ) => {
        const params = {
          dcid: dc,
          machine,
          ...(opts.endpoint !== undefined ? { endpoint: opts.endpoint } : {}),
          ...(opts.name !== undefined ? { name: opts.name } : {}),
          ...(opts.inputJson !== undefined ? { input: opts.inputJson } : {}),
        };
        await runRequest(cmd, { type: "SPAWN", params, dst: askNode(opts.node, dc), view: PROC_VIEW });
      },
    );

  proc
    .command("send")
    .description("send a message to a process (SEND)")
    .argument("<dcid>", "the process's DC", dcid)
    .argument("<endpoint>", "the process's endpoint", endpoint)
    .requiredOption("--body-json <json>", "the message body, as JSON", jsonValue)
    .addOption(nodeOption())
    .addHelpText(
      "after",
      [
        "",
        "Messages from one requester through one node arrive in order. The reply gives the",
        "message's sequence number and the node hosting the process.",
        NODE_NOTE,
        "",
        "Example:",
        `  $ dvsctl proc send 1 5 --body-json '{"type":"inc","by":2}'`,
      ].join("\n"),
    )
    .action(async (dc: number, ep: number, opts: { bodyJson: unknown; node?: number }, cmd: Command) => {
      await runRequest(cmd, {
        type: "SEND",
        params: { dcid: dc, endpoint: ep, body: opts.bodyJson },
        dst: askNode(opts.node, dc),
        view: SEND_VIEW,
      });
    });

  proc
    .command("info")
    .description("a process's proc_usr: host, state, machine state, counters (GETPROCINFO)")
    .argument("<dcid>", "the process's DC", dcid)
    .argument("<endpoint>", "the process's endpoint", endpoint)
    .addOption(nodeOption())
    .addHelpText(
      "after",
      `\nENOENT if there is no such process. --json shows its machine's full context.\n${NODE_NOTE}\n\nExample:\n  $ dvsctl proc info 1 5 --json`,
    )
    .action(async (dc: number, ep: number, opts: { node?: number }, cmd: Command) => {
      await runRequest(cmd, {
        type: "GETPROCINFO",
        params: { dcid: dc, endpoint: ep },
        dst: askNode(opts.node, dc),
        view: PROC_VIEW,
      });
    });

  proc
    .command("migrate")
    .description("move a running process to another node, with its state (MIGRATE)")
    .argument("<dcid>", "the process's DC", dcid)
    .argument("<endpoint>", "the process's endpoint", endpoint)
    .argument("<toNode>", "the node it moves to (a node of the DC, in the view)", nodeId)
    .addOption(nodeOption())
    .addHelpText(
      "after",
      [
        "",
        "Messages sent to it during the move are delivered after it, on the new node.",
        "EINVAL if <toNode> is not a node of the DC, EHOSTDOWN if it is not in the view, EBUSY if it is moving.",
        NODE_NOTE,
        "",
        "Example:",
        "  $ dvsctl proc migrate 1 5 3",
      ].join("\n"),
    )
    .action(async (dc: number, ep: number, to: number, opts: { node?: number }, cmd: Command) => {
      await runRequest(cmd, {
        type: "MIGRATE",
        params: { dcid: dc, endpoint: ep, to },
        dst: askNode(opts.node, dc),
        view: PROC_VIEW,
      });
    });

  proc
    .command("priv")
    .description("a process's privileges (GETPRIV), or set them (SETPRIV with --set-json)")
    .argument("<dcid>", "the process's DC", dcid)
    .argument("<endpoint>", "the process's endpoint", endpoint)
    .option(
      "--set-json <json>",
      `new privileges: {"rqsts":[types],"endpoints":[endpoints]}; "*" is any type, ${ANY_ENDPOINT} any endpoint`,
      jsonObject,
    )
    .addOption(nodeOption())
    .addHelpText(
      "after",
      [
        "",
        "rqsts: the request types the process may make; endpoints: where it may send.",
        'A new process may do everything: rqsts ["*"], endpoints [65536].',
        NODE_NOTE,
        "",
        "Examples:",
        "  $ dvsctl proc priv 1 5",
        `  $ dvsctl proc priv 1 5 --set-json '{"rqsts":["GETDCINFO"],"endpoints":[6,7]}'`,
      ].join("\n"),
    )
    .action(
      async (
        dc: number,
        ep: number,
        opts: { setJson?: Record<string, unknown>; node?: number },
        cmd: Command,
      ) => {
        const set = opts.setJson !== undefined;
        await runRequest(cmd, {
          type: set ? "SETPRIV" : "GETPRIV",
          params: set ? { dcid: dc, endpoint: ep, priv: opts.setJson } : { dcid: dc, endpoint: ep },
          dst: askNode(opts.node, dc),
          view: PRIV_VIEW,
        });
      },
    );

  proc
    .command("end")
    .description("end a process (PROCEND)")
    .argument("<dcid>", "the process's DC", dcid)
    .argument("<endpoint>", "the process's endpoint", endpoint)
    .addOption(nodeOption())
    .addHelpText(
      "after",
      `\nThe reply is the process as it was. EBUSY while it migrates.\n${NODE_NOTE}\n\nExample:\n  $ dvsctl proc end 1 5`,
    )
    .action(async (dc: number, ep: number, opts: { node?: number }, cmd: Command) => {
      await runRequest(cmd, {
        type: "PROCEND",
        params: { dcid: dc, endpoint: ep },
        dst: askNode(opts.node, dc),
        view: PROC_VIEW,
      });
    });
}
