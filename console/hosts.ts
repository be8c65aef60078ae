// The Hosts page's feed: PS, VMSTAT or DF of one node or all, asked again
// every few seconds for as long as the page stays open (the server keeps
// time; the page only listens), each round pushed as one server-sent event.
import { z } from "zod";
import type { Clock, TimerHandle } from "../client/connection.js";
import type { DvsClient } from "../client/dvsClient.js";
import { ALL, errorName, type Rply } from "../client/wire.js";
import { queryOf } from "./actions.js";
import { BadInputError } from "./errors.js";
import { issuesOf, type SseStream } from "./http.js";

export const HOST_TYPES = ["PS", "VMSTAT", "DF"] as const;

export const hostQuerySchema = z.strictObject({
  type: z.enum(HOST_TYPES),
  dst: z.union([
    z.literal(ALL),
    z
      .string()
      .regex(/^\d{1,5}$/)
      .transform(Number)
      .pipe(z.number().int().max(65_535)),
  ]),
  everyMs: z
    .string()
    .regex(/^\d{1,6}$/)
    .transform(Number)
    .pipe(z.number().int().min(2_000).max(300_000))
    .optional(),
});

export function checkedHostQuery(url: URL) {
  const parsed = hostQuerySchema.safeParse(queryOf(url));
  if (!parsed.success) throw new BadInputError("bad query", issuesOf(parsed.error));
  return parsed.data;
}

const entries = (rply: Rply, all: boolean): Rply[] =>
  all && Array.isArray(rply.data) ? (rply.data as Rply[]) : [rply];

/** Asks, pushes a `round` event, waits, until the page goes away. */
export async function streamHosts(
  client: DvsClient,
  clock: Clock,
  query: z.infer<typeof hostQuerySchema>,
  sse: SseStream,
): Promise<void> {
  const every = query.everyMs ?? 5_000;
  const params = query.type === "VMSTAT" ? {} : { limit: 500 };
  while (sse.open) {
    try {
      const rply = await client.request(query.type, params, {
        dst: query.dst,
        timeoutMs: 5_000,
        gatherTimeoutMs: 4_000,
      });
      sse.send("round", {
        type: query.type,
        at: clock.now(),
        entries: entries(rply, query.dst === ALL).map((e) => ({
          node: e.src,
          rcode: e.rcode,
          rcodeName: e.rcode < 0 ? (errorName(e.rcode) ?? "EUNKNOWN") : null,
          data: e.data,
        })),
      });
    } catch (error) {
      sse.send("failure", { error: (error as Error).name, message: (error as Error).message });
    }
    let timer: TimerHandle | undefined;
    await Promise.race([
      new Promise((r) => (timer = clock.setTimeout(() => r(undefined), every))),
      sse.closed,
    ]);
    if (timer !== undefined) clock.clearTimeout(timer);
  }
}
