// The console's HTTP plumbing: every request is checked before it is routed
// (a Host the console answers to; for anything that acts, the same Origin and
// the console's own header, so no other page the operator has open can make
// the console act with the operator's rights), bodies are read up to a limit,
// and answers are JSON, NDJSON streams or server-sent events.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { z } from "zod";
import type { Clock } from "../client/connection.js";
import { BadInputError, ConsoleHttpError, ForbiddenOriginError, TooLargeError } from "./errors.js";

/** The header every state-changing call must carry: a page of another origin cannot send it without a CORS preflight, which the console never grants. */
export const CONSOLE_HEADER = "x-dvs-console";

/** Headers of every answer: nothing may frame, sniff or leak the console. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store",
  "content-security-policy":
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
};

/** The Host header values the console answers to: its own address, and the loopback names when it binds loopback. */
export function allowedHosts(host: string, port: number): Set<string> {
  const names = new Set([host.includes(":") ? `[${host}]` : host]);
  if (["127.0.0.1", "::1", "localhost"].includes(host))
    for (const n of ["127.0.0.1", "localhost", "[::1]"]) names.add(n);
  return new Set([...names].map((n) => `${n}:${port}`));
}

/**
 * Refuses a request whose Host is not the console's (DNS rebinding), and a
 * state-changing one (any method but GET and HEAD) that comes from another
 * origin or lacks the console's header.
 */
export function checkRequest(req: IncomingMessage, hosts: ReadonlySet<string>): void {
  const host = req.headers.host ?? "";
  if (!hosts.has(host.toLowerCase()))
    throw new ForbiddenOriginError(`the console does not answer to Host ${JSON.stringify(host)}`);
  if (req.method === "GET" || req.method === "HEAD") return;
  const origin = req.headers.origin?.toLowerCase();
  if (origin !== undefined && !(origin.startsWith("http://") && hosts.has(origin.slice("http://".length)))) {
    throw new ForbiddenOriginError(`cross-origin ${req.method} refused (Origin ${req.headers.origin})`);
  }
  if (req.headers[CONSOLE_HEADER] !== "1") {
    throw new ForbiddenOriginError(`${req.method} needs the header ${CONSOLE_HEADER}: 1`);
  }
}

/** Reads the whole body, refusing one over `limit` bytes as soon as it is. */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers["content-length"] ?? 0);
  if (declared > limit) throw new TooLargeError(`body of ${declared} bytes exceeds the limit of ${limit}`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).byteLength;
    if (size > limit) {
      req.destroy();
      throw new TooLargeError(`body exceeds the limit of ${limit} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, size);
}

/** A JSON body, parsed and validated with `schema`; 400 with zod's issue paths when it is not. */
export async function readJson<T extends z.ZodType>(
  req: IncomingMessage,
  schema: T,
  limit: number,
): Promise<z.infer<T>> {
  const type = (req.headers["content-type"] ?? "").split(";")[0]?.trim();
  if (type !== "application/json") throw new BadInputError("expected Content-Type: application/json");
  let value: unknown;
  try {
    value = JSON.parse((await readBody(req, limit)).toString("utf8"));
  } catch (error) {
    if (error instanceof ConsoleHttpError) throw error;
    throw new BadInputError(`the body is not JSON: ${(error as Error).message}`);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new BadInputError("the body is not valid", issuesOf(parsed.error));
  return parsed.data;
}

/** Zod's issues as `path: message` pairs (at most 16). */
export function issuesOf(error: z.ZodError): { path: string; message: string }[] {
  return error.issues.slice(0, 16).map((i) => ({
    path: i.path.length > 0 ? i.path.map(String).join(".") : "(root)",
    message: i.message,
  }));
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...SECURITY_HEADERS, "content-type": "application/json; charset=utf-8" });
  res.end(text);
}

/** The JSON error body of a refusal; anything not a ConsoleHttpError is a 500 that names only its class. */
export function sendError(res: ServerResponse, error: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (error instanceof ConsoleHttpError) {
    sendJson(res, error.status, {
      error: error.code,
      message: error.message,
      ...(error.issues ? { issues: error.issues } : {}),
    });
    return;
  }
  sendJson(res, 500, {
    error: "EINTERNAL",
    message: `${(error as Error)?.name ?? "Error"}: ${(error as Error)?.message ?? String(error)}`,
  });
}

/** One NDJSON line at a time: the page reads each as it arrives (a request's rows, a commit's progress). */
export class NdjsonStream {
  constructor(readonly res: ServerResponse) {
    res.writeHead(200, { ...SECURITY_HEADERS, "content-type": "application/x-ndjson; charset=utf-8" });
  }

  write(line: unknown): void {
    if (!this.res.writableEnded) this.res.write(`${JSON.stringify(line)}\n`);
  }

  end(line?: unknown): void {
    if (line !== undefined) this.write(line);
    if (!this.res.writableEnded) this.res.end();
  }
}

/** A server-sent events stream; `closed` resolves when the page goes away. */
export class SseStream {
  readonly closed: Promise<void>;
  #open = true;

  constructor(
    req: IncomingMessage,
    readonly res: ServerResponse,
    clock: Clock,
    keepAliveMs = 15_000,
  ) {
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      "content-type": "text/event-stream; charset=utf-8",
      connection: "keep-alive",
    });
    res.write("retry: 2000\n\n");
    // A comment now and then keeps proxies and the browser from timing the stream out.
    const ping = () => {
      if (!this.#open) return;
      res.write(": ping\n\n");
      timer = clock.setTimeout(ping, keepAliveMs);
    };
    let timer = clock.setTimeout(ping, keepAliveMs);
    this.closed = new Promise((resolve) => {
      const done = () => {
        this.#open = false;
        clock.clearTimeout(timer);
        resolve();
      };
      req.once("close", done);
      res.once("close", done);
    });
  }

  get open(): boolean {
    return this.#open;
  }

  send(event: string, data: unknown): void {
    if (this.#open) this.res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  close(): void {
    if (this.#open) this.res.end();
  }
}
