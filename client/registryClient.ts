// The client role's runtime: asks WHO on `dvs.<c>.dns.who` (or one node's
// `dvs.<c>.dns.node.<id>.who`), reports FAILED on `dvs.<c>.dns.failed`, and
// runs the client machine (machines/registryClient.ts) to retry with backoff
// until a coordinator is known. Used by dvsctl, the benchmarks and tests.
import { createActor } from "xstate";
import { registryClientMachine, registryClientTickDue } from "../machines/registryClient.js";
import { decode, encode, encodingOf } from "../protocol/codec.js";
import {
  type NodeId,
  PROTOCOL_VERSION,
  type RegistryAnswer,
  registryAnswerSchema,
} from "../protocol/messages.js";
import { type Subjects, subjects as subjectsOf } from "../protocol/subjects.js";
import type { Clock } from "../transport/clock.js";
import { DeadlineTimer } from "../transport/deadline.js";
import { BadReplyError, TimeoutError } from "../transport/errors.js";
import type { Transport } from "../transport/transport.js";

export interface RegistryClientOptions {
  readonly cluster: string;
  readonly transport: Transport;
  readonly clock: Clock;
  /** How long one WHO or FAILED waits for its answer, retries included. Default 2000 ms. */
  readonly timeoutMs?: number;
  /**
   * How long one attempt of a WHO waits before it is asked again (default
   * 500 ms, at most `timeoutMs`): a WHO the queue handed a registry that died
   * at that moment is never answered, and the next one reaches a live registry.
   */
  readonly attemptMs?: number;
  readonly retryMs?: number;
  readonly retryMaxMs?: number;
}

export interface Coordinator {
  readonly coordinator: NodeId;
  readonly epoch: number;
}

/** What WHO and FAILED resolve with: the coordinator, or NOTHING. */
export type Answer = Exclude<RegistryAnswer, { type: "ERROR" }>;

/** The coordinator every answer names (same node, same epoch), or undefined if any answer differs, failed or is NOTHING. */
export function agreedCoordinator(answers: readonly (Answer | Error)[]): Coordinator | undefined {
  const first = answers[0];
  if (first === undefined || first instanceof Error || first.type !== "OK") return undefined;
  const same = answers.every(
    (a) =>
      !(a instanceof Error) &&
      a.type === "OK" &&
      a.coordinator === first.coordinator &&
      a.epoch === first.epoch,
  );
  return same ? { coordinator: first.coordinator, epoch: first.epoch } : undefined;
}

export class NoCoordinatorError extends Error {
  override name = "NoCoordinatorError";
  constructor(
    readonly waitedMs: number,
    readonly asked: number,
  ) {
    super(`no coordinator after ${waitedMs} ms (${asked} WHO asked)`);
  }
}

export class RegistryClient {
  readonly subjects: Subjects;
  readonly #o: RegistryClientOptions;

  constructor(options: RegistryClientOptions) {
    this.#o = options;
    this.subjects = subjectsOf(options.cluster);
  }

  /**
   * One WHO: to any node's registry, or to node `node`'s. An attempt not
   * answered within `attemptMs` is asked again, until `timeoutMs`; every
   * registry answers at once (OK or NOTHING), so only a lost question goes
   * unanswered. Rejects with the transport's named errors (the last
   * TimeoutError once the time is up).
   */
  async who(node?: NodeId): Promise<Answer> {
    const subject = node === undefined ? this.subjects.dnsWho : this.subjects.nodeDnsWho(node);
    const { clock } = this.#o;
    const timeoutMs = this.#o.timeoutMs ?? 2_000;
    const attemptMs = Math.min(timeoutMs, this.#o.attemptMs ?? 500);
    const deadline = clock.now() + timeoutMs;
    for (;;) {
      const left = deadline - clock.now();
      try {
        return await this.#ask(
          subject,
          { v: PROTOCOL_VERSION, type: "WHO" },
          Math.max(1, Math.min(attemptMs, left)),
        );
      } catch (error) {
        if (!(error instanceof TimeoutError) || deadline - clock.now() <= 0) throw error;
      }
    }
  }

  /** FAILED: the coordinator of `epoch` did not answer; resolves with the registry's answer. */
  async failed(coordinator: NodeId, epoch: number): Promise<Answer> {
    return this.#ask(this.subjects.dnsFailed, { v: PROTOCOL_VERSION, type: "FAILED", coordinator, epoch });
  }

  /**
   * WHO until a coordinator is known, retrying after NOTHING or no answer with
   * a doubling delay; rejects with NoCoordinatorError after `waitMs`.
   */
  async coordinator(waitMs: number): Promise<Coordinator> {
    const { clock } = this.#o;
    const actor = createActor(
      registryClientMachine.provide({
        actions: {
          sendWho: () => {
            this.who().then(
              (answer) =>
                actor.send(
                  answer.type === "OK"
                    ? {
                        type: "who.ok",
                        coordinator: answer.coordinator,
                        epoch: answer.epoch,
                        at: clock.now(),
                      }
                    : { type: "who.nothing", at: clock.now() },
                ),
              () => actor.send({ type: "who.failed", at: clock.now() }),
            );
          },
          sendFailed: () => {},
        },
      }),
      {
        input: { retryMs: this.#o.retryMs ?? 50, retryMaxMs: this.#o.retryMaxMs ?? 1_000, at: clock.now() },
        clock,
      },
    );
    // One timer, moved after every event to the end of the wait (if the client is waiting).
    const tick = new DeadlineTimer(clock, () => actor.send({ type: "clock.tick", at: clock.now() }));
    const started = clock.now();
    const armed = actor.subscribe((snap) =>
      tick.set(registryClientTickDue(String(snap.value), snap.context)),
    );
    actor.start();
    try {
      return await new Promise<Coordinator>((resolve, reject) => {
        const deadline = clock.setTimeout(() => {
          sub.unsubscribe();
          reject(new NoCoordinatorError(clock.now() - started, actor.getSnapshot().context.asked));
        }, waitMs);
        const sub = actor.subscribe((snap) => {
          const { coordinator, epoch } = snap.context;
          if (!snap.matches("known") || coordinator === null) return;
          clock.clearTimeout(deadline);
          sub.unsubscribe();
          resolve({ coordinator, epoch });
        });
      });
    } finally {
      armed.unsubscribe();
      tick.clear();
      actor.stop();
    }
  }

  async #ask(subject: string, body: unknown, timeoutMs = this.#o.timeoutMs ?? 2_000): Promise<Answer> {
    const msg = await this.#o.transport.request(subject, encode(body), { timeoutMs });
    const decoded = decode(msg.data, encodingOf(msg), this.#o.transport.maxPayload);
    const parsed = decoded.ok ? registryAnswerSchema.safeParse(decoded.value) : undefined;
    if (!parsed?.success)
      throw new BadReplyError(subject, decoded.ok ? "not a registry answer" : decoded.message);
    if (parsed.data.type === "ERROR")
      throw new BadReplyError(subject, `the registry answered ${parsed.data.error}`);
    return parsed.data;
  }
}
