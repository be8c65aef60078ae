// Records actions as a node serves them (SPEC 6.4). The node a request comes
// in on is the one that logs it: the request before it runs, then each node's
// reply and the outcome before the requester gets the answer, so whatever a
// requester was told is in the log. Requests passed on between nodes are not
// logged again. The recorder decides what a record may hold: a request refused
// before it runs is logged without its params (whoever is refused cannot fill
// the log with them), and each reply keeps its data up to 64 KiB, the replies
// of one action 1 MiB in all (transport/actionLog.ts). A reply names the
// responder's address as the responder stated it in its RPLY (`addr`), checked
// for plausibility: it is another node's word, never trusted further.

import { encode } from "../protocol/codec.js";
import { plausibleAddress } from "../protocol/hostAddress.js";
import { errorName, MUTATING_TYPES, type NodeId, type Rply, type Rqst } from "../protocol/messages.js";
import {
  type ActionLog,
  capData,
  REPLY_DATA_BYTES,
  type ReplyRecord,
  type RequestRecord,
  replyDataBytes,
  summarize,
  summaryChars,
} from "../transport/actionLog.js";
import { type Clock, sleep } from "../transport/clock.js";
import { ActionExistsError } from "../transport/errors.js";
import { type Logger, throttledWarn } from "./logger.js";

export interface ActionRecorderOptions {
  readonly log: ActionLog;
  readonly node: NodeId;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Makes a new action id (time-ordered, unique). */
  readonly newId: () => string;
  /**
   * How long the replies and outcome are retried when the log cannot take
   * them (a JetStream leader election after a server died takes a second or
   * two). Default 3000 ms.
   */
  readonly endRetryMs?: number;
  /**
   * The error a request is refused with before it runs, judged from the
   * request alone, or undefined when it is served. A refused request's record
   * holds no params, only their size. Default `refusedBeforeItRuns`.
   */
  readonly refusal?: (rqst: ActionRqst) => string | undefined;
  /** Largest params (CBOR bytes) a request record keeps; larger ones are left out, their size kept. Default 64 KiB. */
  readonly maxParamsBytes?: number;
  /** This node's host address: the `addr` of its own replies (others state theirs in their RPLY). */
  readonly addr?: string;
}

/** The default refusal: a viewer may not send a mutating type (the node answers EPERM). */
export function refusedBeforeItRuns(rqst: Pick<Rqst, "role" | "type">): string | undefined {
  return rqst.role === "viewer" && MUTATING_TYPES.has(rqst.type) ? "EPERM" : undefined;
}

const MAX_PARAMS_BYTES = 64 * 1024;

/** A logged request: it has its action id. */
export type ActionRqst = Rqst & { readonly action: string; readonly role: NonNullable<Rqst["role"]> };

export class ActionRecorder {
  readonly stats = { recorded: 0, failed: 0, refused: 0 };
  readonly #o: ActionRecorderOptions;
  readonly #warn: ReturnType<typeof throttledWarn>;

  constructor(options: ActionRecorderOptions) {
    this.#o = options;
    this.#warn = throttledWarn(options.logger, options.clock);
  }

