// The two request/reply paths the RQST rows compare, each served by a process
// of its own as a user meets them: one `dvsd run` node (its default log level,
// V8 flags and admission budget) answering GETDVSINFO on its own subject, and
// a bare nats.js echo (bench/echoResponder.ts) started with the same V8 flags,
// connected by the same `connectNats` options as the same node user, on the
// same kind of subject. The requests come from the bench process, each side
// through its own connection with the same `connectNats` options: raw through
// nats.js's `request`, ours through DvsClient (CBOR and zod on both ends).
import type { ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { DvsClient } from "../client/dvsClient.js";
import { devNodeCredentials } from "../daemon/credentials.js";
import { encode, parseRply } from "../protocol/codec.js";
import { PROTOCOL_VERSION, rcode } from "../protocol/messages.js";
import { subjects } from "../protocol/subjects.js";
import { echoed } from "./echo.js";
import { UnexpectedReplyError } from "./errors.js";
import type { Requester } from "./load.js";
import type { BenchContext, Measurement } from "./row.js";
import { DvsdCluster } from "./rows/dvsdCluster.js";

/** Printed with each row that uses these processes, so how the two sides differ is never hidden. */
export const NODE_ECHO_NOTE =
  "ours: one `dvsd run` process (default log level and admission budget) answering GETDVSINFO on its own subject; raw: a nats.js echo (`msg.respond(msg.data)`) in a process of its own; both with the node V8 flags, the same connectNats options and node user, and the bench's requests on two connections with the same connectNats options (noAsyncTraces on both); raw and node are asked through nats.js `request`, ours through DvsClient and NatsTransport's own request path, which does not build nats.js's Error per request (raw-transport: the echo asked that way)";

const NODE = 1;
const CLIENT_ID = "bench-client";
const REQUEST_TIMEOUT_MS = 5_000;
const SETUP_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 4_000;

export interface NodeEchoPair {
  readonly raw: Requester;
  readonly ours: Requester;
  /**
   * The node asked as the raw echo is: nats.js `request` with the same RQST
   * bytes, the reply's bytes not decoded. Against raw: what the node adds;
   * against ours: what DvsClient adds (encoding, decoding and checking the RPLY).
   */
  readonly bare: Requester;
  /**
   * The echo asked through NatsTransport's `request` (its own inbox
   * subscription, transport/natsRequests.ts), the path DvsClient takes,
   * instead of nats.js's: against raw, what that request path alone changes.
   */
  readonly rawTransport: Requester;
  /** Encoded sizes: the raw echo carries the bytes of one of our RQSTs both ways. */
  readonly bytes: { readonly rqst: number; readonly rply: number };
  /** VmRSS and VmHWM of the node and the echo, read now from /proc (absent where /proc is not). */
  memory(): Measurement[];
  readonly notes: readonly string[];
}

/**
 * Starts a one-node cluster named `cluster` (DVSINIT done, so GETDVSINFO is
 * served) and the echo responder, and proves each path with one request.
 */
export async function startNodeEchoPair(runCtx: BenchContext, cluster: string): Promise<NodeEchoPair> {
  const ctx = await onOwnServer(runCtx);
  const dvsd = await DvsdCluster.create(ctx, { nodes: 1, cluster, logLevel: "info" });
  const node = dvsd.start(NODE);
  await dvsd.converged([NODE], SETUP_TIMEOUT_MS);
  const admin = new DvsClient(await ctx.connect(`bench-${cluster}-admin`), {
    cluster,
    clientId: "bench-admin",
    timeoutMs: REQUEST_TIMEOUT_MS,
    signer: dvsd.signer,
  });
  const init = await ctx.within(
    SETUP_TIMEOUT_MS,
    "DVSINIT",
    admin.request("DVSINIT", { name: cluster }, { dst: NODE }),
  );
  if (init.rcode < 0 && init.rcode !== rcode("EEXIST")) {
    throw new UnexpectedReplyError(admin.subjects.nodeRqst(NODE), `DVSINIT rcode ${init.rcode}`);
  }

  // The echo takes the subject a node of another cluster would serve, as the same node user.
  const rawSubject = subjects(`${cluster}-raw`).nodeRqst(NODE);
  const echo = ctx.spawn(
    process.execPath,
    [
      ...ctx.nodeFlags,
      join(ctx.repoRoot, "dist/bench/echoResponder.js"),
      JSON.stringify({ url: ctx.url, ...devNodeCredentials(NODE), subject: rawSubject }),
    ],
    { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, DVS_PARENT_PID: String(process.pid) } },
  );
  await ctx.within(SETUP_TIMEOUT_MS, "the echo responder's ready line", readyLine(echo.stdout));
  // Stopped as an operator would stop them, so a `--node-flags=--cpu-prof` run writes its profiles
  // (the row's scope SIGKILLs whatever is left after this).
  ctx.defer(() => Promise.all([terminate(node), terminate(echo)]));

  const client = new DvsClient(await ctx.connect(CLIENT_ID), {
    cluster,
    clientId: CLIENT_ID,
    timeoutMs: REQUEST_TIMEOUT_MS,
  });
  const ours: Requester = async () => {
    const rply = await client.request("GETDVSINFO", {}, { dst: NODE });
    if (rply.rcode !== 0) {
      throw new UnexpectedReplyError(client.subjects.nodeRqst(NODE), `rcode ${rply.rcode}`);
    }
  };
  // A RQST like the ones our client sends, so both paths move requests of the same size.
  const payload = encode({
    v: PROTOCOL_VERSION,
    type: "GETDVSINFO",
    src: CLIENT_ID,
    dst: NODE,
    seq: 1,
    params: {},
  });
  const rawTransport = await ctx.connect("bench-raw-requester");
  const rawConnection = rawTransport.connection;
  const raw = echoed(rawSubject, payload, () =>
    rawConnection.request(rawSubject, payload, { timeout: REQUEST_TIMEOUT_MS }),
  );
  const viaTransport = echoed(rawSubject, payload, () =>
    rawTransport.request(rawSubject, payload, { timeoutMs: REQUEST_TIMEOUT_MS }),
  );
  const nodeSubject = client.subjects.nodeRqst(NODE);
  // The same request bytes get the same reply bytes (GETDVSINFO of a node at rest): a reply of
  // another length is another answer (an EAGAIN of the admission budget), caught without decoding it.
  let bareReplyBytes = 0;
  const bare: Requester = async () => {
    const reply = await rawConnection.request(nodeSubject, payload, { timeout: REQUEST_TIMEOUT_MS });
    if (reply.data.byteLength !== bareReplyBytes) {
      const parsed = parseRply(reply.data, "cbor");
      throw new UnexpectedReplyError(
        nodeSubject,
        parsed.ok ? `rcode ${parsed.rply.rcode}, ${reply.data.byteLength} bytes` : parsed.message,
      );
    }
  };

  await ctx.within(SETUP_TIMEOUT_MS, "first raw request", raw());
  const first = await ctx.within(
    SETUP_TIMEOUT_MS,
    "first GETDVSINFO",
    client.request("GETDVSINFO", {}, { dst: NODE }),
  );
  if (first.rcode !== 0)
    throw new UnexpectedReplyError(client.subjects.nodeRqst(NODE), `rcode ${first.rcode}`);

  const firstBare = await ctx.within(
    SETUP_TIMEOUT_MS,
    "first bare GETDVSINFO",
    rawConnection.request(nodeSubject, payload, { timeout: REQUEST_TIMEOUT_MS }),
  );
  const checked = parseRply(firstBare.data, "cbor");
  if (!checked.ok || checked.rply.rcode !== 0) {
    throw new UnexpectedReplyError(nodeSubject, checked.ok ? `rcode ${checked.rply.rcode}` : checked.message);
  }
  bareReplyBytes = firstBare.data.byteLength;

  return {
    raw,
    ours,
    bare,
    rawTransport: viaTransport,
    bytes: { rqst: payload.byteLength, rply: encode(first).byteLength },
    memory: () => [...memoryOf("node", node.pid), ...memoryOf("echo", echo.pid)],
    notes: [NODE_ECHO_NOTE, `V8 flags of both processes: ${ctx.nodeFlags.join(" ") || "(none)"}`],
  };
}

