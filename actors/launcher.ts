// `dvsd up`: the main job on an embedded default. Starts nats-server from
// nats.conf (unless one already answers on the port), then each node as its
// own child process so one can be killed alone, shows the nodes once they all
// answer discovery and agree on one view of all of them, and stops everything
// on Ctrl-C / SIGTERM.
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify as toYaml } from "yaml";
import { DvsClient } from "../transport/client.js";
import { connectNats, type NatsTransport } from "../transport/nats.js";
import type { NodeStatus } from "../transport/protocol.js";
import { type Rply, rcode } from "../transport/protocol.js";
import { agreeOnView, collectStatus, formatMembers } from "./clusterStatus.js";
import { DEV_USERS } from "./credentials.js";
import { type DiscoveredNode, discoverNodes } from "./discovery.js";
import { type NatsCluster, startNatsCluster } from "./natsCluster.js";
import { canConnect, type NatsServer, startNatsServer } from "./natsServer.js";
import { DVSD_NODE_FLAGS } from "./nodeFlags.js";
import { formatTable } from "./table.js";

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
  readonly natsConfig: string;
  readonly logLevel: string;
  /** Longest wait for every node to answer discovery, and again for them to agree on one view. */
  readonly readyTimeoutMs: number;
  /** Send DVSINIT to ALL once the view holds every node (nodes already initialised keep their DVS). */
  readonly init: boolean;
}

interface Child {
  readonly node: number;
  readonly process: ChildProcess;
  readonly log: string;
}

const dvsdBin = fileURLToPath(new URL("../bin/dvsd.js", import.meta.url));
const out = (line: string) => process.stdout.write(`${line}\n`);

export async function launchCluster(options: LaunchOptions): Promise<number> {
  const dataDir = resolve(options.dataDir);
  mkdirSync(join(dataDir, "logs"), { recursive: true });
  let server: NatsServer | NatsCluster | undefined;
  let urls = [`nats://127.0.0.1:${options.port}`];
  const url = urls[0] as string;
  if (options.servers > 1) {
    const cluster = await startNatsCluster({
      config: options.natsConfig,
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
  } else if (await canConnect(options.port)) {
    out(`using the nats-server already listening at ${url}`);
  } else {
    server = await startNatsServer({
      config: options.natsConfig,
      port: options.port,
      storeDir: join(dataDir, "nats"),
    });
    out(
      `started nats-server (pid ${server.pid}) at ${server.url}, JetStream data in ${join(dataDir, "nats")}`,
    );
  }

  const children: Child[] = [];
  let stopping = false;
  const stopAll = async (code: number): Promise<number> => {
    stopping = true;
    out("stopping nodes…");
    await Promise.all(children.map((c) => stopChild(c.process, 10_000)));
    if (server) {
      out("stopping nats-server…");
      await server.stop();
    }
    out("stopped");
    return code;
  };

  // On a cluster, the registry's bucket and the action log are replicated like the servers allow.
  const replicas = options.servers >= 5 ? 5 : options.servers >= 3 ? 3 : 1;
  mkdirSync(join(dataDir, "config"), { recursive: true });
  for (let node = 1; node <= options.nodes; node++) {
    const log = join(dataDir, "logs", `node-${node}.log`);
    // Each node starts on "its" server (round robin) and knows the others for failover.
    const home = (node - 1) % urls.length;
    const servers = [...urls.slice(home), ...urls.slice(0, home)];
    const configFile = join(dataDir, "config", `node-${node}.yaml`);
    writeFileSync(
      configFile,
      `# written by dvsd up\n${toYaml({ nats: { randomize: false }, election: { replicas }, actions: { replicas } })}`,
    );
    // The node writes its log file itself (not through a pipe to us), so its
    // last lines survive even if the launcher is killed first.
    const logFd = openSync(log, "a");
    const child = spawn(
      process.execPath,
      [
        ...DVSD_NODE_FLAGS,
        dvsdBin,
        "run",
        "--node",
        String(node),
        "--cluster",
        options.cluster,
        "--nats",
        servers.join(","),
        "--config",
        configFile,
        "--state",
        join(dataDir, `node-${node}`),
        "--log-level",
        options.logLevel,
      ],
      {
        stdio: ["ignore", logFd, logFd],
        env: {
          ...process.env,
          DVS_PARENT_PID: String(process.pid),
          // The nodes of the embedded default are the `node` user of the shipped nats.conf.
          DVS_NATS_USER: DEV_USERS.node.user,
          DVS_NATS_PASS: DEV_USERS.node.pass,
        },
      },
    );
    closeSync(logFd);
    child.once("exit", (code, signal) => {
      if (!stopping) out(`node ${node} (pid ${child.pid}) exited (${signal ?? `code ${code}`}); see ${log}`);
    });
    children.push({ node, process: child, log });
    out(`node ${node}: pid ${child.pid}, log ${log}`);
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
  let initLine = "";
  try {
    transport = await connectNats({
      servers: [url],
      name: "dvsd-up",
      connectTimeoutMs: 5_000,
      ...DEV_USERS.admin,
    });
    const stopped = () => stopping;
    nodes = await waitForNodes(transport, options.cluster, options.nodes, options.readyTimeoutMs, stopped);
    const ids = Array.from({ length: options.nodes }, (_, i) => i + 1);
    members = await waitForView(transport, options.cluster, ids, options.readyTimeoutMs, stopped);
    if (options.init && members.agreed && !stopping) initLine = await initialise(transport, options);
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
  if (initLine) out(initLine);
  out(
    `cluster "${options.cluster}" is up at ${url}; try: npx dvsctl members, npx dvsctl watch   (Ctrl-C stops everything)`,
  );
  return done;
}

/** DVSINIT to ALL with the cluster's name; says how many nodes took it and how many already had a DVS. */
async function initialise(transport: NatsTransport, options: LaunchOptions): Promise<string> {
  const client = new DvsClient(transport, {
    cluster: options.cluster,
    clientId: "dvsd-up",
    timeoutMs: 5_000,
  });
  try {
    const rply = await client.request("DVSINIT", { name: options.cluster }, { gatherTimeoutMs: 4_000 });
    const entries = Array.isArray(rply.data) ? (rply.data as Rply[]) : [];
    const fresh = entries.filter((e) => e.rcode >= 0).length;
    const already = entries.filter((e) => e.rcode === rcode("EEXIST")).length;
    const failed = entries.filter((e) => e.rcode < 0 && e.rcode !== rcode("EEXIST")).map((e) => e.src);
    return (
      `DVS "${options.cluster}" initialised on ${fresh} node(s)` +
      (already ? `, already on ${already}` : "") +
      (failed.length ? `; failed on node ${failed.join(", ")} (see their logs)` : "")
    );
  } catch (error) {
    return `could not initialise the DVS: ${(error as Error).message}`;
  }
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
