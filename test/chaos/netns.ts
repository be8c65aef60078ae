// A lab of real hosts for the chaos test's network faults: one Linux network
// namespace per nats-server host, joined by veth pairs to a bridge in the root
// namespace, each running a nats-server of one JetStream cluster and two
// `dvsd run` nodes. A blackhole takes the host's bridge port down: its frames
// are dropped without a reset or a FIN, and with static neighbour entries not
// even a failed ARP tells the sockets, which is what a real partition looks like.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify as toYaml } from "yaml";
import { DEV_USERS } from "../../client/credentials.js";
import type { ConfigInput } from "../../daemon/config.js";
import { devNodeCredentials } from "../../daemon/credentials.js";
import { waitForJetStream as waitForClusterJetStream } from "../../daemon/natsCluster.js";
import { canConnect, natsServerInstalled } from "../../daemon/natsServer.js";
import { dvsdRunArgs } from "../../daemon/nodeFlags.js";
import { dvsdBin } from "../support/cli.js";
import { natsConf } from "../support/natsServer.js";

/** Why the lab cannot run here; `no-nats-server` is reported only once everything else was there. */
export type NetnsUnavailableCause = "not-linux" | "not-root" | "no-ip" | "netns-refused" | "no-nats-server";

export type NetnsAvailability =
  | { readonly ok: true }
  | { readonly ok: false; readonly cause: NetnsUnavailableCause; readonly reason: string };

/** An `ip` command failed. */
export class NetnsCommandError extends Error {
  override name = "NetnsCommandError";
  constructor(
    readonly args: readonly string[],
    readonly stderr: string,
    options?: ErrorOptions,
  ) {
    super(`ip ${args.join(" ")} failed: ${stderr.trim() || "no output"}`, options);
  }
}

/** The lab did not come up (a server not listening, JetStream without a leader) within its bound. */
export class NetnsLabStartError extends Error {
  override name = "NetnsLabStartError";
  constructor(
    message: string,
    readonly last: string,
  ) {
    super(`${message}: ${last}`);
  }
}

export function netnsAvailable(): NetnsAvailability {
  if (process.platform !== "linux") {
    return { ok: false, cause: "not-linux", reason: "network namespaces need Linux" };
  }
  if (process.getuid?.() !== 0) {
    return { ok: false, cause: "not-root", reason: "network namespaces need root (run the test as uid 0)" };
  }
  const version = spawnSync("ip", ["-V"], { encoding: "utf8" });
  if (version.error || version.status !== 0) {
    return { ok: false, cause: "no-ip", reason: "the `ip` command (iproute2) is not installed" };
  }
  const probe = `dvsprobe${process.pid}`;
  const added = spawnSync("ip", ["netns", "add", probe], { encoding: "utf8" });
  if (added.status !== 0) {
    return {
      ok: false,
      cause: "netns-refused",
      reason: `\`ip netns add\` is refused here: ${(added.stderr || String(added.error)).trim()}`,
    };
  }
  const deleted = spawnSync("ip", ["netns", "del", probe], { encoding: "utf8" });
  if (deleted.status !== 0) {
    return {
      ok: false,
      cause: "netns-refused",
      reason: `a namespace was created but \`ip netns del\` failed: ${deleted.stderr.trim()}`,
    };
  }
  if (!natsServerInstalled()) {
    return {
      ok: false,
      cause: "no-nats-server",
      reason: "nats-server is not installed (apt-get install nats-server)",
    };
  }
  return { ok: true };
}

export interface NetnsLabOptions {
  /** nats-server hosts, one namespace each (at most 9). */
  readonly servers: number;
  /** Names everything the lab creates (`<prefix>-h1`, `<prefix>-br`, …): unique per run, at most 11 characters. */
  readonly prefix: string;
  /** `dvsd run` nodes per host: host i runs nodes i, i + servers, … */
  readonly nodesPerHost?: number;
  /** The third octet of the lab's 10.237.x.0/24; default: derived from the pid, skipping one in use. */
  readonly subnet?: number;
  /** A node's config file, without `node`; default: the chaos run's (replicas 3, nodes 1 and 5 active). */
  readonly nodeConfig?: (node: number) => Omit<ConfigInput, "node">;
  /** nats.conf; default: the repo's. */
  readonly natsConfig?: string;
  /** From the start to every server listening and a JetStream metadata leader. */
  readonly readyTimeoutMs?: number;
}

/** A process the lab runs inside one namespace. */
export interface LabProcess {
  /** `nats-server s<i>` or `node <id>`. */
  readonly name: string;
  readonly child: ChildProcess;
  readonly running: boolean;
  /** Everything it wrote, stdout and stderr interleaved. */
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it is gone. */
  stop(graceMs?: number): Promise<void>;
}

