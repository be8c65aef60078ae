// `dvsctl dc …`: create, inspect and end DCs and change their nodes (DCINIT,
// GETDCINFO, DCEND, ADDNODE, DELNODE). Each node keeps its own DC table, so
// every command goes to all members of the view by default: a DC created on
// one node only is a DC the others do not know (until they sync on a JOIN).
import { type Command, Option } from "commander";
import { ALL } from "../../client/wire.js";
import { anyInteger, count, dcid, endpoint, nodeId, nodeList, nodeTarget, unsigned } from "./args.js";
import { DC_VIEW, EMPTY_VIEW } from "./replies.js";
import { runRequest } from "./session.js";

const ALL_NOTE =
  "Sent to every member of the view by default (--node all), so every node's DC table holds the same DC;\n" +
  "--node <id> changes or reads one node's table only. One row per node; exit status 1 if any node answered an error.";

const nodeOption = () =>
  new Option("--node <id|all>", "node whose DC table is used, or all: every member of the view")
    .argParser(nodeTarget)
    .default(ALL, "all");

type Target = { node: number | typeof ALL };

export function addDcCommands(program: Command): void {
  const dc = program
    .command("dc")
    .description("create, inspect and end DCs, add and remove their nodes")
    .addHelpText("after", `\n${ALL_NOTE}\n\nExample:\n  $ dvsctl dc init 1 --name web --nodes 1,2,3`);

  dc.command("init")
    .description("create a DC (DCINIT)")
    .argument("<dcid>", "the DC's id (0-65535)", dcid)
    .addOption(nodeOption())
    .option("--name <name>", "DC name (default dc<dcid>)")
    .option("--nodes <ids>", "its nodes, comma-separated (default none)", nodeList)
    .option("--flags <n>", "DC flags", unsigned)
    .option("--nr-procs <n>", "most processes (default: the DVS's nr_procs)", count)
    .option("--nr-tasks <n>", "most tasks (default: the DVS's nr_tasks)", count)
    .option("--nr-sysprocs <n>", "most system processes (default: the DVS's nr_sysprocs)", count)
    .option("--warn2proc <endpoint>", "endpoint warned of DC events (default -1: none)", endpoint)
    .option("--warnmsg <n>", "message type of those warnings", anyInteger)
    .addHelpText(
      "after",
      `\nrcode is the DCID on success; EEXIST if the DC exists on that node.\n${ALL_NOTE}\n\nExample:\n  $ dvsctl dc init 1 --name web --nodes 1,2,3`,
    )
    .action(
      async (
        id: number,
        opts: Target & {
          name?: string;
          nodes?: number[];
          flags?: number;
          nrProcs?: number;
          nrTasks?: number;
          nrSysprocs?: number;
          warn2proc?: number;
          warnmsg?: number;
        },
        cmd: Command,
      ) => {
        const params = {
          dcid: id,
          ...(opts.name !== undefined ? { name: opts.name } : {}),
          ...(opts.nodes !== undefined ? { nodes: opts.nodes } : {}),
          ...(opts.flags !== undefined ? { flags: opts.flags } : {}),
          ...(opts.nrProcs !== undefined ? { nr_procs: opts.nrProcs } : {}),
          ...(opts.nrTasks !== undefined ? { nr_tasks: opts.nrTasks } : {}),
          ...(opts.nrSysprocs !== undefined ? { nr_sysprocs: opts.nrSysprocs } : {}),
          ...(opts.warn2proc !== undefined ? { warn2proc: opts.warn2proc } : {}),
          ...(opts.warnmsg !== undefined ? { warnmsg: opts.warnmsg } : {}),
        };
        await runRequest(cmd, { type: "DCINIT", params, dst: opts.node, view: DC_VIEW });
      },
    );

  dc.command("info")
    .description("a DC's configuration as each node holds it (GETDCINFO)")
    .argument("<dcid>", "the DC's id", dcid)
    .addOption(nodeOption())
    .addHelpText(
      "after",
      "\nA node that does not know the DC answers ENOENT (exit status 1).\n\nExamples:\n  $ dvsctl dc info 1\n  $ dvsctl dc info 1 --node 2 --json",
    )
    .action(async (id: number, opts: Target, cmd: Command) => {
      await runRequest(cmd, { type: "GETDCINFO", params: { dcid: id }, dst: opts.node, view: DC_VIEW });
    });

  dc.command("end")
    .description("end a DC (DCEND)")
    .argument("<dcid>", "the DC's id", dcid)
    .option("--force", "end the DC's running processes too (without it, EBUSY while any runs)")
    .addOption(nodeOption())
    .addHelpText("after", `\n${ALL_NOTE}\n\nExamples:\n  $ dvsctl dc end 1\n  $ dvsctl dc end 1 --force`)
    .action(async (id: number, opts: Target & { force?: boolean }, cmd: Command) => {
      const params = { dcid: id, ...(opts.force === true ? { force: true } : {}) };
      await runRequest(cmd, { type: "DCEND", params, dst: opts.node, view: EMPTY_VIEW });
    });

  dc.command("add-node")
    .description("add a node to a DC (ADDNODE)")
    .argument("<dcid>", "the DC's id", dcid)
    .argument("<nodeid>", "the node to add", nodeId)
    .addOption(nodeOption())
    .addHelpText(
      "after",
      `\nEEXIST if the node is in the DC already, ENOENT if there is no such DC.\n${ALL_NOTE}\n\nExample:\n  $ dvsctl dc add-node 1 4`,
    )
    .action(async (id: number, node: number, opts: Target, cmd: Command) => {
      await runRequest(cmd, {
        type: "ADDNODE",
        params: { dcid: id, nodeid: node },
        dst: opts.node,
        view: DC_VIEW,
      });
    });

  dc.command("del-node")
    .description("remove a node from a DC (DELNODE)")
    .argument("<dcid>", "the DC's id", dcid)
    .argument("<nodeid>", "the node to remove", nodeId)
    .addOption(nodeOption())
    .addHelpText(
      "after",
      `\nENOENT if there is no such DC or the node is not in it.\n${ALL_NOTE}\n\nExample:\n  $ dvsctl dc del-node 1 3`,
    )
    .action(async (id: number, node: number, opts: Target, cmd: Command) => {
      await runRequest(cmd, {
        type: "DELNODE",
        params: { dcid: id, nodeid: node },
        dst: opts.node,
        view: DC_VIEW,
      });
    });
}
