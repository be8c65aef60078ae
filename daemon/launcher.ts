// `dvsd up`: the main job on an embedded default. Writes a nats-server config
// with one fresh identity per node into its data dir and starts nats-server
// from it (or uses a server already listening on the port only when it has the
// cluster's accounts and JetStream), then each node as its own child process so
// one can be killed alone, shows the nodes once they all answer discovery and
// agree on one view of all of them, and stops everything on Ctrl-C / SIGTERM.
import { type ChildProcess, spawn } from "node:child_process";
import { chmodSync, closeSync, mkdirSync, openSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify as toYaml } from "yaml";
import { loadAdminSigner } from "../client/adminKey.js";
import { agreeOnView, collectStatus, formatMembers } from "../client/clusterStatus.js";
import { type Credentials, DEV_USERS } from "../client/credentials.js";
import { type DiscoveredNode, discoverNodes } from "../client/discovery.js";
import { DvsClient } from "../client/dvsClient.js";
import { formatTable } from "../client/table.js";
import type { NodeStatus } from "../protocol/messages.js";
import { type Rply, rcode } from "../protocol/messages.js";
import { connectNats, type NatsTransport } from "../transport/nats.js";
import { generateAdminKey } from "./adminKey.js";
import { startConsoleProcess } from "./consoleProcess.js";
import { devNodeCredentials, newPassword, nodeUserName, writeSecretFile } from "./credentials.js";
import { DEV_SYS_PASSWORD, renderNatsConfig } from "./natsAccounts.js";
import { type NatsCluster, startNatsCluster } from "./natsCluster.js";
import { canConnect, checkClusterServer, freePort, type NatsServer, startNatsServer } from "./natsServer.js";
import { dvsdRunArgs } from "./nodeFlags.js";
import { nodeConfigValues, type SharedNodeConfig } from "./upConfig.js";

export interface LaunchOptions {
  readonly nodes: number;
  /** nats-servers: 1, or a local JetStream cluster of 3 (or 5) with R3 (R5) streams, nodes spread over them. */
  readonly servers: number;
  /** Client port of the first server; the others take the next ones. */
  readonly port: number;
  /** Route port of the first server (a cluster only); the others take the next ones. */
  readonly clusterPort: number;
  readonly dataDir: string;
  readonly cluster: string;
  /**
   * A nats-server config to use as it is, whose node users are the development
   * ones of the shipped nats.conf; absent, `dvsd up` writes its own with fresh
   * node passwords (`<data>/nats.conf`).
   */
  readonly natsConfig?: string;
  readonly logLevel: string;
  /** Longest wait for every node to answer discovery, and again for them to agree on one view. */
  readonly readyTimeoutMs: number;
  /** Send DVSINIT to ALL once the view holds every node (nodes already initialised keep their DVS). */
  readonly init: boolean;
  /** Prometheus metrics port of node 1 on 127.0.0.1; node i serves on this + i - 1. 0 or absent: none. */
  readonly metricsPort?: number;
  /** Port of the web console (`dvsd console`, viewer) started once the cluster is up; absent or 0: none. */
  readonly consolePort?: number;
  /** A node config (`dvsd up --config`) under every node's own settings: allow-list, scripts, timings. */
  readonly nodeConfig?: SharedNodeConfig;
}

interface Child {
  readonly node: number;
  readonly process: ChildProcess;
  readonly log: string;
}

/** Where `dvsd up` keeps the node passwords it hands out (`<data>/secrets/node-<id>.pass`, 0600). */
export const SECRETS_DIR = "secrets";

const dvsdBin = fileURLToPath(new URL("../bin/dvsd.js", import.meta.url));
const out = (line: string) => process.stdout.write(`${line}\n`);

/** The environment variables that would override a node's credentials or keys from its config file. */
const NODE_ENV_OVERRIDES = ["DVS_NATS_USER", "DVS_NATS_PASS", "DVS_ADMIN_KEYS"];

