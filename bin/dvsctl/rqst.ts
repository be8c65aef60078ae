// `dvsctl rqst <TYPE>`: any request type with params given as key=value pairs
// or one JSON object, for the types that have no command of their own and for
// scripts. The table shows each reply's raw fields and data as JSON.
import { type Command, Option } from "commander";
import { parseParams } from "../../client/params.js";
import { formatTable } from "../../client/table.js";
import { ALL, REQUEST_TYPES, type Rply } from "../../client/wire.js";
import { nodeTarget } from "./args.js";
import { DATA_VIEW, rcodeLabel } from "./replies.js";
import { runRequest } from "./session.js";

export function addRqstCommand(program: Command): void {
  program
    .command("rqst")
    .description("send one request of any type and print the reply")
    .argument("<type>", `request type: ${REQUEST_TYPES.join(", ")}`)
    .addOption(
      new Option("--node <id|all>", "destination node, or all (every member of the view answers)")
        .argParser(nodeTarget)
        .default(ALL, "all"),
    )
    .option("--param <key=value...>", "a request parameter (repeatable; dotted keys nest)", [])
    .option("--params-json <json>", "all parameters as one JSON object")
    .addOption(new Option("--encoding <enc>", "wire encoding").choices(["cbor", "json"]).default("cbor"))
    .addHelpText(
      "after",
      [
        "",
        "--param values: numbers, true, false and null are typed; values starting with [ or { are JSON.",
        "Put the type before --param, which takes several values.",
        "",
        "Examples:",
        "  $ dvsctl rqst GETDCINFO --node 1 --param dcid=1",
        `  $ dvsctl rqst SETPRIV --node 2 --params-json '{"dcid":1,"endpoint":0,"priv":{"rqsts":["PS"],"endpoints":[]}}'`,
      ].join("\n"),
    )
    .action(
      async (
        type: string,
        opts: { node: number | typeof ALL; param: string[]; paramsJson?: string; encoding: "cbor" | "json" },
        cmd: Command,
      ) => {
        await runRequest(cmd, {
          type: type.toUpperCase(),
          params: parseParams(opts.param, opts.paramsJson),
          dst: opts.node,
          encoding: opts.encoding,
          view: DATA_VIEW,
          format: rawTable,
        });
      },
    );
}

/** Every field of each reply, data as full JSON. */
function rawTable(entries: readonly Rply[]): string {
  return formatTable(
    ["node", "type", "seq", "rcode", "count", "data"],
    entries.map((r) => [r.src, r.type, r.seq, rcodeLabel(r.rcode), r.count, JSON.stringify(r.data)]),
  );
}
