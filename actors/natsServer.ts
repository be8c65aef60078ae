// Starts and stops a local nats-server from nats.conf: used by `dvsd up` for the
// embedded default cluster and by the tests, which own their server.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { createServer, connect as tcpConnect } from "node:net";
import { join } from "node:path";
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
