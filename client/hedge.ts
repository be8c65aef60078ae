// Hedged "any node" requests (SPEC 3.1): a request sent to the cluster's queue
// subject may land on a member that is alive to NATS but frozen (SIGSTOP, a
// stalled host); NATS queue groups cannot tell. The client asks the node to
// acknowledge at once (header `Dvs-Ack: 1`); when no acknowledgement or reply
// comes within the accept deadline, the same bytes (same `src`, `seq` and
// action id) go to one live node's own subject, then to the next, and the
// first real reply wins. A node de-duplicates a resent action through the
// action log: the copy that comes second is answered EEXIST, which only ends
// its own leg.
import { ACK_REQUEST_HEADER, ACK_STATUS, ACK_STATUS_HEADER } from "../protocol/hedging.js";
import type { Clock, Random, TimerHandle } from "../transport/clock.js";
import { NoRespondersError, TimeoutError } from "../transport/errors.js";
import { type Headers, header, type Message, type Transport } from "../transport/transport.js";

/** Default accept deadline: a live node acknowledges within milliseconds; a frozen one never. */
export const DEFAULT_ACCEPT_MS = 300;

export interface HedgeOptions {
  /** How long a leg may stay unacknowledged before the next one is sent. Default 300 ms. */
  readonly acceptMs?: number;
  /**
   * The subjects a hedge may go to, each one node's own request subject, most
   * likely alive first (discovery, or the nodes of the last replies). Asked
   * once, when the first deadline passes.
   */
  readonly targets: () => readonly string[] | Promise<readonly string[]>;
  readonly clock: Pick<Clock, "setTimeout" | "clearTimeout">;
  /** Shuffles the targets, so hedges from many clients spread over the nodes. */
  readonly random?: Random;
}

export interface HedgedSend {
  readonly subject: string;
  readonly data: Uint8Array;
  readonly headers: Headers | undefined;
  readonly timeoutMs: number;
}

/** What a hedged request's legs are doing. */
interface Leg {
  readonly subject: string;
  acked: boolean;
  /** The leg answered EEXIST (its copy came second) or nobody serves its subject. */
  ended: boolean;
}

/**
 * Sends `send` to its queue subject and hedges as the header says; resolves
 * with the first reply that is not an acknowledgement (nor a leg's EEXIST
 * while another leg may still answer). `isDuplicate` tells an EEXIST reply to
 * one's own action apart from the rest. Rejects TimeoutError at `timeoutMs`,
 * NoRespondersError when no leg found a node.
 */
export function hedgedRequest(
  transport: Transport,
  send: HedgedSend,
  hedge: HedgeOptions,
  isDuplicate: (msg: Message) => boolean,
): Promise<Message> {
  const acceptMs = hedge.acceptMs ?? DEFAULT_ACCEPT_MS;
  const { clock } = hedge;
  return new Promise<Message>((resolve, reject) => {
    const legs: Leg[] = [];
    const subs: { unsubscribe(): void }[] = [];
    let targets: string[] | undefined;
    let acceptTimer: TimerHandle | undefined;
    let lastDuplicate: Message | undefined;
    let done = false;
    const finish = (outcome: () => void) => {
      if (done) return;
      done = true;
      clock.clearTimeout(acceptTimer);
      clock.clearTimeout(overall);
      for (const s of subs) s.unsubscribe();
      outcome();
    };
    const overall = clock.setTimeout(
      () => finish(() => reject(new TimeoutError(send.subject, send.timeoutMs))),
      send.timeoutMs,
    );
    const settleIfAllEnded = () => {
      if (legs.some((l) => !l.ended) || (targets !== undefined && targets.length > 0)) return;
      if (lastDuplicate) {
        const duplicate = lastDuplicate;
        finish(() => resolve(duplicate));
      } else finish(() => reject(new NoRespondersError(send.subject)));
    };
    const onMessage = (leg: Leg, msg: Message) => {
      if (done) return;
      if (header(msg, ACK_STATUS_HEADER) === ACK_STATUS) {
        leg.acked = true;
        clock.clearTimeout(acceptTimer);
        return;
      }
      // An empty message that is no acknowledgement is NATS's "no responders" status.
      if (msg.data.byteLength === 0) {
        leg.ended = true;
        nextLeg();
        settleIfAllEnded();
        return;
      }
      if (legs.length > 1 && isDuplicate(msg)) {
        leg.ended = true;
        lastDuplicate = msg;
        settleIfAllEnded();
        return;
      }
      finish(() => resolve(msg));
    };
    const sendLeg = (subject: string) => {
      const leg: Leg = { subject, acked: false, ended: false };
      legs.push(leg);
      const inbox = transport.inbox();
      subs.push(transport.subscribe(inbox, (msg) => onMessage(leg, msg)));
      try {
        transport.publish(subject, send.data, {
          reply: inbox,
          headers: { ...(send.headers ?? {}), [ACK_REQUEST_HEADER]: "1" },
        });
      } catch (error) {
        finish(() => reject(error));
        return;
      }
      clock.clearTimeout(acceptTimer);
      acceptTimer = clock.setTimeout(() => void onDeadline(), acceptMs);
    };
    // No leg acknowledged in time (or the last one found nobody): the next target.
    const onDeadline = async () => {
      if (done || legs.some((l) => l.acked)) return;
      if (targets === undefined) {
        try {
          targets = shuffled([...(await hedge.targets())], hedge.random);
        } catch {
          targets = [];
        }
      }
      nextLeg();
    };
    const nextLeg = () => {
      if (done || targets === undefined || legs.some((l) => l.acked)) return;
      const next = targets.shift();
      if (next !== undefined) sendLeg(next);
      else settleIfAllEnded();
    };
    sendLeg(send.subject);
  });
}

function shuffled(list: string[], random: Random | undefined): string[] {
  if (!random) return list;
  for (let i = list.length - 1; i > 0; i--) {
    const j = Math.floor(random.next() * (i + 1));
    [list[i], list[j]] = [list[j] as string, list[i] as string];
  }
  return list;
}
