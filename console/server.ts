// `dvsd console`: a NATS client with one user's rights (viewer unless started
// as admin) and an HTTP server on loopback that shows the cluster live and
// sends requests for the operator. Everything it shows comes from the public
// subjects through the client library; it has no private path into a node.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { hostname } from "node:os";
import { actionIds, JetStreamActionLog } from "../client/actions.js";
import { connectNats, type NatsTransport, systemClock, systemRandom } from "../client/connection.js";
import { discoverNodes } from "../client/discovery.js";
import { DvsClient } from "../client/dvsClient.js";
import { FileClient } from "../client/fileClient.js";
import { RegistryClient } from "../client/registryClient.js";
import { type AdminSigner, type Role, VERSION } from "../client/wire.js";
import { ActionsApi, VIEWER_CANNOT_READ_LOG } from "./actions.js";
import { Assets } from "./assets.js";
import { ClusterFeed } from "./clusterFeed.js";
import { BadInputError, MethodNotAllowedError, NotFoundError, TooLargeError } from "./errors.js";
import { checkedName, FilesApi, VIEWER_CANNOT_COMMIT } from "./files.js";
import { checkedHostQuery, streamHosts } from "./hosts.js";
import {
  allowedHosts,
  checkRequest,
  NdjsonStream,
  readBody,
  readJson,
  SseStream,
  sendError,
  sendJson,
} from "./http.js";
import {
  checkedRequest,
  paramsSchemaOf,
  REQUEST_BODY_BYTES,
  requestBodySchema,
  requestCatalog,
  sendRequest,
} from "./requests.js";

export interface ConsoleOptions {
  readonly nats: readonly string[];
  readonly cluster: string;
  readonly user: string;
  readonly pass?: string;
  /** viewer: the read-only request subjects; admin: the full ones, mutating requests signed with `signer`. */
  readonly role: Role;
  readonly signer?: AdminSigner;
  /** Where the HTTP server listens (default 127.0.0.1); port 0 takes a free one. */
  readonly host: string;
  readonly port: number;
  /** The largest file the console uploads or downloads (both pass through its memory). */
  readonly maxFileBytes: number;
  /** How often the statuses are asked when no event comes. */
  readonly statusEveryMs?: number;
  readonly log?: (line: string) => void;
}

