#!/usr/bin/env -S node --max-semi-space-size=1 --optimize-for-size
// dvsd: the DVS node daemon (`dvsd run`) and the local cluster launcher (`dvsd up`).
import { resolve } from "node:path";
import { Command, InvalidArgumentError, Option } from "commander";
import { VERSION } from "../client/wire.js";
import { generateAdminKey } from "../daemon/adminKey.js";
import { loadConfig } from "../daemon/config.js";
import { runDaemon } from "../daemon/daemon.js";
import { ConfigError, NatsServerNotFoundError, NatsServerStartError } from "../daemon/errors.js";
import { launchCluster } from "../daemon/launcher.js";
import {
  ANY_CLUSTER,
  DEV_NODE_COUNT,
  devServerConfig,
  nodeKeyFiles,
  renderAccounts,
  renderNatsConfig,
} from "../daemon/natsAccounts.js";
import { loadSharedNodeConfig } from "../daemon/upConfig.js";
import { addConsoleCommand, CONSOLE_PORT } from "./dvsd/console.js";

const logLevels = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

/** A list of node ids: `1,2,5` or ranges `1-16`, or both (`1-3,7`). */
function nodeIds(value: string): number[] {
  const ids = new Set<number>();
  for (const part of value.split(",")) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    const from = Number(m?.[1]);
    const to = m?.[2] === undefined ? from : Number(m[2]);
    if (!m || from > to || to > 65_535 || to - from > 4_096) {
      throw new InvalidArgumentError("expected node ids such as 1,2,3 or 1-16");
    }
    for (let id = from; id <= to; id++) ids.add(id);
  }
  return [...ids].sort((a, b) => a - b);
}

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
  .addOption(
    new Option(
      "--admin-keys <keys>",
      "public keys (U…) of the admin signing keys to trust, comma-separated (adminKeys)",
    ).env("DVS_ADMIN_KEYS"),
  )
  .option("--config <file>", "config file, YAML or JSON (see docs/config.md)")
  .option("--state <dir>", "state directory (default: ./data/node-<id>)")
  .addOption(new Option("--log-level <level>", "log level").choices(logLevels))
  .option(
    "--metrics-port <port>",
    "serve Prometheus metrics at http://<metrics.host>:<port>/metrics (metrics.port; 0: off, the default)",
    integer(0, 65_535),
  )
  .addHelpText(
    "after",
    "\nFlags override the config file; DVS_NATS_USER, DVS_NATS_PASS and DVS_ADMIN_KEYS stand for --user, --pass and --admin-keys.\nLogs are JSON lines (pino) on stdout.\nExample (node 1 of the shipped nats.conf): DVS_NATS_USER=node-1 DVS_NATS_PASS=dvs-node-1-dev dvsd run --node 1 --nats nats://127.0.0.1:4222",
  )
  .action(
    async (opts: {
      node?: number;
      cluster?: string;
      nats?: string;
      user?: string;
      pass?: string;
      adminKeys?: string;
      config?: string;
      state?: string;
      logLevel?: string;
      metricsPort?: number;
    }) => {
      const config = loadConfig(opts.config, {
        node: opts.node,
        cluster: opts.cluster,
        adminKeys: opts.adminKeys
          ?.split(",")
          .map((k) => k.trim())
          .filter((k) => k.length > 0),
        stateDir: opts.state,
        nats: {
          ...(opts.nats ? { servers: opts.nats.split(",") } : {}),
          ...(opts.user !== undefined ? { user: opts.user } : {}),
          ...(opts.pass !== undefined ? { pass: opts.pass } : {}),
        },
        log: opts.logLevel ? { level: opts.logLevel } : undefined,
        metrics: opts.metricsPort !== undefined ? { port: opts.metricsPort } : undefined,
      });
      process.exitCode = await runDaemon(config);
    },
  );

