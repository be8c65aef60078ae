#!/usr/bin/env node
// dvsctl: inspect and command a DVS cluster over NATS. With no flags it talks to
// the local cluster that `dvsd up` starts (nats://127.0.0.1:4222, cluster dvs).
// The commands live in bin/dvsctl/, one module per group.
import { Command, Option } from "commander";
import { ParamError } from "../client/params.js";
import { VERSION } from "../client/wire.js";
import { addActionCommands } from "./dvsctl/actions.js";
import { positive, unsigned } from "./dvsctl/args.js";
import { addClusterCommands } from "./dvsctl/cluster.js";
import { addDcCommands } from "./dvsctl/dc.js";
import { addDvsCommands } from "./dvsctl/dvs.js";
import { CommandError } from "./dvsctl/errors.js";
import { addFileCommands } from "./dvsctl/file.js";
import { addHostCommands } from "./dvsctl/host.js";
import { addNodeCommands } from "./dvsctl/node.js";
import { addProcCommands } from "./dvsctl/proc.js";
import { addRqstCommand } from "./dvsctl/rqst.js";
import { EXIT } from "./dvsctl/session.js";

const program = new Command()
  .name("dvsctl")
  .description("inspect and command a DVS cluster")
  .version(VERSION)
  .addOption(
    new Option("--nats <urls>", "NATS server URL(s), comma-separated")
      .env("DVS_NATS")
      .default("nats://127.0.0.1:4222"),
  )
  .addOption(new Option("--cluster <name>", "cluster name").env("DVS_CLUSTER").default("dvs"))
  .addOption(
    new Option("--user <user>", "NATS user (default: admin, the development user of nats.conf)")
      .env("DVS_USER")
      .default("admin"),
  )
  .addOption(
    new Option("--pass <password>", "NATS password (default: the development password of --user)").env(
      "DVS_PASS",
    ),
  )
  .addOption(new Option("--pass-file <file>", "read the NATS password from a file (first line)"))
  .addOption(new Option("--nkey-seed-file <file>", "authenticate with the nkey seed in this file"))
  .addOption(
    new Option("--tls-ca <file>", "TLS: the CA (PEM) that signed the NATS servers' certificates").env(
      "DVS_TLS_CA",
    ),
  )
  .addOption(
    new Option("--tls-cert <file>", "TLS: a client certificate (PEM), for servers that verify clients").env(
      "DVS_TLS_CERT",
    ),
  )
  .addOption(new Option("--tls-key <file>", "TLS: the client certificate's key (PEM)").env("DVS_TLS_KEY"))
  .addOption(
    new Option(
      "--context <file>",
      "a context file (YAML or JSON): servers, cluster, user, passFile or nkeySeedFile, tls, adminKey, role; flags and their environment variables win over it",
    ).env("DVS_CONTEXT"),
  )
  .addOption(
    new Option(
      "--role <role>",
      "send requests as admin (full subjects) or viewer (read-only subjects); default: viewer for user viewer, else admin",
    )
      .choices(["admin", "viewer"])
      .env("DVS_ROLE"),
  )
  .addOption(
    new Option(
      "--admin-key <file>",
      "the admin's nkey seed: signs requests that change nodes, which nodes require when the request goes to all of them or is passed on to another node (default: ./data/admin.nk, written by `dvsd up`, when it exists; `none`: do not sign)",
    ).env("DVS_ADMIN_KEY_FILE"),
  )
  .option("--json", "print the raw reply (RPLY) as one JSON line, for scripts", false)
  .option("--timeout <ms>", "how long to wait for answers", positive, 5_000)
  .option(
    "--accept-timeout <ms>",
    "a request to any node that no node acknowledges within this long is sent again to one live node (a frozen member may hold the first); 0 never resends",
    unsigned,
    300,
  )
  .showHelpAfterError()
  // Set before the subcommands are added, so they inherit it: usage errors exit 2, help exits 0.
  .exitOverride((err) => {
    const help = ["commander.helpDisplayed", "commander.version"].includes(err.code);
    process.exit(help || (err.code === "commander.help" && err.exitCode === 0) ? EXIT.ok : EXIT.usage);
  })
  .addHelpText(
    "after",
    [
      "",
      "Requests to all nodes (--node all) are answered by one node with one row per member of its view;",
      "a member that does not answer within --timeout (less a margin) is a row with ETIMEDOUT, and every",
      "node it knows that is out of its view (crashed, frozen, cut off) a row with EHOSTDOWN.",
      "",
      "Exit status: 0 every answer OK, 1 a node answered an error, 2 bad usage, 3 cluster or node unreachable,",
      "4 the NATS server refused the credentials or this user may not send that request.",
      "",
      "Against `dvsd up` no credentials are needed: dvsctl uses the development user admin.",
      "Use --user viewer for read-only access, and real credentials in production: a context file",
      "(--context or DVS_CONTEXT) keeps the servers, login and TLS files (docs/operations.md).",
      "Requests that change nodes (init, dc, proc, kill, command, …) are signed with the admin key",
      "(--admin-key; `dvsd up` writes data/admin.nk), so a node's stolen credentials cannot make another node act.",
      "",
      "Examples:",
      "  $ dvsctl members",
      "  $ dvsctl init",
      "  $ dvsctl dc init 1 --nodes 1,2,3 && dvsctl dc info 1",
      "  $ dvsctl --json node info 2",
      "  $ dvsctl --context ~/.config/dvs/prod.yaml members",
    ].join("\n"),
  );

addClusterCommands(program);
addDvsCommands(program);
addDcCommands(program);
addNodeCommands(program);
addProcCommands(program);
addHostCommands(program);
addRqstCommand(program);
addActionCommands(program);
addFileCommands(program);

try {
  await program.parseAsync();
} catch (error) {
  const e = error as Error;
  if (e instanceof CommandError) {
    process.stderr.write(`dvsctl: ${e.message}\n`);
    process.exitCode = e.exitCode;
  } else if (e instanceof ParamError) {
    process.stderr.write(`dvsctl: ${e.message}\n`);
    process.exitCode = EXIT.usage;
  } else if (["AuthorizationError", "PermissionDeniedError"].includes(e.name)) {
    process.stderr.write(`dvsctl: EPERM: ${e.message}\n`);
    process.exitCode = EXIT.denied;
  } else if (e.name === "ConnectError") {
    // Why it failed (a refused port, an untrusted certificate) is in the cause.
    const why = e.cause instanceof Error ? `: ${e.cause.message}` : "";
    process.stderr.write(`dvsctl: ${e.message}${why}\n`);
    process.exitCode = EXIT.unreachable;
  } else if (["TimeoutError", "NoRespondersError", "TransportClosedError"].includes(e.name)) {
    process.stderr.write(`dvsctl: ${e.message}\n`);
    process.exitCode = EXIT.unreachable;
  } else {
    process.stderr.write(`dvsctl: ${e.stack ?? e.message}\n`);
    process.exitCode = EXIT.replyError;
  }
}
