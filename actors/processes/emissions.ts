// What a process emits, checked and carried out: `dvs.send` sends a message
// (within its privileges), `dvs.rqst` makes a request whose reply or failure
// comes back to it as `dvs.rply` or `dvs.error` if it still runs here.
import { z } from "zod";
import type { DvsEvent, Sender } from "../../machines/processEvents.js";
import { makeRqst } from "../../protocol/codec.js";
import {
  dcidSchema,
  endpointSchema,
  isRequestType,
  type NodeId,
  nodeIdSchema,
  type Rqst,
} from "../../protocol/messages.js";
import { transportFailure } from "./failures.js";
import type { Forwarding } from "./forwarding.js";
import {
  type Hosted,
  type HostedTable,
  type ProcessRuntimeStats,
  senderKey,
  tell,
  type Warn,
} from "./hosted.js";
import type { Persistence } from "./persistence.js";
import { allowsEndpoint, allowsRqst } from "./privileges.js";
import type { Router } from "./routing.js";

const sendEmittedSchema = z.object({
  type: z.literal("dvs.send"),
  dcid: dcidSchema.optional(),
  endpoint: endpointSchema,
  body: z.unknown(),
});

const rqstEmittedSchema = z.object({
  type: z.literal("dvs.rqst"),
  id: z.union([z.string().max(128), z.number()]),
  request: z.string().min(1).max(40),
  dst: nodeIdSchema.optional(),
  params: z.unknown().optional(),
});

export interface EmissionsOptions {
  readonly self: NodeId;
  readonly table: HostedTable;
  readonly router: Router;
  readonly forwarding: Forwarding;
  readonly persistence: Persistence;
  readonly warn: Warn;
  readonly stats: ProcessRuntimeStats;
  /** Whether `node` is this node or a member of its view. */
  readonly inView: (node: NodeId) => boolean;
}

export class Emissions {
  readonly #o: EmissionsOptions;

  constructor(options: EmissionsOptions) {
    this.#o = options;
  }

  /** `dvs.send`: one message to `(dcid ?? its own, endpoint)`. */
  onSend(h: Hosted, emitted: unknown): void {
    const parsed = sendEmittedSchema.safeParse(emitted);
    if (!parsed.success) {
      tell(h, { type: "dvs.error", op: "dvs.send", error: "EINVAL", message: "malformed dvs.send" });
      return;
    }
    const { endpoint, body } = parsed.data;
    const dcid = parsed.data.dcid ?? h.dcid;
    if (!allowsEndpoint(h.priv, endpoint)) {
      this.#refuse(h, "dvs.send", undefined, `may not send to endpoint ${endpoint}`);
      return;
    }
    const sender: Sender = { kind: "process", key: senderKey(h), dcid: h.dcid, endpoint: h.endpoint };
    const sent = this.#o.router.sendFrom(sender, h.sendSeq, dcid, endpoint, body);
    if ("error" in sent) {
      tell(h, { type: "dvs.error", op: "dvs.send", error: sent.error, message: sent.message });
      return;
    }
    h.sendto = { dcid, endpoint };
    this.#o.persistence.markDirty(h);
    // A message its proxies gave up on (or a hop refused) is reported to the same run of the process.
    const actor = h.actor;
    void sent.settled.then((error) => {
      if (error === undefined || h.actor !== actor || !this.#o.table.isCurrent(h)) return;
      tell(h, {
        type: "dvs.error",
        op: "dvs.send",
        error,
        message: `message ${sent.seq} to ${dcid}:${endpoint} was not delivered`,
      });
    });
  }

  /** `dvs.rqst`: a request to node `dst` (default: this one), answered to the process by `id`. */
  onRqst(h: Hosted, emitted: unknown): void {
    const { self, table, stats } = this.#o;
    const parsed = rqstEmittedSchema.safeParse(emitted);
    if (!parsed.success) {
      const id = (emitted as { id?: unknown } | null)?.id;
      tell(h, {
        type: "dvs.error",
        op: "dvs.rqst",
        ...(typeof id === "string" || typeof id === "number" ? { id } : {}),
        error: "EINVAL",
        message: "malformed dvs.rqst",
      });
      return;
    }
    const { id, dst = self, params = {} } = parsed.data;
    const type = parsed.data.request.startsWith("RQST_") ? parsed.data.request.slice(5) : parsed.data.request;
    if (!isRequestType(type)) {
      tell(h, {
        type: "dvs.error",
        op: "dvs.rqst",
        id,
        error: "ENOSYS",
        message: `unknown request ${type}`,
      });
      return;
    }
    if (!allowsRqst(h.priv, type)) {
      this.#refuse(h, "dvs.rqst", id, `may not make ${type} requests`);
      return;
    }
    const target = (params as { endpoint?: unknown }).endpoint;
    if (type === "SEND" && typeof target === "number" && !allowsEndpoint(h.priv, target)) {
      this.#refuse(h, "dvs.rqst", id, `may not send to endpoint ${target}`);
      return;
    }
    if (!this.#o.inView(dst)) {
      tell(h, {
        type: "dvs.error",
        op: "dvs.rqst",
        id,
        error: "EHOSTDOWN",
        message: `node ${dst} is not in the view`,
      });
      return;
    }
    const rqst = makeRqst({
      type,
      src: `proc:${h.dcid}:${h.endpoint}`,
      dst,
      seq: this.#o.forwarding.nextSeq(),
      params: params as Rqst["params"],
    } as Omit<Rqst, "v">);
    const actor = h.actor;
    // The answer goes to the same run of the process only: after a move or an end it is lost.
    const answer = (event: DvsEvent): void => {
      const now = table.hosted.get(h.key);
      if (now === undefined || now.actor !== actor || actor === undefined) {
        stats.lostReplies++;
        return;
      }
      tell(now, event);
    };
    this.#o.forwarding.forward(rqst, dst).then(
      (rply) =>
        answer({
          type: "dvs.rply",
          id,
          rply: { type: rply.type, src: rply.src, rcode: rply.rcode, count: rply.count, data: rply.data },
        }),
      (error: unknown) => {
        const failure = transportFailure(error, `node ${dst}`);
        answer({ type: "dvs.error", op: "dvs.rqst", id, error: failure.error, message: failure.message });
      },
    );
  }

  #refuse(h: Hosted, op: "dvs.send" | "dvs.rqst", id: string | number | undefined, message: string): void {
    h.refused++;
    this.#o.warn(
      `eperm:${h.key}`,
      { dcid: h.dcid, endpoint: h.endpoint, op, refused: h.refused },
      `refused: ${message}`,
    );
    tell(h, { type: "dvs.error", op, ...(id !== undefined ? { id } : {}), error: "EPERM", message });
  }
}
