// The two request/reply paths of `rqst-latency-in-process`, both inside the
// bench process, beside the client: a bare nats.js echo (a responder doing
// `msg.respond(msg.data)`) and our own stack (DvsClient → NatsTransport →
// RequestServer with a GETDVSINFO handler, CBOR and zod validation on both
// ends), each on its own pair of connections. Not what a user meets (no node
// process, no node flags): `rqst-latency` measures that (bench/nodeEcho.ts).

import { silentLogger } from "../actors/logger.js";
import { DEFAULT_BUDGETS, RequestBudget } from "../actors/requestBudget.js";
import { RequestServer } from "../actors/requestServer.js";
import { DvsClient } from "../client/dvsClient.js";
import { encode, makeRply } from "../protocol/codec.js";
import { PROTOCOL_VERSION } from "../protocol/messages.js";
import { subjects } from "../protocol/subjects.js";
import { systemClock } from "../transport/clock.js";
import { UnexpectedReplyError } from "./errors.js";
import type { Requester } from "./load.js";
import type { BenchContext } from "./row.js";

/** Printed with each echo row, so the comparison's one client difference is never hidden. */
export const ECHO_CLIENT_NOTE =
  "raw: nats.js connection defaults; ours: NatsTransport, which sets noAsyncTraces (no stack captured per request); the request server's admission budget is lifted (the default caps an admin at 2,000 requests/s per node)";

/** A role budget no bench run reaches. */
const UNBOUNDED_ROLE = { ratePerSecond: 1e9, burst: 1e9, concurrentAll: 1e6 };

const CLUSTER = "bench";
const NODE = 1;
const CLIENT_ID = "bench-client";
const RAW_SUBJECT = "bench.raw.echo";
const REQUEST_TIMEOUT_MS = 5_000;
const SETUP_TIMEOUT_MS = 5_000;

/** A small, fixed `dvs_usr`, the shape GETDVSINFO answers with. */
const DVS_INFO = {
  name: "bench",
  nr_dcs: 32,
  nr_nodes: 32,
  nr_procs: 256,
  nr_tasks: 1_024,
  nr_sysprocs: 64,
  max_copybuf: 65_536,
  max_copylen: 1_048_576,
  dbglvl: 0,
  version: "0.1.0",
};

export interface EchoPair {
  readonly raw: Requester;
  readonly ours: Requester;
  /** Encoded sizes: the raw echo carries the bytes of one of our RQSTs both ways. */
  readonly bytes: { readonly rqst: number; readonly rply: number };
}

export async function startEchoPair(ctx: BenchContext): Promise<EchoPair> {
  // A RQST like the ones our client sends, so both paths move requests of the same size.
  const sampleRqst = {
    v: PROTOCOL_VERSION,
    type: "GETDVSINFO",
    src: CLIENT_ID,
    dst: NODE,
    seq: 1,
    params: {},
  };
  const payload = encode(sampleRqst);
  const rplyBytes = encode(makeRply(sampleRqst, NODE, 0, DVS_INFO)).byteLength;

  const responder = await ctx.connectRaw("bench-raw-responder");
  const requester = await ctx.connectRaw("bench-raw-requester");
  responder.subscribe(RAW_SUBJECT, {
    callback: (error, msg) => {
      if (!error) msg.respond(msg.data);
    },
  });
  await ctx.within(SETUP_TIMEOUT_MS, "flush the raw responder", responder.flush());
  const raw = echoed(RAW_SUBJECT, payload, () =>
    requester.request(RAW_SUBJECT, payload, { timeout: REQUEST_TIMEOUT_MS }),
  );

  const nodeTransport = await ctx.connect(`bench-node-${NODE}`);
  const server = new RequestServer({
    node: NODE,
    subjects: subjects(CLUSTER),
    transport: nodeTransport,
    clock: systemClock,
    logger: silentLogger,
    handlers: { GETDVSINFO: () => ({ rcode: 0, data: DVS_INFO }) },
    // The rows measure the request path against a raw echo, not the admission
    // policy: the default budget (2,000 admin requests/s per node) would refuse
    // most of a pipelined run with EAGAIN.
    budget: new RequestBudget(systemClock, { ...DEFAULT_BUDGETS, admin: UNBOUNDED_ROLE }),
  });
  server.start();
  ctx.defer(() => server.stop());
  await ctx.within(SETUP_TIMEOUT_MS, "flush the request server", nodeTransport.flush());
  const client = new DvsClient(await ctx.connect(CLIENT_ID), {
    cluster: CLUSTER,
    clientId: CLIENT_ID,
    timeoutMs: REQUEST_TIMEOUT_MS,
  });
  const ours: Requester = async () => {
    const rply = await client.request("GETDVSINFO", {}, { dst: NODE });
    if (rply.rcode !== 0) {
      throw new UnexpectedReplyError(client.subjects.nodeRqst(NODE), `rcode ${rply.rcode}`);
    }
  };

  // One request each proves the wiring before anything is timed.
  await ctx.within(SETUP_TIMEOUT_MS, "first raw request", raw());
  await ctx.within(SETUP_TIMEOUT_MS, "first GETDVSINFO", ours());
  return { raw, ours, bytes: { rqst: payload.byteLength, rply: rplyBytes } };
}

/** A request to an echo, whose reply must carry as many bytes as `payload`. */
export function echoed(
  subject: string,
  payload: Uint8Array,
  send: () => Promise<{ readonly data: Uint8Array }>,
): Requester {
  return async () => {
    const reply = await send();
    if (reply.data.byteLength !== payload.byteLength)
      throw new UnexpectedReplyError(subject, `${reply.data.byteLength} bytes, sent ${payload.byteLength}`);
  };
}
