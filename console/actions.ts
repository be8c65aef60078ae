// The Actions page's API: the action log as the JetStream stream holds it
// (filtered by type, node and time), one action's records, and records as the
// nodes write them. The log is the admin user's to read (nats.conf): a viewer
// console says so instead of failing on every call.
import { z } from "zod";
import { type ActionRecord, type JetStreamActionLog, watchActionRecords } from "../client/actions.js";
import type { Transport } from "../client/connection.js";
import { actionIdSchema, type Role } from "../client/wire.js";
import { BadInputError, ClusterUnreachableError, NotPermittedError } from "./errors.js";
import { issuesOf } from "./http.js";

export const VIEWER_CANNOT_READ_LOG =
  "this console runs as viewer: the action log is the admin user's to read (nats.conf). Start it with --admin to see it.";

/** The largest listing one call returns; a time filter reads up to SCAN_LIMIT actions to find them. */
const MAX_LIMIT = 500;
const SCAN_LIMIT = 2_000;

const optionalInt = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d{1,16}$/)
    .transform(Number)
    .pipe(z.number().int().min(min).max(max))
    .optional();

export const actionQuerySchema = z.strictObject({
  type: z
    .string()
    .regex(/^(RQST_)?[A-Z]{1,32}$/)
    .transform((t) => t.replace(/^RQST_/, ""))
    .optional(),
  node: optionalInt(0, 65_535),
  /** ms since the epoch, inclusive. */
  since: optionalInt(0, Number.MAX_SAFE_INTEGER),
  until: optionalInt(0, Number.MAX_SAFE_INTEGER),
  limit: optionalInt(1, MAX_LIMIT),
});

/** Query parameters as one object, refused when a name repeats (a hostile query may try). */
export function queryOf(url: URL): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of url.searchParams) {
    if (k in out) throw new BadInputError(`query parameter ${k} is given twice`);
    if (v !== "") out[k] = v;
  }
  return out;
}

export class ActionsApi {
  constructor(
    readonly role: Role,
    readonly log: JetStreamActionLog,
    readonly transport: Transport,
    readonly cluster: string,
  ) {}

  /** Throws unless this console's user may read the log. */
  check(): void {
    if (this.role !== "admin") throw new NotPermittedError(VIEWER_CANNOT_READ_LOG);
  }

  async list(url: URL) {
    this.check();
    const parsed = actionQuerySchema.safeParse(queryOf(url));
    if (!parsed.success) throw new BadInputError("bad query", issuesOf(parsed.error));
    const { type, node, since, until } = parsed.data;
    const limit = parsed.data.limit ?? 100;
    const timed = since !== undefined || until !== undefined;
    try {
      const listed = await this.log.list({
        limit: timed ? SCAN_LIMIT : limit,
        ...(type !== undefined ? { type } : {}),
        ...(node !== undefined ? { node } : {}),
      });
      const inTime = listed.filter(
        (a) =>
          (since === undefined || a.request.at >= since) && (until === undefined || a.request.at <= until),
      );
      return { actions: inTime.slice(-limit).reverse(), skipped: this.log.skipped };
    } catch (error) {
      throw new ClusterUnreachableError(`cannot read the action log: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  async show(id: string) {
    this.check();
    if (!actionIdSchema.safeParse(id).success)
      throw new BadInputError(`${JSON.stringify(id)} is not an action id`);
    try {
      return { action: id, records: await this.log.show(id) };
    } catch (error) {
      throw new ClusterUnreachableError(`cannot read the action log: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  /** Records as they are written, until the returned function is called. */
  watch(onRecord: (record: ActionRecord) => void): () => void {
    this.check();
    const sub = watchActionRecords(this.transport, this.cluster, onRecord, () => {});
    return () => sub.unsubscribe();
  }
}