export async function launchCluster(options: LaunchOptions): Promise<number> {
  const dataDir = resolve(options.dataDir);
  mkdirSync(join(dataDir, "logs"), { recursive: true });
  const ids = Array.from({ length: options.nodes }, (_, i) => i + 1);
  const secretsDir = join(dataDir, SECRETS_DIR);
  mkdirSync(secretsDir, { recursive: true, mode: 0o700 });

  // One identity per node: fresh passwords in our own config, or the development
  // ones of a config we were given (the shipped nats.conf).
  let credentials = new Map<number, Credentials>(
    ids.map((id) => [
      id,
      options.natsConfig === undefined
        ? { user: nodeUserName(id), pass: newPassword() }
        : devNodeCredentials(id),
    ]),
  );
  // Written only when we start a server from it (not when we use one already running).
  const natsConfig = () => options.natsConfig ?? writeOwnConfig(dataDir, options.cluster, credentials);

  const adminKey = generateAdminKey(dataDir);

  let server: NatsServer | NatsCluster | undefined;
  const protectedPids = (): number[] => {
    const servers =
      server === undefined
        ? []
        : "members" in server
          ? server.members.map((m) => m.server?.pid)
          : [server.pid];
    return [process.pid, ...servers].filter((p): p is number => p !== undefined);
  };
  let urls = [`nats://127.0.0.1:${options.port}`];
  if (options.servers > 1) {
    const cluster = await startNatsCluster({
      config: natsConfig(),
      servers: options.servers,
      storeDir: join(dataDir, "nats"),
      name: options.cluster,
      clientPorts: Array.from({ length: options.servers }, (_, i) => options.port + i),
      clusterPorts: Array.from({ length: options.servers }, (_, i) => options.clusterPort + i),
    });
    server = cluster;
    urls = [...cluster.urls];
    for (const m of cluster.members) {
      out(`started nats-server ${m.name} (pid ${m.server?.pid}) at ${m.url}, routes on ${m.clusterPort}`);
    }
    out(`JetStream cluster of ${options.servers} servers is ready, data in ${join(dataDir, "nats")}`);
  } else {
    let port = options.port;
    let reuse = false;
    if (await canConnect(port)) {
      // Only a server with the cluster's accounts and JetStream: never an open one.
      const dev = new Map(ids.map((id) => [id, devNodeCredentials(id)]));
      const check = await checkClusterServer(urls[0] as string, {
        cluster: options.cluster,
        admin: DEV_USERS.admin,
        nodes: [...dev.values()],
      });
      if (check.ok) {
        reuse = true;
        credentials = dev;
        out(
          `using the nats-server already listening at ${urls[0]}: it has the accounts of nats.conf (one user per node) and JetStream`,
        );
      } else {
        port = await freePort();
        out(
          `not using what listens on port ${options.port}: ${check.reason}. Starting our own nats-server on port ${port} instead; ` +
            `to run on port ${options.port}, stop that server (a system nats-server: systemctl disable --now nats-server).`,
        );
      }
    }
    if (!reuse) {
      const natsLog = join(dataDir, "logs", "nats-server.log");
      const config = natsConfig();
      const started = await startNatsServer({
        config,
        port,
        storeDir: join(dataDir, "nats"),
        extraArgs: ["--log", natsLog],
      });
      server = started;
      urls = [started.url];
      out(
        `started nats-server (pid ${started.pid}) at ${started.url} from ${config}, JetStream data in ${join(dataDir, "nats")}, log ${natsLog}`,
      );
    }
  }
  const url = urls[0] as string;
  out(
    `admin signing key: ${adminKey.seedFile} (public key ${adminKey.publicKey}), trusted by every node; dvsctl signs mutating requests with it`,
  );

  const children: Child[] = [];
  let consoleChild: ChildProcess | undefined;
  let stopping = false;
  const stopAll = async (code: number): Promise<number> => {
    stopping = true;
    out("stopping nodes…");
    await Promise.all([
      ...children.map((c) => stopChild(c.process, 10_000)),
      ...(consoleChild ? [stopChild(consoleChild, 5_000)] : []),
    ]);
    if (server) {
      out("stopping nats-server…");
      await server.stop();
    }
    out("stopped");
    return code;
  };
  // On a cluster, the registry's bucket and the action log are replicated like the servers allow.
  const replicas = options.servers >= 5 ? 5 : options.servers >= 3 ? 3 : 1;
  const metricsBase = options.metricsPort ?? 0;
  if (metricsBase > 0 && metricsBase + options.nodes - 1 > 65_535) {
    out(
      `error: metrics ports ${metricsBase}…${metricsBase + options.nodes - 1} go past 65535; pick a lower --metrics-port`,
    );
    return stopAll(2);
  }
  mkdirSync(join(dataDir, "config"), { recursive: true });
  if (options.nodeConfig) out(`node config ${options.nodeConfig.file} applied to every node`);
  for (let node = 1; node <= options.nodes; node++) {
    const log = join(dataDir, "logs", `node-${node}.log`);
    // Checked before the node starts, which would then hold the port itself.
    const metricsLine = await metricsNote(metricsBase, node);
    // Each node starts on "its" server (round robin) and knows the others for failover.
    const home = (node - 1) % urls.length;
    const servers = [...urls.slice(home), ...urls.slice(0, home)];
    const configFile = join(dataDir, "config", `node-${node}.yaml`);
    // Its own identity, by a password file only it and we may read (not the
    // environment, which its event scripts and commands would otherwise see).
    const own = credentials.get(node) as Credentials;
    const passFile = join(secretsDir, `${own.user}.pass`);
    writeSecretFile(passFile, own.pass);
    const nodeSettings = {
      nats: { randomize: false, user: own.user, passFile },
      adminKeys: [adminKey.publicKey],
      election: { replicas },
      actions: { replicas },
      ...(metricsBase > 0 ? { metrics: { port: metricsBase + node - 1 } } : {}),
    };
    const from = options.nodeConfig ? ` over ${options.nodeConfig.file}` : "";
    writeFileSync(
      configFile,
      `# written by dvsd up${from}\n${toYaml(nodeConfigValues(options.nodeConfig?.values ?? {}, nodeSettings))}`,
      { mode: 0o600 },
    );
    // The node writes its log file itself (not through a pipe to us), so its
    // last lines survive even if the launcher is killed first.
    const logFd = openSync(log, "a");
    const child = spawn(
      process.execPath,
      dvsdRunArgs({
        bin: dvsdBin,
        node,
        cluster: options.cluster,
        nats: servers.join(","),
        config: configFile,
        state: join(dataDir, `node-${node}`),
        logLevel: options.logLevel,
      }),
      {
        stdio: ["ignore", logFd, logFd],
        env: {
          ...nodeEnvironment(process.env),
          DVS_PARENT_PID: String(process.pid),
          // KILL refuses these pids and their threads: this launcher and the nats-servers it started.
          DVS_PROTECTED_PIDS: protectedPids().join(","),
        },
      },
    );
    closeSync(logFd);
    child.once("exit", (code, signal) => {
      if (!stopping) out(`node ${node} (pid ${child.pid}) exited (${signal ?? `code ${code}`}); see ${log}`);
    });
    children.push({ node, process: child, log });
    out(`node ${node}: pid ${child.pid}, log ${log}${metricsLine}`);
  }

  const done = new Promise<number>((resolveDone) => {
    const onSignal = () => {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      void stopAll(0).then(resolveDone);
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  });

  let nodes: DiscoveredNode[];
  let members: { nodes: NodeStatus[]; agreed: boolean };
  let transport: NatsTransport | undefined;
  let init: InitOutcome | undefined;
  try {
    transport = await connectNats({
      servers: [url],
      name: "dvsd-up",
      connectTimeoutMs: 5_000,
      ...DEV_USERS.admin,
    });
    const stopped = () => stopping;
    nodes = await waitForNodes(transport, options.cluster, options.nodes, options.readyTimeoutMs, stopped);
    members = await waitForView(transport, options.cluster, ids, options.readyTimeoutMs, stopped);
    if (options.init && !stopping) {
      const client = new DvsClient(transport, {
        cluster: options.cluster,
        clientId: "dvsd-up",
        timeoutMs: 5_000,
        // DVSINIT to ALL is passed on between nodes: it must carry the admin's signature.
        signer: loadAdminSigner(adminKey.seedFile),
      });
      init = await initialize(client, options.cluster, ids);
    }
  } catch (error) {
    out(`could not list the nodes: ${(error as Error).message}`);
    await transport?.close().catch(() => {});
    return stopAll(1);
  }
  await transport.close().catch(() => {});
  // Ctrl-C while waiting: stopAll is already under way.
  if (stopping) return done;
  if (nodes.length < options.nodes) {
    out(
      `only ${nodes.length} of ${options.nodes} nodes answered within ${options.readyTimeoutMs} ms; see the logs above`,
    );
  }
  out("");
  out(
    formatTable(
      ["node", "incarnation", "pid", "version", "service id"],
      nodes.map((n) => [n.node, n.incarnation, n.pid, n.version, n.id]),
    ),
  );
  out("");
  if (!members.agreed) {
    out(
      `the nodes did not agree on one view of all ${options.nodes} within ${options.readyTimeoutMs} ms; their views:`,
    );
  }
  out(members.nodes.length > 0 ? formatMembers(members.nodes) : "no node answered the status request");
  out("");
  if (init !== undefined) {
    out(init.line);
    // Fewer nodes than started took DVSINIT: not a cluster that is up.
    if (!init.ok) return stopAll(1);
  }
  // dvsctl's defaults are 127.0.0.1:4222 and ./data/admin.nk; otherwise, say how to reach this cluster.
  const env = [
    ...(url === "nats://127.0.0.1:4222" ? [] : [`DVS_NATS=${url}`]),
    ...(adminKey.seedFile === resolve("data", "admin.nk") ? [] : [`DVS_ADMIN_KEY_FILE=${adminKey.seedFile}`]),
  ];
  const exports = env.length > 0 ? `export ${env.join(" ")}; ` : "";
  if (options.consolePort !== undefined && options.consolePort > 0) {
    const started = await startConsoleProcess({
      bin: dvsdBin,
      nats: url,
      cluster: options.cluster,
      port: options.consolePort,
      log: join(dataDir, "logs", "console.log"),
      env: process.env,
    });
    consoleChild = started.process;
    out(started.ok ? `console: ${started.url} (viewer)` : `the console did not start: ${started.reason}`);
    if (stopping) return done;
  }
  out(
    `cluster "${options.cluster}" is up at ${url}; try: ${exports}npx dvsctl members, npx dvsctl watch   (Ctrl-C stops everything)`,
  );
  return done;
}

/** What DVSINIT to ALL did: `ok` only when every node started took it (or already had a DVS). */
export interface InitOutcome {
  readonly ok: boolean;
  readonly line: string;
  /** Nodes that did not answer DVSINIT at all. */
  readonly missing: readonly number[];
  /** Nodes that answered with an error other than EEXIST. */
  readonly failed: readonly number[];
}

/** Judges the RPLY of DVSINIT to ALL against the nodes that were started. */
export function initOutcome(cluster: string, ids: readonly number[], rply: Rply): InitOutcome {
  const entries = Array.isArray(rply.data) ? (rply.data as Rply[]) : [];
  const bySrc = new Map(entries.map((e) => [e.src, e]));
  const fresh = ids.filter((id) => (bySrc.get(id)?.rcode ?? -1) >= 0);
  const already = ids.filter((id) => bySrc.get(id)?.rcode === rcode("EEXIST"));
  const failed = ids.filter((id) => {
    const code = bySrc.get(id)?.rcode;
    return code !== undefined && code < 0 && code !== rcode("EEXIST");
  });
  // An entry for a node that did not answer in time (ETIMEDOUT, EHOSTDOWN) is an error entry too.
  const missing = ids.filter((id) => !bySrc.has(id));
  const ok = failed.length === 0 && missing.length === 0 && rply.rcode >= 0;
  if (ok) {
    return {
      ok,
      missing,
      failed,
      line: `DVS "${cluster}" initialised on ${fresh.length} node(s)${already.length ? `, already on ${already.length}` : ""}`,
    };
  }
  const errors = failed.map((id) => `node ${id}: ${errorName(bySrc.get(id))}`);
  return {
    ok,
    missing,
    failed,
    line:
      `error: DVSINIT reached ${fresh.length + already.length} of the ${ids.length} nodes started` +
      (entries.length === 0 && rply.rcode < 0 ? `; node ${rply.src} refused it: ${errorName(rply)}` : "") +
      (missing.length ? `; no answer from node ${missing.join(", ")}` : "") +
      (errors.length ? `; failed on ${errors.join(", ")}` : "") +
      " (see their logs)",
  };
}

function errorName(entry: Rply | undefined): string {
  const data = entry?.data as { error?: unknown } | undefined;
  return typeof data?.error === "string" ? data.error : String(entry?.rcode);
}

/** How long `dvsd up` asks DVSINIT again while the action log cannot be written yet. */
const INIT_RETRY_MS = 20_000;

/** DVSINIT to ALL with the cluster's name; a failed request is a failed outcome naming every node. */
async function initialize(client: DvsClient, cluster: string, ids: readonly number[]): Promise<InitOutcome> {
  try {
    // A fresh JetStream cluster may still be placing the action log's replicas: a change that
    // cannot be logged is refused whole (EAGAIN, nothing changed), so it is asked again a while.
    const until = Date.now() + INIT_RETRY_MS;
    for (;;) {
      const rply = await client.request("DVSINIT", { name: cluster }, { gatherTimeoutMs: 4_000 });
      const refusedWhole = rply.rcode === rcode("EAGAIN") && !Array.isArray(rply.data);
      if (!refusedWhole || Date.now() > until) return initOutcome(cluster, ids, rply);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  } catch (error) {
    return {
      ok: false,
      missing: ids,
      failed: [],
      line: `error: could not initialise the DVS on node ${ids.join(", ")}: ${(error as Error).message}`,
    };
  }
}

/** Where node `node` serves its metrics, for its line; a port something else holds is said so. */
async function metricsNote(base: number, node: number): Promise<string> {
  if (base <= 0) return "";
  const port = base + node - 1;
  if (await canConnect(port)) return `, no metrics: port ${port} is in use (another program? --metrics-port)`;
  return `, metrics http://127.0.0.1:${port}/metrics`;
}

/** A node's environment: ours, without what would override the credentials and keys of its config file. */
export function nodeEnvironment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const clean = { ...env };
  for (const name of NODE_ENV_OVERRIDES) delete clean[name];
  return clean;
}

/** Writes `<data>/nats.conf` (0600) for `cluster` with one user per node; returns its path. */
function writeOwnConfig(
  dataDir: string,
  cluster: string,
  credentials: ReadonlyMap<number, Credentials>,
): string {
  const file = join(dataDir, "nats.conf");
  const text = renderNatsConfig({
    header: [
      "Written by `dvsd up` at each start: one user per node, with a fresh password",
      `(also in ${join(dataDir, SECRETS_DIR)}/node-<id>.pass, each read by its node only).`,
      "admin and viewer keep the development passwords of the shipped nats.conf, for dvsctl.",
    ],
    cluster,
    nodes: [...credentials].map(([node, c]) => ({ node, secrets: [{ password: c.pass }] })),
    admin: { password: DEV_USERS.admin.pass },
    viewer: { password: DEV_USERS.viewer.pass },
    sys: { password: DEV_SYS_PASSWORD },
  });
  writeFileSync(file, text, { mode: 0o600 });
  chmodSync(file, 0o600);
  return file;
}

async function waitForNodes(
  transport: NatsTransport,
  cluster: string,
  want: number,
  timeoutMs: number,
  stopped: () => boolean,
): Promise<DiscoveredNode[]> {
  const deadline = Date.now() + timeoutMs;
  let nodes: DiscoveredNode[] = [];
  while (Date.now() < deadline && !stopped()) {
    nodes = await discoverNodes(transport.connection, cluster, 300);
    if (nodes.length >= want) break;
  }
  return nodes;
}

/** Polls every node's status until they all report the same view of exactly `ids`, or the deadline. */
async function waitForView(
  transport: NatsTransport,
  cluster: string,
  ids: readonly number[],
  timeoutMs: number,
  stopped: () => boolean,
): Promise<{ nodes: NodeStatus[]; agreed: boolean }> {
  const deadline = Date.now() + timeoutMs;
  let nodes: NodeStatus[] = [];
  for (;;) {
    const left = deadline - Date.now();
    nodes = (await collectStatus(transport, { cluster, timeoutMs: Math.max(1, Math.min(left, 500)) })).nodes;
    if (agreeOnView(nodes, ids)) return { nodes, agreed: true };
    if (Date.now() + 100 >= deadline || stopped()) return { nodes, agreed: false };
    await new Promise((r) => setTimeout(r, 100));
  }
}

function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolveStop) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    child.once("exit", () => {
      clearTimeout(timer);
      resolveStop();
    });
    child.kill("SIGTERM");
  });
}