  /**
   * The request as an action, or undefined when it is not one. An action is a
   * request that names an action id (administrative clients such as dvsctl
   * always do) or changes something (a mutating type always gets an id).
   */
  actionOf(rqst: Rqst): ActionRqst | undefined {
    if (rqst.action === undefined && !MUTATING_TYPES.has(rqst.type)) return undefined;
    return { ...rqst, action: rqst.action ?? this.#o.newId(), role: rqst.role ?? "admin" };
  }

  /**
   * Writes the request record. `logged`: go on and end it; `unlogged`: the log
   * could not be written but the request only reads, so it is served
   * unlogged; `refused`: it changes something and nobody could audit it;
   * `exists`: the action id already names another action.
   */
  async begin(rqst: ActionRqst): Promise<"logged" | "unlogged" | "refused" | "exists"> {
    try {
      await this.#o.log.append(this.requestRecord(rqst));
      return "logged";
    } catch (error) {
      if (error instanceof ActionExistsError) return "exists";
      this.stats.failed++;
      this.#warn("begin", { err: error, action: rqst.action }, "could not log a request");
      if (!MUTATING_TYPES.has(rqst.type)) return "unlogged";
      this.stats.refused++;
      return "refused";
    }
  }

  /**
   * The request record of `rqst`: its params when it will run and they are
   * small enough, otherwise only their size (and the refusal, if refused).
   */
  requestRecord(rqst: ActionRqst): RequestRecord {
    const { node, clock } = this.#o;
    const refused = (this.#o.refusal ?? refusedBeforeItRuns)(rqst);
    const record: RequestRecord = {
      v: 1,
      kind: "request",
      action: rqst.action,
      at: clock.now(),
      node,
      role: rqst.role,
      src: rqst.src,
      type: rqst.type,
      dst: rqst.dst,
      seq: rqst.seq,
      ...(refused !== undefined ? { refused: refused.slice(0, 32) } : {}),
    };
    const bytes = encodedBytes(rqst.params);
    const max = this.#o.maxParamsBytes ?? MAX_PARAMS_BYTES;
    if (refused === undefined && bytes <= max) {
      const params = recordable(rqst.params);
      // Their JSON can be larger than their CBOR (byte strings): the record must still fit the log.
      if (Buffer.byteLength(JSON.stringify(params) ?? "") <= max) return { ...record, params };
    }
    return { ...record, paramsBytes: bytes };
  }

  /**
   * Writes each node's reply and the outcome, retrying (they are stored once
   * however often they are written) for up to `endRetryMs`. Resolves true once
   * they are durable; false when they could not be written, and the requester
   * must not be told the action is in the log.
   */
  async end(rqst: ActionRqst, rply: Rply, startedAt: number): Promise<boolean> {
    const { node, clock } = this.#o;
    const at = clock.now();
    // An ALL reply holds one entry per member; anything else is one node's answer.
    const entries = rqst.dst === "ALL" && Array.isArray(rply.data) ? (rply.data as Rply[]) : [rply];
    // However many replies, their summaries and their data together stay within one budget each.
    const chars = summaryChars(entries.length);
    const dataBytes = Math.min(REPLY_DATA_BYTES, replyDataBytes(entries.length));
    const replies = entries.map((e): ReplyRecord => {
      const responder = typeof e.src === "number" ? e.src : node;
      const addr = responder === node ? this.#o.addr : plausibleAddress((e as { addr?: unknown }).addr);
      const capped = capData(e.data, dataBytes);
      return {
        v: 1,
        kind: "reply",
        action: rqst.action,
        at,
        node: responder,
        via: node,
        ...(addr !== undefined ? { addr } : {}),
        rcode: e.rcode,
        ...(e.rcode < 0 ? { error: errorName(e.rcode) ?? "EUNKNOWN" } : {}),
        ok: e.rcode < 0 ? 0 : 1,
        count: e.count,
        summary: summarize(e.data, chars),
        ...capped,
      };
    });
    const failed = entries.filter((e) => e.rcode < 0).length;
    const write = async () => {
      await Promise.all(replies.map((r) => this.#o.log.append(r)));
      await this.#o.log.append({
        v: 1,
        kind: "outcome",
        action: rqst.action,
        at,
        node,
        type: rqst.type,
        dst: rqst.dst,
        rcode: rply.rcode,
        ...(rply.rcode < 0 ? { error: errorName(rply.rcode) ?? "EUNKNOWN" } : {}),
        ok: entries.length - failed,
        failed,
        durationMs: Math.max(0, at - startedAt),
      });
    };
    const deadline = clock.now() + (this.#o.endRetryMs ?? 3_000);
    for (let delay = 100; ; delay = Math.min(2 * delay, 1_000)) {
      try {
        await write();
        this.stats.recorded++;
        return true;
      } catch (error) {
        if (clock.now() + delay > deadline) {
          this.stats.failed++;
          this.#warn("end", { err: error, action: rqst.action }, "could not log the outcome of an action");
          return false;
        }
      }
      await sleep(clock, delay);
    }
  }
}

/**
 * The params as the log stores them (JSON). What JSON cannot hold (bigints,
 * cycles, nesting deeper than the encoder's stack) is replaced by a note, so
 * an odd request is still logged rather than refused.
 */
export function recordable(params: unknown): unknown {
  try {
    const text = JSON.stringify(params ?? null);
    return text === undefined ? null : JSON.parse(text);
  } catch (error) {
    return { unrecordable: String((error as Error).message).slice(0, 200) };
  }
}

/** The size of the params as the wire carries them (CBOR); what CBOR cannot hold is measured as JSON. */
function encodedBytes(params: unknown): number {
  try {
    return encode(params ?? null, "cbor").byteLength;
  } catch {
    try {
      return Buffer.byteLength(JSON.stringify(params ?? null) ?? "");
    } catch {
      return 0;
    }
  }
}