/**
 * The row's context on a nats-server of its own, stopped with the row: the
 * node's action log reserves its stream's whole size (1 GiB by default) of
 * the server's JetStream store, which the rows after this one need, and no
 * other row's leftovers share the server with the timed requests.
 */
async function onOwnServer(ctx: BenchContext): Promise<BenchContext> {
  const { url } = await ctx.startNatsServer();
  return {
    ...ctx,
    url,
    connect: (name, other = url) => ctx.connect(name, other),
    connectRaw: (name, other = url) => ctx.connectRaw(name, other),
  };
}

/** SIGTERM, then resolves once the process has exited or after STOP_TIMEOUT_MS. */
function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, STOP_TIMEOUT_MS);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

function readyLine(stdout: NodeJS.ReadableStream | null): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!stdout) return reject(new Error("the echo responder has no stdout"));
    const lines = createInterface({ input: stdout });
    lines.on("line", (line) => {
      if (line.trim() === "ready") resolve();
    });
    lines.on("close", () => reject(new Error("the echo responder exited before it was ready")));
  });
}

/** VmRSS and VmHWM in MiB (/proc counts KiB); nothing when they cannot be read. */
function memoryOf(who: string, pid: number | undefined): Measurement[] {
  if (pid === undefined) return [];
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1]);
    return [
      { name: `${who}.rss`, value: kib("VmRSS") / 1_024, unit: "MiB" },
      { name: `${who}.rss-peak`, value: kib("VmHWM") / 1_024, unit: "MiB" },
    ];
  } catch {
    return [];
  }
}
