// dvsctl's DVS commands: `info` (GETDVSINFO), `init` (DVSINIT) and `end`
// (DVSEND). info and init go to every member of the view unless --node says
// otherwise; end takes one node, since it makes that node leave the DVS.
import { type Command, Option } from "commander";
import { ALL } from "../../client/wire.js";
import { count, nodeId, nodeTarget, unsigned } from "./args.js";
import { DVS_VIEW, EMPTY_VIEW } from "./replies.js";
import { runRequest } from "./session.js";

/** DVSINIT's `dvs_usr` fields, as options. */
const DVS_FIELDS = [
  ["--nr-dcs <n>", "nr_dcs", "most DCs", count],
  ["--nr-nodes <n>", "nr_nodes", "most nodes", count],
  ["--nr-procs <n>", "nr_procs", "most processes per DC", count],
  ["--nr-tasks <n>", "nr_tasks", "most tasks per DC", count],
  ["--nr-sysprocs <n>", "nr_sysprocs", "most system processes per DC", count],
  ["--max-copybuf <bytes>", "max_copybuf", "largest copy buffer", count],
  ["--max-copylen <bytes>", "max_copylen", "largest copy", count],
  ["--dbglvl <n>", "dbglvl", "debug level", unsigned],
] as const;

const nodeOption = () =>
  new Option("--node <id|all>", "node that answers, or all: every member of the view, one row each")
    .argParser(nodeTarget)
    .default(ALL, "all");

export function addDvsCommands(program: Command): void {
  program
    .command("info")
    .description("the DVS of each node (GETDVSINFO): its name and limits")
    .addOption(nodeOption())
    .addHelpText(
      "after",
      "\nA node that has not done DVSINIT answers ENOTINIT (exit status 1).\n\nExamples:\n  $ dvsctl info\n  $ dvsctl info --node 2 --json",
    )
    .action(async (opts: { node: number | typeof ALL }, cmd: Command) => {
      await runRequest(cmd, { type: "GETDVSINFO", params: {}, dst: opts.node, view: DVS_VIEW });
    });

  const init = program
    .command("init")
    .description("initialise the DVS on every node, or on one (DVSINIT)")
    .addOption(nodeOption())
    .option("--name <name>", "DVS name (1-64 characters; default dvs)");
  for (const [flag, , description, parse] of DVS_FIELDS) init.option(flag, description, parse);
  init
    .option("--dvs-version <version>", "the DVS version string (default: dvsd's)")
    .addHelpText(
      "after",
      [
        "",
        "Fields not given take the node's defaults. rcode is the node id on success;",
        "a node already initialised answers EEXIST (exit status 1) and keeps its DVS.",
        "A node that left with `dvsctl end` is out of the queue group and the multicast: only",
        "`dvsctl init --node <id>` reaches it, and it comes back into the view as a new incarnation.",
        "",
        "Examples:",
        "  $ dvsctl init",
        "  $ dvsctl init --node 3 --name lab --nr-dcs 8",
      ].join("\n"),
    )
    .action(async (opts: Record<string, unknown> & { node: number | typeof ALL }, cmd: Command) => {
      const params: Record<string, unknown> = {};
      if (opts.name !== undefined) params.name = opts.name;
      for (const [flag, field] of DVS_FIELDS) {
        const key = optionKey(flag);
        if (opts[key] !== undefined) params[field] = opts[key];
      }
      if (opts.dvsVersion !== undefined) params.version = opts.dvsVersion;
      await runRequest(cmd, { type: "DVSINIT", params, dst: opts.node, view: DVS_VIEW });
    });

  program
    .command("end")
    .description("end the DVS on one node (DVSEND): it leaves the view gracefully")
    .requiredOption("--node <id>", "the node that leaves (a node id; not all)", nodeId)
    .addHelpText(
      "after",
      [
        "",
        "The other nodes see it DISCONNECT at once. It keeps answering requests on its own",
        "subject (ENOTINIT to most); `dvsctl init --node <id>` brings it back as a new incarnation.",
        "",
        "Example:",
        "  $ dvsctl end --node 3",
      ].join("\n"),
    )
    .action(async (opts: { node: number }, cmd: Command) => {
      await runRequest(cmd, { type: "DVSEND", params: {}, dst: opts.node, view: EMPTY_VIEW });
    });
}

/** Commander's key for a flag: `--nr-dcs <n>` → `nrDcs`. */
function optionKey(flag: string): string {
  const long = flag.split(" ")[0]?.replace(/^--/, "") ?? "";
  return long.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}
