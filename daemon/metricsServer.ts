// The HTTP endpoint Prometheus scrapes: `GET /metrics` on the node's metrics
// address (config `metrics.host`, `metrics.port`), Node's own http module.
// A port that cannot be had is a MetricsListenError the daemon logs; the node
// runs on without metrics rather than exit and be restarted into the same error.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { MetricsListenError } from "./errors.js";

/** What the endpoint serves: the text of a registry and its content type. */
export interface MetricsSource {
  render(): Promise<string>;
  readonly contentType: string;
}

export interface MetricsServer {
  /** Where it listens, e.g. `http://127.0.0.1:9464/metrics`. */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Listens on `host:port` (0: a free port); rejects with MetricsListenError when it cannot. */
export function serveMetrics(source: MetricsSource, host: string, port: number): Promise<MetricsServer> {
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found: the metrics are at /metrics\n");
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" }).end("GET only\n");
      return;
    }
    source.render().then(
      (text) =>
        res.writeHead(200, { "content-type": source.contentType }).end(req.method === "HEAD" ? "" : text),
      (error: unknown) =>
        res
          .writeHead(500, { "content-type": "text/plain" })
          .end(`could not collect the metrics: ${String(error)}\n`),
    );
  });
  return new Promise((resolve, reject) => {
    const failed = (error: NodeJS.ErrnoException) =>
      reject(new MetricsListenError(host, port, error.code, { cause: error }));
    server.once("error", failed);
    server.listen({ host, port }, () => {
      server.off("error", failed);
      const bound = (server.address() as AddressInfo).port;
      const shown = host.includes(":") ? `[${host}]` : host;
      resolve({ url: `http://${shown}:${bound}/metrics`, port: bound, close: () => closeServer(server) });
    });
  });
}

/** Stops listening and drops the scrapers' kept-alive connections, so a stopping daemon is not held up. */
function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
