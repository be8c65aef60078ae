// A local JetStream cluster of nats-servers from one nats.conf: each server gets
// its name, client port, cluster port and full-mesh routes as command-line
// flags. Used by `dvsd up --servers N` and by the chaos test, which passes
// route URLs that go through TCP proxies it can cut.
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { type Credentials, DEV_USERS } from "../client/credentials.js";
import { NatsServerStartError } from "./errors.js";
import { freePort, type NatsServer, startNatsServer } from "./natsServer.js";

export interface NatsClusterOptions {
  /** nats.conf: accounts, limits and JetStream settings shared by every server. */
  readonly config: string;
  /** How many servers (3 for a JetStream cluster that survives the loss of one). */
  readonly servers: number;
  /** Each server keeps its JetStream store under `<storeDir>/s<i>`. */
  readonly storeDir: string;
  /** The cluster's name (`cluster { name }`); the same on every server. */
  readonly name?: string;
  /** Client ports, one per server; free ports are chosen where missing or 0. */
  readonly clientPorts?: readonly number[];
  /** Route (cluster) ports, one per server; free ports are chosen where missing. */
  readonly clusterPorts?: readonly number[];
  /**
   * The URL server `from` solicits to reach server `to` (both 1-based); the
   * default is `to`'s cluster port. A test passes its TCP proxies here.
   */
  readonly routeUrl?: (from: number, to: number, clusterPort: number) => string;
  /**
   * When routes go through proxies, a server must not tell the others its real
   * cluster address, or they would connect to it directly around a cut; this
   * advertises an address nothing listens on instead.
   */
  readonly hideClusterAddress?: boolean;
  /** Used to ask JetStream whether the cluster has a metadata leader. */
  readonly credentials?: Credentials;
  readonly readyTimeoutMs?: number;
  readonly binary?: string;
}

export interface ClusterMember {
  /** 1-based. */
  readonly index: number;
  readonly name: string;
  readonly clientPort: number;
  readonly clusterPort: number;
  readonly url: string;
  readonly storeDir: string;
  /** The running process, or undefined while the server is stopped. */
  readonly server: NatsServer | undefined;
}

export interface NatsCluster extends AsyncDisposable {
  readonly members: readonly ClusterMember[];
  /** Every server's client URL, server 1 first. */
  readonly urls: readonly string[];
  /** SIGKILL one server (its store stays for the restart). */
  kill(index: number): Promise<void>;
  /** Starts a stopped or killed server again with the same name, ports and store. */
  start(index: number): Promise<void>;
  running(index: number): boolean;
  /** Resolves once JetStream answers with a metadata leader, through server `via`. */
  waitForJetStream(via?: number, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startNatsCluster(options: NatsClusterOptions): Promise<NatsCluster> {
  const n = options.servers;
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`servers must be a positive integer, got ${n}`);
  const name = options.name ?? "dvs";
  const clientPorts = await ports(n, options.clientPorts);
  const clusterPorts = await ports(n, options.clusterPorts);
  const deadPort = options.hideClusterAddress ? await freePort() : undefined;
  const routeUrl = options.routeUrl ?? ((_from, _to, port) => `nats://127.0.0.1:${port}`);
  const credentials = options.credentials ?? DEV_USERS.admin;
  const readyTimeoutMs = options.readyTimeoutMs ?? 30_000;

  const members: Array<{ -readonly [K in keyof ClusterMember]: ClusterMember[K] }> = [];
  for (let i = 1; i <= n; i++) {
    const clientPort = clientPorts[i - 1] as number;
    const clusterPort = clusterPorts[i - 1] as number;
    members.push({
      index: i,
      name: `${name}-s${i}`,
      clientPort,
      clusterPort,
      url: `nats://127.0.0.1:${clientPort}`,
      storeDir: join(options.storeDir, `s${i}`),
      server: undefined,
    });
  }
  const argsOf = (m: ClusterMember): string[] => {
    const routes = members
      .filter((o) => o.index !== m.index)
      .map((o) => routeUrl(m.index, o.index, o.clusterPort));
    return [
      "--name",
      m.name,
      "--cluster_name",
      name,
      "--cluster",
      `nats://127.0.0.1:${m.clusterPort}`,
      ...(routes.length > 0 ? ["--routes", routes.join(",")] : []),
      ...(deadPort !== undefined ? ["--cluster_advertise", `127.0.0.1:${deadPort}`] : []),
    ];
  };
  const memberAt = (index: number) => {
    const m = members[index - 1];
    if (!m) throw new RangeError(`no server ${index} in a cluster of ${n}`);
    return m;
  };
  const start = async (index: number) => {
    const m = memberAt(index);
    if (m.server && m.server.process.exitCode === null && m.server.process.signalCode === null) return;
    m.server = await startNatsServer({
      config: options.config,
      port: m.clientPort,
      storeDir: m.storeDir,
      extraArgs: argsOf(m),
      readyTimeoutMs,
      ...(options.binary !== undefined ? { binary: options.binary } : {}),
    });
  };
  const running = (index: number) => {
    const s = memberAt(index).server;
    return s !== undefined && s.process.exitCode === null && s.process.signalCode === null;
  };
  const stop = async () => {
    await Promise.all(members.map((m) => m.server?.stop()));
  };

  try {
    await Promise.all(members.map((m) => start(m.index)));
  } catch (error) {
    await stop();
    throw error;
  }
  const cluster: NatsCluster = {
    members,
    urls: members.map((m) => m.url),
    async kill(index) {
      const s = memberAt(index).server;
      if (!s || !running(index)) return;
      const gone = new Promise<void>((r) => s.process.once("exit", () => r()));
      s.process.kill("SIGKILL");
      await gone;
    },
    start,
    running,
    waitForJetStream: (via = 1, timeoutMs = readyTimeoutMs) =>
      waitForJetStream(memberAt(via).url, credentials, timeoutMs),
    stop,
    [Symbol.asyncDispose]: stop,
  };
  try {
    if (n > 1) await cluster.waitForJetStream();
  } catch (error) {
    await stop();
    throw error;
  }
  return cluster;
}

async function ports(n: number, given: readonly number[] | undefined): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const p = given?.[i];
    out.push(p !== undefined && p !== 0 ? p : await freePort());
  }
  return out;
}

/**
 * A clustered JetStream answers `$JS.API.INFO` with an error until its
 * servers have elected a metadata leader; nodes that start before that would
 * only retry, so the launcher and the tests wait for it.
 */
export async function waitForJetStream(
  url: string,
  credentials: Credentials,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer";
  const nc = await connect({ servers: url, user: credentials.user, pass: credentials.pass, timeout: 5_000 });
  try {
    while (Date.now() < deadline) {
      try {
        const reply = await nc.request("$JS.API.INFO", "", { timeout: 1_000 });
        const info = reply.json<{ error?: { description?: string } }>();
        if (!info.error) return;
        last = info.error.description ?? "JetStream error";
      } catch (error) {
        last = (error as Error).message;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    await nc.close().catch(() => {});
  }
  throw new NatsServerStartError(`JetStream at ${url} had no metadata leader within ${timeoutMs} ms`, last);
}