export interface RunningConsole {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Connects to NATS, starts the feeds and the HTTP server; rejects when either cannot start. */
export async function startConsole(o: ConsoleOptions): Promise<RunningConsole> {
  const log = o.log ?? (() => {});
  const assets = new Assets();
  const transport = await connectNats({
    servers: o.nats,
    name: `dvsd-console@${hostname()}`,
    user: o.user,
    ...(o.pass !== undefined ? { pass: o.pass } : {}),
    connectTimeoutMs: 5_000,
  });
  const clock = systemClock;
  const client = new DvsClient(transport, {
    cluster: o.cluster,
    clientId: `console.${process.pid}`,
    role: o.role,
    timeoutMs: 5_000,
    ...(o.role === "admin" && o.signer ? { signer: o.signer } : {}),
    // A request the queue hands a frozen node is resent to one the $SRV ping finds alive (client/hedge.ts).
    hedge: {
      nodes: async () => (await discoverNodes(transport.connection, o.cluster, 1_000, 50)).map((n) => n.node),
    },
  });
  const registry = new RegistryClient({ cluster: o.cluster, transport, clock, timeoutMs: 1_000 });
  const feed = new ClusterFeed({
    cluster: o.cluster,
    transport,
    client,
    registry,
    clock,
    statusEveryMs: o.statusEveryMs ?? 5_000,
    onError: (what, error) => log(`console: ${what}: ${(error as Error).message}`),
  });
  const newId = actionIds(clock, systemRandom);
  const files = new FilesApi(
    o.role,
    new FileClient({ transport, subjects: client.subjects, clock, newCommitId: newId }),
    clock,
    o.maxFileBytes,
  );
  const actions = new ActionsApi(
    o.role,
    new JetStreamActionLog(transport.connection, {
      cluster: o.cluster,
      timeoutMs: 5_000,
      readDeadlineMs: 10_000,
    }),
    transport,
    o.cluster,
  );
  const routes = new ConsoleRoutes(o, transport, client, feed, files, actions, newId, assets);
  feed.start();

  const server = createServer((req, res) => {
    routes.handle(req, res).catch((error: unknown) => sendError(res, error));
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 0; // streams (SSE, NDJSON, uploads) stay open as long as they need
  try {
    await listen(server, o.host, o.port);
  } catch (error) {
    feed.stop();
    await transport.close();
    throw error;
  }
  const port = (server.address() as AddressInfo).port;
  routes.hosts = allowedHosts(o.host, port);
  const shown = o.host.includes(":") ? `[${o.host}]` : o.host;
  const url = `http://${shown}:${port}/`;
  log(`console: ${url} as ${o.user} (${o.role}), cluster ${o.cluster} at ${o.nats.join(",")}`);
  return {
    url,
    port,
    close: async () => {
      feed.stop();
      files.stop();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await transport.close().catch(() => {});
    },
  };
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

class ConsoleRoutes {
  hosts: ReadonlySet<string> = new Set();
  readonly clock = systemClock;

  constructor(
    readonly o: ConsoleOptions,
    readonly transport: NatsTransport,
    readonly client: DvsClient,
    readonly feed: ClusterFeed,
    readonly files: FilesApi,
    readonly actions: ActionsApi,
    readonly newActionId: () => string,
    readonly assets: Assets,
  ) {}

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    checkRequest(req, this.hosts);
    const url = new URL(req.url ?? "/", "http://console.invalid");
    const path = url.pathname;
    const method = req.method ?? "GET";
    if (!path.startsWith("/api/")) {
      if (method !== "GET" && method !== "HEAD") throw new MethodNotAllowedError(method, path);
      if (!this.assets.serve(path, res)) throw new NotFoundError(`no page ${path}`);
      return;
    }
    const route = `${method} ${path}`;
    const schema = /^GET \/api\/types\/([A-Z_]{1,40})\/schema$/.exec(route);
    if (schema) return sendJson(res, 200, paramsSchemaOf(schema[1] as string));
    const action = /^GET \/api\/actions\/([^/]{1,80})$/.exec(route);
    if (action && action[1] !== "stream")
      return sendJson(res, 200, await this.actions.show(action[1] as string));
    switch (route) {
      case "GET /api/session":
        return sendJson(res, 200, this.#session());
      case "GET /api/cluster/stream":
        return this.#clusterStream(req, res);
      case "POST /api/requests": {
        const body = await readJson(req, requestBodySchema, REQUEST_BODY_BYTES);
        const checked = checkedRequest(body);
        const ctx = {
          client: this.client,
          clock: this.clock,
          members: () => this.feed.expectedMembers(),
          actionId: this.o.role === "admin" ? this.newActionId : undefined,
        };
        return sendRequest(ctx, body, checked, new NdjsonStream(res));
      }
      case "GET /api/actions":
        return sendJson(res, 200, await this.actions.list(url));
      case "GET /api/actions/stream": {
        this.actions.check();
        const sse = new SseStream(req, res, this.clock);
        const stop = this.actions.watch((record) => sse.send("record", record));
        return sse.closed.then(stop);
      }
      case "GET /api/files":
        return sendJson(res, 200, { files: await this.files.list() });
      case "GET /api/files/stream": {
        const sse = new SseStream(req, res, this.clock);
        const stop = this.files.watch((files) => sse.send("catalog", { files }));
        return sse.closed.then(stop);
      }
      case "GET /api/files/content":
        return this.#download(url, res);
      case "POST /api/files/content":
        return this.#upload(url, req, res);
      case "GET /api/hosts/stream": {
        const query = checkedHostQuery(url);
        return streamHosts(this.client, this.clock, query, new SseStream(req, res, this.clock));
      }
    }
    throw new NotFoundError(`no API ${route}`);
  }

  #session() {
    return {
      version: VERSION,
      cluster: this.o.cluster,
      nats: this.o.nats,
      user: this.o.user,
      role: this.o.role,
      signing: this.o.role === "admin" && this.o.signer !== undefined ? this.o.signer.key : null,
      maxFileBytes: this.o.maxFileBytes,
      requests: requestCatalog(this.o.role),
      /** Why a page's part is disabled for this console, or null. */
      disabled: {
        mutating: requestCatalog(this.o.role).mutatingDisabled,
        actions: this.o.role === "admin" ? null : VIEWER_CANNOT_READ_LOG,
        commit: this.o.role === "admin" ? null : VIEWER_CANNOT_COMMIT,
      },
    };
  }

  async #clusterStream(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const sse = new SseStream(req, res, this.clock);
    sse.send("snapshot", { picture: this.feed.picture(), events: this.feed.events() });
    const offPicture = this.feed.onPicture((picture) => sse.send("picture", picture));
    const offEvent = this.feed.onEvent((event) => sse.send("event", event));
    await sse.closed;
    offPicture();
    offEvent();
  }

  async #download(url: URL, res: ServerResponse): Promise<void> {
    const name = checkedName(url.searchParams.get("name"));
    const { listing, bytes } = await this.files.download(name);
    const base = name.split("/").pop() ?? "file";
    res.writeHead(200, {
      "content-type": "application/octet-stream",
      "content-length": String(bytes.byteLength),
      "content-disposition": `attachment; filename="${base.replace(/[^A-Za-z0-9._-]/g, "_")}"`,
      "x-dvs-version": String(listing.version),
      "x-dvs-sha256": listing.sha256,
      "x-content-type-options": "nosniff",
      "cache-control": "no-store",
    });
    res.end(bytes);
  }

  async #upload(url: URL, req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.files.checkCommit();
    const name = checkedName(url.searchParams.get("name"));
    if ((req.headers["content-type"] ?? "").split(";")[0]?.trim() !== "application/octet-stream") {
      throw new BadInputError("expected Content-Type: application/octet-stream");
    }
    let bytes: Buffer;
    try {
      bytes = await readBody(req, this.o.maxFileBytes);
    } catch (error) {
      if (error instanceof TooLargeError) {
        throw new TooLargeError(
          `${error.message} (--max-file-bytes); use dvsctl file commit for larger files`,
        );
      }
      throw error;
    }
    await this.files.commit(name, bytes, new NdjsonStream(res));
  }
}