export interface LabNode extends LabProcess {
  readonly node: number;
  readonly host: number;
}

export interface LabHost {
  /** 1-based. */
  readonly index: number;
  readonly namespace: string;
  readonly address: string;
  /** The client URL of its nats-server, reachable from the root namespace over the bridge. */
  readonly natsUrl: string;
  /** The veth end on the bridge: the one a blackhole takes down. */
  readonly bridgePort: string;
  readonly server: LabProcess;
  readonly nodes: readonly LabNode[];
}

export interface NetnsLab extends AsyncDisposable {
  readonly prefix: string;
  readonly hosts: readonly LabHost[];
  /** Every node, by id order. */
  readonly nodes: readonly LabNode[];
  /** Every server's client URL, server 1 first. */
  readonly urls: readonly string[];
  /** Holds the servers' stores and the nodes' state and config. */
  readonly dir: string;
  /** Drops every frame to and from `host`, silently, until `heal(host)`. */
  blackhole(host: number): void;
  heal(host: number): void;
  /** Resolves once JetStream answers `$JS.API.INFO` without an error through server `via`. */
  waitForJetStream(via?: number, timeoutMs?: number): Promise<void>;
  /** Stops every process and removes every namespace, veth and the bridge; keeps `dir`, with every process's output, if asked. */
  close(options?: { keepDir?: boolean }): Promise<void>;
}

const CLUSTER = "dvs";
const CLIENT_PORT = 4222;
const ROUTE_PORT = 6222;
const BRIDGE_HOST = 254;

/** The chaos run's node config (test/chaos/runner.ts): nodes 1 and 5 are the file store's active servers. */
export function chaosNodeConfig(node: number): Omit<ConfigInput, "node"> {
  return {
    cluster: CLUSTER,
    log: { level: "warn" },
    actions: { replicas: 3 },
    election: { replicas: 3, server: node === 1 || node === 5 ? "active" : "passive" },
    files: { replicationFactor: 3 },
  };
}