program
  .command("up")
  .description(
    "start a local cluster: nats-server with one identity per node, and N nodes, each its own process; Ctrl-C stops all",
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
    "NATS client port (reuses a server already listening there only if it has the cluster's accounts and JetStream)",
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
  .option(
    "--metrics-port <port>",
    "Prometheus metrics port of node 1 on 127.0.0.1; node i takes <port>+i-1 (0: no metrics)",
    integer(0, 65_535),
    9464,
  )
  .option("--cluster <name>", "cluster name", "dvs")
  .option(
    "--nats-config <file>",
    "a nats-server config to use as it is, with the development node users of nats.conf (default: write <data>/nats.conf with fresh node passwords)",
  )
  .addOption(new Option("--log-level <level>", "nodes' log level").choices(logLevels).default("info"))
  .option("--ready-timeout <ms>", "how long to wait for every node to answer", integer(100, 600_000), 15_000)
  .option("--no-init", "do not send DVSINIT to the nodes once they agree on one view")
  .option(
    "--config <file>",
    "node config (YAML or JSON, as for dvsd run) given to every node: commands, scripts, timings, … (dvsd up sets node, cluster, nats, stateDir)",
  )
  .option(
    "--console-port <port>",
    "port of the web console it starts (viewer, on 127.0.0.1; 0: no console)",
    integer(0, 65_535),
    CONSOLE_PORT,
  )
  .action(
    async (opts: {
      nodes: number;
      servers: number;
      port: number;
      clusterPort: number;
      data: string;
      cluster: string;
      natsConfig?: string;
      logLevel: string;
      metricsPort: number;
      readyTimeout: number;
      init: boolean;
      consolePort: number;
      config?: string;
    }) => {
      // Checked before anything starts: a bad file is exit 2 with every bad key named.
      const nodeConfig = opts.config === undefined ? undefined : loadSharedNodeConfig(resolve(opts.config));
      process.exitCode = await launchCluster({
        nodes: opts.nodes,
        servers: opts.servers,
        port: opts.port,
        clusterPort: opts.clusterPort,
        dataDir: opts.data,
        cluster: opts.cluster,
        ...(opts.natsConfig !== undefined ? { natsConfig: resolve(opts.natsConfig) } : {}),
        logLevel: opts.logLevel,
        metricsPort: opts.metricsPort,
        init: opts.init,
        readyTimeoutMs: opts.readyTimeout,
        consolePort: opts.consolePort,
        ...(nodeConfig !== undefined ? { nodeConfig } : {}),
      });
    },
  );

program
  .command("admin-key")
  .description(
    "make the admin signing key (an nkey seed, mode 0600) if it is missing, and print its public key",
  )
  .option("--dir <dir>", "where to keep it, as admin.nk", "data")
  .addHelpText(
    "after",
    "\nThe public key goes into every node's adminKeys; dvsctl signs with the seed (--admin-key <dir>/admin.nk).",
  )
  .action((opts: { dir: string }) => {
    const key = generateAdminKey(resolve(opts.dir));
    process.stderr.write(`admin signing key: ${key.seedFile}\n`);
    process.stdout.write(`${key.publicKey}\n`);
  });

program
  .command("nats-accounts")
  .description(
    "print the accounts of a nats-server config: one user per node (an nkey each), admin, viewer and sys",
  )
  .option("--dev", "the whole development config, development passwords included (the shipped nats.conf)")
  .option("--cluster <name>", "the cluster the nodes belong to", "dvs")
  .option("--nodes <ids>", `node ids, e.g. 1,2,3 or 1-16 (default with --dev: 1-${DEV_NODE_COUNT})`, nodeIds)
  .option("--keys <dir>", "where the nodes' nkey seeds are kept (node-<id>.nk, made when missing)")
  .option(
    "--rotate <ids>",
    "give these nodes a new key, keeping the old one valid until its .old file is removed",
    nodeIds,
  )
  .option("--admin-password <hash>", "the admin user's password, preferably its bcrypt hash ($2a$…)")
  .option("--viewer-password <hash>", "the viewer user's password, preferably its bcrypt hash")
  .option("--sys-password <hash>", "the sys user's password, preferably its bcrypt hash")
  .addHelpText(
    "after",
    '\nExamples:\n  dvsd nats-accounts --dev > nats.conf\n  dvsd nats-accounts --cluster dvs --nodes 1-3 --keys /root/dvs-keys \\\n    --admin-password "$ADMIN_HASH" --viewer-password "$VIEWER_HASH" --sys-password "$SYS_HASH"\n(docs/deploy.md, "Identities")',
  )
  .action(
    (opts: {
      dev?: boolean;
      cluster: string;
      nodes?: number[];
      keys?: string;
      rotate?: number[];
      adminPassword?: string;
      viewerPassword?: string;
      sysPassword?: string;
    }) => {
      if (opts.cluster === ANY_CLUSTER) throw new InvalidArgumentError("--cluster must name one cluster");
      if (opts.dev) {
        const count = opts.nodes === undefined ? DEV_NODE_COUNT : Math.max(...opts.nodes);
        process.stdout.write(renderNatsConfig(devServerConfig(count, opts.cluster)));
        return;
      }
      const missing = [
        ["--nodes", opts.nodes],
        ["--keys", opts.keys],
        ["--admin-password", opts.adminPassword],
        ["--viewer-password", opts.viewerPassword],
        ["--sys-password", opts.sysPassword],
      ].filter(([, v]) => v === undefined);
      if (missing.length > 0) {
        process.stderr.write(
          `dvsd nats-accounts: missing ${missing.map(([f]) => f).join(", ")} (or --dev)\n`,
        );
        process.exitCode = 2;
        return;
      }
      let keys: ReturnType<typeof nodeKeyFiles>;
      try {
        keys = nodeKeyFiles(opts.keys as string, opts.nodes as number[], opts.rotate ?? []);
      } catch (error) {
        process.stderr.write(`dvsd nats-accounts: ${(error as Error).message}\n`);
        process.exitCode = 2;
        return;
      }
      for (const note of keys.notes) process.stderr.write(`${note}\n`);
      process.stdout.write(
        renderAccounts({
          cluster: opts.cluster,
          nodes: keys.accounts,
          admin: { password: opts.adminPassword as string },
          viewer: { password: opts.viewerPassword as string },
          sys: { password: opts.sysPassword as string },
        }),
      );
    },
  );

addConsoleCommand(program);

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
