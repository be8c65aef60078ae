// A nats-server with its HTTP monitoring port on loopback, and the counters
// of its `/varz`: what `npm run scale` reads to count the messages the server
// itself received and delivered, so a claim about per-node traffic is
// measured where the traffic goes, not inferred from the nodes' own counters.
import { createServer } from "node:net";
import type { NatsServer } from "../daemon/natsServer.js";
import type { Scope } from "./context.js";
import { BenchError } from "./errors.js";

/** The counters of one `/varz` read, and when (bench `performance.now()`) the answer arrived. */
export interface Varz {
  readonly inMsgs: number;
  readonly outMsgs: number;
  readonly inBytes: number;
  readonly outBytes: number;
  readonly connections: number;
  readonly slowConsumers: number;
  readonly readAt: number;
}

/** Per second between two reads; `outMsgs` is what the server delivered to subscribers. */
export interface VarzRates {
  readonly seconds: number;
  readonly inMsgsPerS: number;
  readonly outMsgsPerS: number;
  readonly outBytesPerS: number;
  readonly slowConsumers: number;
}

export interface MonitoredNatsServer {
  readonly server: NatsServer;
  /** `http://127.0.0.1:<port>` */
  readonly monitorUrl: string;
}

export class NatsMonitorError extends BenchError {
  override name = "NatsMonitorError";
  constructor(
    readonly url: string,
    detail: string,
    options?: ErrorOptions,
  ) {
    super(`nats-server monitoring at ${url}: ${detail}`, options);
  }
}

const VARZ_TIMEOUT_MS = 2_000;
/** Another process may take the free port between our probe and the server's bind: try again. */
const START_ATTEMPTS = 3;

/** Starts a nats-server from `natsConf` with `-m <free loopback port>`, checked with one `/varz`. */
export async function startMonitoredNatsServer(scope: Scope, natsConf: string): Promise<MonitoredNatsServer> {
  let lastError: unknown;
  for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
    const port = await freeLoopbackPort();
    let server: NatsServer;
    try {
      server = await scope.startNatsServer(natsConf, { extraArgs: ["-m", String(port)] });
    } catch (error) {
      lastError = error;
      continue;
    }
    const monitorUrl = `http://127.0.0.1:${port}`;
    const raw = await fetchVarz(monitorUrl);
    // The monitor binds the client listen host (nats.conf: 127.0.0.1); say so if that ever changes.
    if (raw.http_port !== port || !isLoopback(raw.http_host)) {
      throw new NatsMonitorError(
        monitorUrl,
        `expected loopback port ${port}, /varz says ${String(raw.http_host)}:${String(raw.http_port)}`,
      );
    }
    return { server, monitorUrl };
  }
  throw new BenchError(`nats-server with a monitoring port did not start in ${START_ATTEMPTS} attempts`, {
    cause: lastError,
  });
}

export async function readVarz(monitorUrl: string): Promise<Varz> {
  const raw = await fetchVarz(monitorUrl);
  const count = (field: string) => {
    const value = raw[field];
    if (typeof value !== "number") throw new NatsMonitorError(monitorUrl, `/varz has no number ${field}`);
    return value;
  };
  return {
    inMsgs: count("in_msgs"),
    outMsgs: count("out_msgs"),
    inBytes: count("in_bytes"),
    outBytes: count("out_bytes"),
    connections: count("connections"),
    slowConsumers: count("slow_consumers"),
    readAt: performance.now(),
  };
}

export function varzRates(before: Varz, after: Varz): VarzRates {
  const seconds = (after.readAt - before.readAt) / 1000;
  return {
    seconds,
    inMsgsPerS: (after.inMsgs - before.inMsgs) / seconds,
    outMsgsPerS: (after.outMsgs - before.outMsgs) / seconds,
    outBytesPerS: (after.outBytes - before.outBytes) / seconds,
    slowConsumers: after.slowConsumers - before.slowConsumers,
  };
}

async function fetchVarz(monitorUrl: string): Promise<Record<string, unknown>> {
  const url = `${monitorUrl}/varz`;
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(VARZ_TIMEOUT_MS) });
  } catch (error) {
    throw new NatsMonitorError(monitorUrl, `no answer to /varz within ${VARZ_TIMEOUT_MS} ms`, {
      cause: error,
    });
  }
  if (!response.ok) throw new NatsMonitorError(monitorUrl, `/varz answered HTTP ${response.status}`);
  const body: unknown = await response.json();
  if (typeof body !== "object" || body === null)
    throw new NatsMonitorError(monitorUrl, "/varz is not an object");
  return body as Record<string, unknown>;
}

const isLoopback = (host: unknown) => host === "127.0.0.1" || host === "::1" || host === "localhost";

/** A TCP port nothing listens on at this instant, on 127.0.0.1. */
function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.unref();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      probe.close(() => (port > 0 ? resolve(port) : reject(new BenchError("no free loopback port"))));
    });
  });
}
