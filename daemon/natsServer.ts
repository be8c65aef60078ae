// Starts and stops a local nats-server from nats.conf: used by `dvsd up` for the
// embedded default cluster and by the tests, which own their server. Also
// checks a server found already listening before `dvsd up` would use it.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { createServer, connect as tcpConnect } from "node:net";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { Credentials } from "../client/credentials.js";
import { inboxPrefixFor } from "../protocol/responder.js";
import { actionStreamName } from "../transport/actionLogJetStream.js";
import { NatsServerNotFoundError, NatsServerStartError } from "./errors.js";

export interface NatsServerOptions {
  /** Path to the nats-server config file (nats.conf). */
  readonly config: string;
  /** Client port; 0 lets the server choose a free one. */
  readonly port: number;
  /** JetStream store directory; created if missing. */
  readonly storeDir: string;
  readonly binary?: string;
  readonly readyTimeoutMs?: number;
  readonly extraArgs?: readonly string[];
}

export interface NatsServer {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  readonly process: ChildProcess;
  /** SIGTERM, then SIGKILL after a grace period; resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

export function natsServerInstalled(binary = "nats-server"): boolean {
  const probe = spawnSync(binary, ["--version"], { stdio: "ignore" });
  return !probe.error;
}

export async function startNatsServer(options: NatsServerOptions): Promise<NatsServer> {
  const binary = options.binary ?? "nats-server";
  if (!natsServerInstalled(binary)) throw new NatsServerNotFoundError(binary);
  mkdirSync(options.storeDir, { recursive: true });
  const portsDir = join(options.storeDir, "ports");
  mkdirSync(portsDir, { recursive: true });
  const args = [
    "-c",
    options.config,
    "-p",
    options.port === 0 ? "-1" : String(options.port),
    "-sd",
    options.storeDir,
    "--ports_file_dir",
    portsDir,
    ...(options.extraArgs ?? []),
  ];
  const child = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-8_000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));

  const deadline = Date.now() + (options.readyTimeoutMs ?? 10_000);
  let port: number | undefined;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new NatsServerStartError(`nats-server exited with code ${child.exitCode}`, output);
    }
    port ??= readPort(portsDir, child.pid);
    if (port !== undefined && (await canConnect(port))) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  if (port === undefined || child.exitCode !== null) {
    child.kill("SIGKILL");
    throw new NatsServerStartError("nats-server did not become ready in time", output);
  }
  const ready = port;
  return {
    url: `nats://127.0.0.1:${ready}`,
    port: ready,
    pid: child.pid ?? -1,
    process: child,
    async stop(graceMs = 5_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

function readPort(portsDir: string, pid: number | undefined): number | undefined {
  try {
    const file = readdirSync(portsDir).find((f) => f.endsWith(`_${pid}.ports`));
    if (!file) return undefined;
    const ports = JSON.parse(readFileSync(join(portsDir, file), "utf8")) as { nats?: string[] };
    const url = ports.nats?.[0];
    return url ? Number(new URL(url).port) : undefined;
  } catch {
    return undefined;
  }
}

/** True when something accepts TCP connections on 127.0.0.1:port within a short time. */
export function canConnect(port: number, host = "127.0.0.1", timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ port, host });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

/** A TCP port on 127.0.0.1 that was free a moment ago (for tests and benchmarks). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const address = s.address();
      const port = typeof address === "object" && address ? address.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** Whether a server already listening may run a cluster, and if not, why. */
export type ServerCheck = { readonly ok: true } | { readonly ok: false; readonly reason: string };

export interface ServerCheckOptions {
  readonly cluster: string;
  /** The administrator `dvsd up` and dvsctl connect as. */
  readonly admin: Credentials;
  /** Every node's credentials, as the nodes will log in. */
  readonly nodes: readonly Credentials[];
  /** Longest wait for one connection or answer. */
  readonly timeoutMs?: number;
}

/**
 * A server is fit to run the cluster when it refuses a connection without
 * credentials, lets the administrator use JetStream, and lets every node log
 * in as itself and reach its cluster's action log stream through the
 * JetStream API. An open server (no users) or one without JetStream is not.
 */
export async function checkClusterServer(url: string, options: ServerCheckOptions): Promise<ServerCheck> {
  const timeout = options.timeoutMs ?? 2_000;
  const open = await tryConnect(url, undefined, timeout);
  if (open.nc) {
    await open.nc.close().catch(() => {});
    return { ok: false, reason: "it accepts connections without credentials (no accounts: an open server)" };
  }
  if (!isAuthError(open.error))
    return { ok: false, reason: `it is not a NATS server we can use (${open.error})` };

  const admin = await tryConnect(url, options.admin, timeout);
  if (!admin.nc) return { ok: false, reason: `it refuses the user ${options.admin.user} (${admin.error})` };
  try {
    const info = await jetStreamInfo(admin.nc, timeout);
    if (info !== undefined)
      return { ok: false, reason: `JetStream is not available to ${options.admin.user}: ${info}` };
  } finally {
    await admin.nc.close().catch(() => {});
  }

  const stream = `$JS.API.STREAM.INFO.${actionStreamName(options.cluster)}`;
  for (const credentials of options.nodes) {
    const node = await tryConnect(url, credentials, timeout);
    if (!node.nc) return { ok: false, reason: `it refuses the user ${credentials.user} (${node.error})` };
    try {
      // An answer, "stream not found" included, shows the node may use its cluster's stream.
      await node.nc.request(stream, "", { timeout });
    } catch (error) {
      return {
        ok: false,
        reason: `${credentials.user} may not use the JetStream API of cluster ${options.cluster} (${describe(error)})`,
      };
    } finally {
      await node.nc.close().catch(() => {});
    }
  }
  return { ok: true };
}

async function tryConnect(
  url: string,
  credentials: Credentials | undefined,
  timeoutMs: number,
): Promise<{ nc: NatsConnection; error?: undefined } | { nc?: undefined; error: string }> {
  try {
    const nc = await connect({
      servers: url,
      timeout: timeoutMs,
      reconnect: false,
      maxReconnectAttempts: 0,
      name: "dvsd-up-check",
      // Each user may read replies under its own inbox prefix only.
      ...(credentials
        ? { user: credentials.user, pass: credentials.pass, inboxPrefix: inboxPrefixFor(credentials.user) }
        : {}),
    });
    return { nc };
  } catch (error) {
    return { error: describe(error) };
  }
}

/** undefined when JetStream answers `$JS.API.INFO` for this connection's account, else why not. */
async function jetStreamInfo(nc: NatsConnection, timeoutMs: number): Promise<string | undefined> {
  try {
    const reply = await nc.request("$JS.API.INFO", "", { timeout: timeoutMs });
    const info = reply.json<{ error?: { description?: string } }>();
    return info.error ? (info.error.description ?? "JetStream error") : undefined;
  } catch (error) {
    return describe(error);
  }
}

function isAuthError(message: string): boolean {
  return /authoriz|authenticat|user/i.test(message);
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