export async function startNetnsLab(options: NetnsLabOptions): Promise<NetnsLab> {
  const { servers, prefix } = options;
  if (!Number.isInteger(servers) || servers < 1 || servers > 9) {
    throw new RangeError(`servers must be 1 to 9, got ${servers}`);
  }
  if (!/^[a-z][a-z0-9]{0,10}$/.test(prefix)) {
    // Interface names are at most 15 characters: the prefix, "-br" or "-r9".
    throw new RangeError(`prefix must be a lowercase letter and up to 10 letters or digits, got "${prefix}"`);
  }
  const perHost = options.nodesPerHost ?? 2;
  const nodeConfig = options.nodeConfig ?? chaosNodeConfig;
  const readyTimeoutMs = options.readyTimeoutMs ?? 30_000;
  const subnet = options.subnet ?? freeSubnet(process.pid);
  const net = `10.237.${subnet}`;
  const mac = (host: number) => `02:64:76:${hex(subnet)}:00:${hex(host)}`;
  const bridge = `${prefix}-br`;
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-netns-`));
  const indexes = Array.from({ length: servers }, (_, i) => i + 1);
  const namespaceOf = (i: number) => `${prefix}-h${i}`;
  const addressOf = (i: number) => `${net}.${i}`;
  const bridgePortOf = (i: number) => `${prefix}-r${i}`;

  const processes: LabProcess[] = [];
  const hosts: LabHost[] = [];
  const nodesOf = indexes.map((): LabNode[] => []);
  let removed = false;
  let closing: Promise<void> | undefined;

  /** Everything torn down without awaiting: for close() and for a signal or exit of the test process. */
  const teardownNetwork = (): string[] => {
    removed = true;
    const problems: string[] = [];
    const remove = (args: readonly string[]) => {
      const problem = ipQuiet(args);
      // Gone already (or never made, when the start failed half way): nothing to remove.
      if (problem !== undefined && !/No such file|Cannot find device/i.test(problem)) {
        problems.push(`ip ${args.join(" ")}: ${problem.trim()}`);
      }
    };
    for (const i of indexes) {
      remove(["netns", "del", namespaceOf(i)]);
      // Deleting the namespace deletes the pair; a pair that never moved in is still here.
      remove(["link", "del", bridgePortOf(i)]);
    }
    remove(["link", "del", bridge]);
    return problems;
  };
  const killAllNow = () => {
    for (const p of processes) if (p.running) p.child.kill("SIGKILL");
  };
  const onExit = () => {
    if (removed) return;
    killAllNow();
    teardownNetwork();
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // A process killed a moment ago may still be writing its store; the network is what must not leak.
    }
  };
  const onSignal = (signal: NodeJS.Signals) => {
    onExit();
    forget();
    // Ours was the only handler: do what the signal would have done.
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  };
  const forget = () => {
    process.off("exit", onExit);
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  };
  process.on("exit", onExit);
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  const close = (closeOptions: { keepDir?: boolean } = {}): Promise<void> => {
    closing ??= closeOnce(closeOptions);
    return closing;
  };
  const closeOnce = async (closeOptions: { keepDir?: boolean }) => {
    // The nodes first, so none of them logs its server going away as a fault.
    const nodes = processes.filter((p) => p.name.startsWith("node"));
    const others = processes.filter((p) => !p.name.startsWith("node"));
    await Promise.all(nodes.map((p) => p.stop(10_000)));
    await Promise.all(others.map((p) => p.stop(5_000)));
    const problems = removed ? [] : teardownNetwork();
    forget();
    if (closeOptions.keepDir) {
      for (const p of processes) writeFileSync(join(dir, `${p.name.replace(/\W+/g, "-")}.log`), p.output());
    } else {
      rmSync(dir, { recursive: true, force: true });
    }
    if (problems.length > 0)
      throw new Error(`the lab ${prefix} was not fully removed: ${problems.join("; ")}`);
  };

  try {
    ip(["link", "add", "name", bridge, "type", "bridge"]);
    ip(["link", "set", bridge, "address", mac(BRIDGE_HOST)]);
    ip(["addr", "add", `${net}.${BRIDGE_HOST}/24`, "dev", bridge]);
    ip(["link", "set", bridge, "up"]);
    for (const i of indexes) {
      const ns = namespaceOf(i);
      const inside = `${prefix}-n${i}`;
      ip(["netns", "add", ns]);
      ip(["link", "add", bridgePortOf(i), "type", "veth", "peer", "name", inside]);
      ip(["link", "set", inside, "netns", ns]);
      ip(["link", "set", bridgePortOf(i), "master", bridge, "up"]);
      ip(["-n", ns, "link", "set", "lo", "up"]);
      ip(["-n", ns, "link", "set", inside, "address", mac(i)]);
      ip(["-n", ns, "addr", "add", `${addressOf(i)}/24`, "dev", inside]);
      ip(["-n", ns, "link", "set", inside, "up"]);
      // Static neighbours: a blackholed peer's ARP failing would otherwise
      // answer new connections with EHOSTUNREACH instead of silence.
      for (const j of [...indexes.filter((j) => j !== i), BRIDGE_HOST]) {
        const address = j === BRIDGE_HOST ? `${net}.${BRIDGE_HOST}` : addressOf(j);
        ip(["-n", ns, "neigh", "replace", address, "lladdr", mac(j), "dev", inside, "nud", "permanent"]);
      }
      ip(["neigh", "replace", addressOf(i), "lladdr", mac(i), "dev", bridge, "nud", "permanent"]);
    }

    for (const i of indexes) {
      const ns = namespaceOf(i);
      const address = addressOf(i);
      const routes = indexes.filter((j) => j !== i).map((j) => `nats://${addressOf(j)}:${ROUTE_PORT}`);
      const storeDir = join(dir, `s${i}`);
      mkdirSync(storeDir, { recursive: true });
      const server = spawnInNamespace(`nats-server s${i}`, ns, "nats-server", [
        "-c",
        options.natsConfig ?? natsConf,
        "-a",
        address,
        "-p",
        String(CLIENT_PORT),
        "--name",
        `${CLUSTER}-s${i}`,
        "--cluster_name",
        CLUSTER,
        "--cluster",
        `nats://${address}:${ROUTE_PORT}`,
        ...(routes.length > 0 ? ["--routes", routes.join(",")] : []),
        "-sd",
        storeDir,
      ]);
      processes.push(server);
      hosts.push({
        index: i,
        namespace: ns,
        address,
        natsUrl: `nats://${address}:${CLIENT_PORT}`,
        bridgePort: bridgePortOf(i),
        server,
        nodes: nodesOf[i - 1] as LabNode[],
      });
    }
    const deadline = performance.now() + readyTimeoutMs;
    for (const h of hosts) {
      while (!(await canConnect(CLIENT_PORT, h.address, 500))) {
        if (!h.server.running) {
          throw new NetnsLabStartError(`${h.server.name} exited`, h.server.output().slice(-2_000));
        }
        if (performance.now() > deadline) {
          throw new NetnsLabStartError(
            `${h.server.name} did not listen on ${h.address}:${CLIENT_PORT} within ${readyTimeoutMs} ms`,
            h.server.output().slice(-2_000),
          );
        }
        await sleepMs(50);
      }
    }
    await waitForJetStream(hosts[0]?.natsUrl as string, Math.max(1_000, deadline - performance.now()));

    const nodes: LabNode[] = [];
    for (let k = 0; k < perHost; k++) {
      for (const h of hosts) {
        const node = h.index + k * servers;
        const nodeDir = join(dir, `node-${node}`);
        const stateDir = join(nodeDir, "state");
        const configFile = join(nodeDir, "dvsd.yaml");
        mkdirSync(stateDir, { recursive: true });
        writeFileSync(configFile, toYaml(nodeConfig(node)));
        const spawned = spawnInNamespace(
          `node ${node}`,
          h.namespace,
          process.execPath,
          dvsdRunArgs({ bin: dvsdBin, node, nats: h.natsUrl, state: stateDir, config: configFile }),
          // Each node as itself: its own user of nats.conf.
          { DVS_NATS_USER: devNodeCredentials(node).user, DVS_NATS_PASS: devNodeCredentials(node).pass },
        );
        processes.push(spawned);
        const labNode = Object.assign(spawned, { node, host: h.index });
        nodes.push(labNode);
        nodesOf[h.index - 1]?.push(labNode);
      }
    }
    nodes.sort((a, b) => a.node - b.node);

    const hostAt = (i: number) => {
      const h = hosts[i - 1];
      if (!h) throw new RangeError(`no host ${i} in a lab of ${servers}`);
      return h;
    };
    return {
      prefix,
      hosts,
      nodes,
      urls: hosts.map((h) => h.natsUrl),
      dir,
      // Down on the bridge side only: the host's end loses its carrier, so
      // both directions drop, and nothing inside the namespace changes.
      blackhole: (i) => ip(["link", "set", hostAt(i).bridgePort, "down"]),
      heal: (i) => ip(["link", "set", hostAt(i).bridgePort, "up"]),
      waitForJetStream: (via = 1, timeoutMs = readyTimeoutMs) =>
        waitForJetStream(hostAt(via).natsUrl, timeoutMs),
      close,
      [Symbol.asyncDispose]: () => close(),
    };
  } catch (error) {
    // The error carries the failing server's last output; nothing else is worth keeping.
    await close().catch(() => {});
    throw error;
  }

  function spawnInNamespace(
    name: string,
    namespace: string,
    command: string,
    args: readonly string[],
    env: NodeJS.ProcessEnv = {},
  ): LabProcess {
    // `ip netns exec` execs the command in place, so the child's pid is the command's.
    const child = spawn("ip", ["netns", "exec", namespace, command, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...env },
    });
    let output = "";
    const keep = (chunk: Buffer) => {
      output += chunk.toString();
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    const running = () => child.exitCode === null && child.signalCode === null;
    return {
      name,
      child,
      get running() {
        return running();
      },
      output: () => output,
      async stop(graceMs = 5_000) {
        if (!running()) return;
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
        await exited;
        clearTimeout(timer);
      },
    };
  }
}

