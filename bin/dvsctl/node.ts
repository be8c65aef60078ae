// `dvsctl node info` (GETNODEINFO: a node's `node_usr`) and `dvsctl proxy
// info|stats` (GETPROXYINFO, GETPROXYSTS: the proxy pairs that carry process
// messages between two nodes, and their counters).
import { type Command, Option } from "commander";
import { ALL } from "../../client/wire.js";
import { nodeId, nodeTarget } from "./args.js";
import { computedView, listView, NODE_VIEW } from "./replies.js";
import { runRequest } from "./session.js";

/** GETPROXYINFO: two entries per node, the sender and the receiver of its pair toward the peer. */
export const PROXY_INFO_VIEW = listView(
  computedView({
    role: (r) => r.role,
    peer: (r) => r.peer,
    state: (r) => r.state,
    since: (r) => time(r.since),
    subject: (r) => r.subject,
    seq: (r) => r.seq,
    epoch: (r) => r.epoch,
  }),
);

type Counters = Record<string, unknown>;
const counters = (value: unknown): Counters =>
  typeof value === "object" && value !== null ? (value as Counters) : {};

/** GETPROXYSTS: one entry per pair of the node, with both directions' counters. */
export const PROXY_STATS_VIEW = listView(
  computedView({
    peer: (r) => r.peer,
    state: (r) => r.state,
    downs: (r) => r.downs,
    "sent msgs": (r) => counters(r.sent).msgs,
    "sent bytes": (r) => counters(r.sent).bytes,
    "sent errors": (r) => counters(r.sent).errors,
    "recv msgs": (r) => counters(r.received).msgs,
    "recv bytes": (r) => counters(r.received).bytes,
    missing: (r) => counters(r.received).missing,
    duplicates: (r) => counters(r.received).duplicates,
    rejected: (r) => counters(r.received).rejected,
  }),
);

/** A clock reading in ms since the epoch, as an ISO time. */
function time(value: unknown): string | undefined {
  return typeof value === "number" && Number.isFinite(value) ? new Date(value).toISOString() : undefined;
}

export function addNodeCommands(program: Command): void {
  const node = program.command("node").description("information about nodes (GETNODEINFO)");
  node
    .command("info")
    .description("a node's node_usr: incarnation, state, flags, view, DCs, proxies, traffic")
    .argument("[nodeid]", "the node described (default: every member of the view, each about itself)", nodeId)
    .addOption(
      new Option(
        "--node <id|all>",
        "node that takes the request (default: <nodeid> itself, or all); another node forwards it to <nodeid>",
      ).argParser(nodeTarget),
    )
    .addHelpText(
      "after",
      [
        "",
        "flags: 1 initialized (DVSINIT done), 2 inView, 4 minority.",
        "",
        "Examples:",
        "  $ dvsctl node info",
        "  $ dvsctl node info 2",
        "  $ dvsctl node info 3 --node 1 --json    # asked of node 1, which forwards it to node 3",
      ].join("\n"),
    )
    .action(async (nodeid: number | undefined, opts: { node?: number | typeof ALL }, cmd: Command) => {
      const dst = opts.node ?? nodeid ?? ALL;
      await runRequest(cmd, {
        type: "GETNODEINFO",
        params: nodeid === undefined ? {} : { nodeid },
        dst,
        view: NODE_VIEW,
      });
    });

  const proxy = program
    .command("proxy")
    .description("the proxy pairs that carry process messages between nodes (GETPROXYINFO, GETPROXYSTS)");
  proxy
    .command("info")
    .description("the sender and receiver of node --node's proxy pair toward <nodeid> (GETPROXYINFO)")
    .argument("<nodeid>", "the peer", nodeId)
    .requiredOption("--node <id>", "the node whose pair is shown", nodeId)
    .addHelpText(
      "after",
      [
        "",
        "A pair names two nodes, so both are needed. A node has no pair toward itself (EINVAL);",
        "ENOENT when it has no pair toward <nodeid>. `dvsctl proxy stats` lists every pair.",
        "",
        "Example:",
        "  $ dvsctl proxy info 2 --node 1",
      ].join("\n"),
    )
    .action(async (peer: number, opts: { node: number }, cmd: Command) => {
      await runRequest(cmd, {
        type: "GETPROXYINFO",
        params: { nodeid: peer },
        dst: opts.node,
        view: PROXY_INFO_VIEW,
      });
    });

  proxy
    .command("stats")
    .description("message counters of proxy pairs (GETPROXYSTS): every pair, or the pair toward [nodeid]")
    .argument("[nodeid]", "only the pair toward this peer", nodeId)
    .addOption(
      new Option("--node <id|all>", "node whose pairs are shown, or all: every member of the view")
        .argParser(nodeTarget)
        .default(ALL, "all"),
    )
    .addHelpText(
      "after",
      [
        "",
        "One row per node and pair. With [nodeid] and --node all, node <nodeid> itself answers",
        "ENOENT (no pair toward itself) and the exit status is 1: name the node with --node.",
        "",
        "Examples:",
        "  $ dvsctl proxy stats",
        "  $ dvsctl proxy stats 2 --node 1",
      ].join("\n"),
    )
    .action(async (peer: number | undefined, opts: { node: number | typeof ALL }, cmd: Command) => {
      await runRequest(cmd, {
        type: "GETPROXYSTS",
        params: peer === undefined ? {} : { nodeid: peer },
        dst: opts.node,
        view: PROXY_STATS_VIEW,
      });
    });
}
