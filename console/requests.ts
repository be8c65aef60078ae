// The Request page's API: the request types with their params' JSON Schema
// (made from the zod schemas the nodes validate with), and sending one request
// to a node, to ALL (one request, the answering node gathers every member's
// entry) or to EACH member (one request per node, so each row lands as that
// node answers). The answer streams as NDJSON: what was sent and whom it
// waits for, one line per node's entry, then the end.
import { z } from "zod";
import type { Clock } from "../client/connection.js";
import type { DvsClient } from "../client/dvsClient.js";
import {
  ALL,
  ERRORS,
  errorName,
  isRequestType,
  MUTATING_TYPES,
  nodeIdSchema,
  PARAMS,
  REQUEST_GROUPS,
  type RequestType,
  type Role,
  type Rply,
  UNICAST_ONLY_TYPES,
} from "../client/wire.js";
import { BadInputError, NotFoundError } from "./errors.js";
import { issuesOf, type NdjsonStream } from "./http.js";

/** The largest request body the console reads (the nodes' own RQST limit is 256 KiB). */
export const REQUEST_BODY_BYTES = 256 * 1024;

export const requestBodySchema = z.strictObject({
  type: z.string().min(1).max(32),
  dst: z.union([nodeIdSchema, z.literal(ALL), z.literal("EACH")]),
  params: z.unknown().optional(),
  /** How long to wait for the answer (a gathering node waits a little less). */
  timeoutMs: z.number().int().min(100).max(120_000).optional(),
});
export type RequestBody = z.infer<typeof requestBodySchema>;

/** What the page needs to build its forms: the types by group, which mutate, the error names. */
export function requestCatalog(role: Role) {
  return {
    groups: REQUEST_GROUPS,
    mutating: [...MUTATING_TYPES],
    unicastOnly: [...UNICAST_ONLY_TYPES],
    errors: Object.fromEntries(
      Object.entries(ERRORS).map(([name, e]) => [e.code, { name, meaning: e.meaning }]),
    ),
    /** Why a mutating type is disabled for this console, or null when it is not. */
    mutatingDisabled:
      role === "admin"
        ? null
        : "this console runs as viewer: the nodes refuse requests that change them (EPERM). Start it with --admin to send them.",
  };
}

const schemas = new Map<RequestType, unknown>();

/** The JSON Schema of a type's params (zod's, as input: optional fields are optional). */
export function paramsSchemaOf(type: string): unknown {
  const bare = type.replace(/^RQST_/, "");
  if (!isRequestType(bare)) throw new NotFoundError(`no request type ${JSON.stringify(type)}`);
  let schema = schemas.get(bare);
  if (schema === undefined) {
    schema = z.toJSONSchema(PARAMS[bare], { io: "input", unrepresentable: "any" });
    schemas.set(bare, schema);
  }
  return schema;
}

/** A request the page may send: a known type, params that pass the nodes' own schema, a destination that fits. */
export function checkedRequest(body: RequestBody): { type: RequestType; params: unknown } {
  const type = body.type.replace(/^RQST_/, "");
  if (!isRequestType(type)) throw new BadInputError(`no request type ${JSON.stringify(body.type)}`);
  if ((body.dst === "ALL" || body.dst === "EACH") && UNICAST_ONLY_TYPES.has(type)) {
    throw new BadInputError(`${type} acts on one node: pick a node, not ${body.dst}`);
  }
  const parsed = PARAMS[type].safeParse(body.params ?? {});
  if (!parsed.success) throw new BadInputError(`bad params for ${type}`, issuesOf(parsed.error));
  return { type, params: parsed.data };
}

export interface SendContext {
  readonly client: DvsClient;
  /** Times the answer (`done.ms`). */
  readonly clock: Pick<Clock, "now">;
  /** Whom ALL and EACH address: the majority's view. */
  readonly members: () => number[];
  /** A new action id for an administrative console (every request it sends is an action); none for a viewer's reads. */
  readonly actionId: (() => string) | undefined;
}

/** The RQST `timeout` for a wait of `timeoutMs`: a little less, so the gathering node answers the silent members as ETIMEDOUT first. */
export function gatherTimeout(timeoutMs: number): number {
  const margin = Math.min(1_000, Math.max(100, Math.round(timeoutMs / 10)));
  return Math.max(1, timeoutMs - margin);
}

/** An entry as the page shows it: the node, the rcode and its name, the data. */
export function entryLine(e: Rply) {
  return {
    kind: "entry",
    node: e.src,
    rcode: e.rcode,
    rcodeName: e.rcode < 0 ? (errorName(e.rcode) ?? "EUNKNOWN") : null,
    count: e.count,
    data: e.data,
  };
}

function entriesOf(rply: Rply, all: boolean): Rply[] {
  const isRply = (v: unknown) => typeof v === "object" && v !== null && "rcode" in v && "src" in v;
  if (all && Array.isArray(rply.data) && rply.data.every(isRply)) return rply.data as Rply[];
  return [rply];
}

/** Sends the request and streams its rows; a transport failure ends the stream with an error line. */
export async function sendRequest(
  ctx: SendContext,
  body: RequestBody,
  checked: { type: RequestType; params: unknown },
  out: NdjsonStream,
): Promise<void> {
  const { type, params } = checked;
  const timeoutMs = body.timeoutMs ?? 5_000;
  const started = ctx.clock.now();
  const expect = body.dst === "ALL" || body.dst === "EACH" ? ctx.members() : [body.dst];
  const one = async (dst: number | typeof ALL) => {
    const action = ctx.actionId?.();
    const rply = await ctx.client.request(type, params, {
      dst,
      timeoutMs,
      gatherTimeoutMs: gatherTimeout(timeoutMs),
      ...(action !== undefined ? { action } : {}),
    });
    return { rply, entries: entriesOf(rply, dst === ALL) };
  };
  if (body.dst === "EACH" && expect.length === 0) {
    out.end({
      kind: "error",
      error: "ENOMEMBERS",
      message: "no node has answered the console yet: nobody to send EACH to",
    });
    return;
  }
  out.write({ kind: "sent", type, dst: body.dst, expect, mutating: MUTATING_TYPES.has(type) });
  if (body.dst === "EACH") {
    const results = await Promise.all(
      expect.map(async (node) => {
        try {
          const { rply, entries } = await one(node);
          for (const e of entries) out.write(entryLine(e));
          return rply.action;
        } catch (error) {
          out.write({
            kind: "entry",
            node,
            rcode: null,
            rcodeName: (error as Error).name,
            count: 0,
            data: { message: (error as Error).message },
          });
          return undefined;
        }
      }),
    );
    out.end({
      kind: "done",
      actions: results.filter((a) => a !== undefined),
      ms: Math.round(ctx.clock.now() - started),
    });
    return;
  }
  try {
    const { rply, entries } = await one(body.dst);
    for (const e of entries) out.write(entryLine(e));
    out.end({
      kind: "done",
      answeredBy: rply.src,
      rcode: rply.rcode,
      actions: rply.action ? [rply.action] : [],
      ms: Math.round(ctx.clock.now() - started),
    });
  } catch (error) {
    out.end({ kind: "error", error: (error as Error).name, message: (error as Error).message });
  }
}