/** Every namespace and interface of the root namespace whose name starts with `<prefix>-`. */
export function leftovers(prefix: string): string[] {
  const namespaces = spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout ?? "";
  const links = spawnSync("ip", ["-o", "link", "show"], { encoding: "utf8" }).stdout ?? "";
  const names = [
    ...namespaces.split("\n").map((l) => l.split(" ")[0] ?? ""),
    ...links.split("\n").map((l) => (l.split(": ")[1] ?? "").split("@")[0] ?? ""),
  ];
  return names.filter((n) => n.startsWith(`${prefix}-`));
}

/** The lab's JetStream has a metadata leader (daemon/natsCluster.ts), or the lab did not start. */
async function waitForJetStream(url: string, timeoutMs: number): Promise<void> {
  try {
    await waitForClusterJetStream(url, DEV_USERS.admin, timeoutMs);
  } catch (error) {
    // The message already holds the last answer JetStream gave.
    throw new NetnsLabStartError((error as Error).message, "");
  }
}

function ip(args: readonly string[]): void {
  const problem = ipQuiet(args);
  if (problem !== undefined) throw new NetnsCommandError(args, problem);
}

/** Runs `ip args`; undefined when it succeeded, its stderr otherwise. */
function ipQuiet(args: readonly string[]): string | undefined {
  const r = spawnSync("ip", args, { encoding: "utf8" });
  if (r.error) return String(r.error);
  return r.status === 0 ? undefined : r.stderr || `exit status ${r.status}`;
}

/** A 10.237.x.0/24 no route of the root namespace covers yet, starting from one derived from `seed`. */
function freeSubnet(seed: number): number {
  const routes = spawnSync("ip", ["-4", "route", "show"], { encoding: "utf8" }).stdout ?? "";
  for (let k = 0; k < 250; k++) {
    const x = 1 + ((seed + k) % 250);
    if (!routes.includes(`10.237.${x}.`)) return x;
  }
  throw new Error("every 10.237.x.0/24 is in use");
}

function hex(n: number): string {
  return n.toString(16).padStart(2, "0");
}

function sleepMs(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
