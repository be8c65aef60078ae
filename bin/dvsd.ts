#!/usr/bin/env -S node --max-semi-space-size=1 --optimize-for-size
// dvsd: the DVS node daemon (`dvsd run`) and the local cluster launcher (`dvsd up`).
import { resolve } from "node:path";
import { Command, InvalidArgumentError, Option } from "commander";
import { loadConfig } from "../actors/config.js";
import { runDaemon } from "../actors/daemon.js";
import { ConfigError, NatsServerNotFoundError, NatsServerStartError } from "../actors/errors.js";
import { launchCluster } from "../actors/launcher.js";
import { VERSION } from "../actors/version.js";

const repoRoot = resolve(import.meta.dirname, "../..");
const logLevels = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

function integer(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
    return n;
  };
}

const program = new Command()
  .name("dvsd")
  .description("DVS node daemon: runs one node of a cluster over NATS, or a whole local cluster")
  .version(VERSION)
  .showHelpAfterError()
  // Set before the subcommands are added, so they inherit it: usage errors exit 2.
  .exitOverride((err) => {
    const ok = ["commander.helpDisplayed", "commander.version", "commander.help"].includes(err.code);
    process.exit(ok ? 0 : 2);
  });

program
  .command("run")
  .description("run one node daemon until SIGINT/SIGTERM")
  .option("--node <id>", "this node's id (0-65535); required here or in the config file", integer(0, 65_535))
  .option("--cluster <name>", "cluster name, the <c> of dvs.<c>.* subjects (default: dvs)")
  .option("--nats <urls>", "NATS server URL(s), comma-separated (default: nats://127.0.0.1:4222)")
  .addOption(new Option("--user <user>", "NATS user (nats.user)").env("DVS_NATS_USER"))
  .addOption(
    new Option("--pass <password>", "NATS password (nats.pass); prefer nats.passFile in a config file").env(
      "DVS_NATS_PASS",
    ),
  )
  .option("--config <file>", "config file, YAML or JSON (see docs/config.md)")
  .option("--state <dir>", "state directory (default: ./data/node-<id>)")
  .addOption(new Option("--log-level <level>", "log level").choices(logLevels))
  .addHelpText(
    "after",
    "\nFlags override the config file; DVS_NATS_USER and DVS_NATS_PASS stand for --user and --pass.\nLogs are JSON lines (pino) on stdout.\nExample: DVS_NATS_USER=node DVS_NATS_PASS=dvs-node-dev dvsd run --node 1 --nats nats://127.0.0.1:4222",
  )
  .action(
    async (opts: {
      node?: number;
      cluster?: string;
      nats?: string;
      user?: string;
      pass?: string;
      config?: string;
      state?: string;
      logLevel?: string;
    }) => {
      const config = loadConfig(opts.config, {
        node: opts.node,
        cluster: opts.cluster,
        stateDir: opts.state,
        nats: {
          ...(opts.nats ? { servers: opts.nats.split(",") } : {}),
          ...(opts.user !== undefined ? { user: opts.user } : {}),
          ...(opts.pass !== undefined ? { pass: opts.pass } : {}),
        },
        log: opts.logLevel ? { level: opts.logLevel } : undefined,
      });
      process.exitCode = await runDaemon(config);
    },
  );

program
  .command("up")
  .description(
    "start a local cluster: nats-server from nats.conf and N nodes, each its own process; Ctrl-C stops all",
  )
  .option("--nodes <n>", "number of nodes", integer(1, 256), 3)
  .option(
    "--servers <n>",
    "nats-servers: 1, or a local JetStream cluster of 3 or 5 (streams and the registry replicated on all)",
    (value: string): number => {
      // An even count adds no failure tolerance to a JetStream cluster's majority.
      if (!["1", "3", "5"].includes(value)) throw new InvalidArgumentError("expected 1, 3 or 5");
      return Number(value);
    },
    1,
  )
  .option(
    "--port <port>",
    "NATS client port (reuses a server already listening there)",
    integer(1, 65_535),
    4222,
  )
  .option(
    "--cluster-port <port>",
    "route port of the first server of a cluster (--servers > 1); the others take the next ones",
    integer(1, 65_535),
    6222,
  )
  .option("--data <dir>", "data directory: NATS store, node state, logs", "data")
  .option("--cluster <name>", "cluster name", "dvs")
  .option("--nats-config <file>", "nats-server config file", resolve(repoRoot, "nats.conf"))
  .addOption(new Option("--log-level <level>", "nodes' log level").choices(logLevels).default("info"))
  .option("--ready-timeout <ms>", "how long to wait for every node to answer", integer(100, 600_000), 15_000)
  .option("--no-init", "do not send DVSINIT to the nodes once they agree on one view")
  .action(
    async (opts: {
      nodes: number;
      servers: number;
      port: number;
      clusterPort: number;
      data: string;
      cluster: string;
      natsConfig: string;
      logLevel: string;
      readyTimeout: number;
      init: boolean;
    }) => {
      process.exitCode = await launchCluster({
        nodes: opts.nodes,
        servers: opts.servers,
        port: opts.port,
        clusterPort: opts.clusterPort,
        dataDir: opts.data,
        cluster: opts.cluster,
        natsConfig: opts.natsConfig,
        logLevel: opts.logLevel,
        init: opts.init,
        readyTimeoutMs: opts.readyTimeout,
      });
    },
  );

try {
  await program.parseAsync();
} catch (error) {
  if (
    error instanceof ConfigError ||
    error instanceof NatsServerNotFoundError ||
    error instanceof NatsServerStartError
  ) {
    process.stderr.write(`dvsd: ${error.message}\n`);
    process.exitCode = 2;
  } else {
    process.stderr.write(
      `dvsd: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exitCode = 1;
  }
}
