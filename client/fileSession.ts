// One file-store command run as a client sees it: a FileClient over a NATS
// connection that fails at once, with PermissionDeniedError, when the server
// refuses a subject, and that does nothing more once the run has ended.
import { monotonicFactory } from "ulid";
import { subjects } from "../protocol/subjects.js";
import { type Clock, systemClock, systemRandom, type TimerHandle } from "../transport/clock.js";
import { PermissionDeniedError } from "../transport/errors.js";
import type { NatsTransport } from "../transport/nats.js";
import type { Transport } from "../transport/transport.js";
import { FileClient } from "./fileClient.js";

export interface FileSessionOptions {
  readonly cluster: string;
  /** The whole run's deadline; the client's defaults when absent. */
  readonly deadlineMs?: number;
}

/**
 * The FileClient of one command run, and how to stop it. FileClient gives up
 * at once on a request the NATS server refuses, but a refused subscription
 * (the one a commit serves its bytes on) shows only as a permissions
 * violation on the connection; the command sees it here, fails at once with
 * exit status 4, and stops the retries by letting no further timer of the
 * client fire.
 */
export class FileSession {
  readonly client: FileClient;
  /** A new commit id: a ULID. */
  readonly newCommitId: () => string;
  /** Rejects with the first PermissionDeniedError of a request. */
  readonly refused: Promise<never>;
  #stopped = false;
  #refuse: (error: Error) => void = () => {};

  constructor(t: NatsTransport, options: FileSessionOptions) {
    this.refused = new Promise<never>((_, reject) => {
      this.#refuse = reject;
    });
    this.refused.catch(() => {});
    void this.#watchViolations(t);
    const next = monotonicFactory(() => systemRandom.next());
    this.newCommitId = () => next(systemClock.now());
    this.client = new FileClient({
      transport: this.#watching(t),
      subjects: subjects(options.cluster),
      clock: this.#stoppable(systemClock),
      newCommitId: this.newCommitId,
      ...(options.deadlineMs !== undefined
        ? { deadlineMs: options.deadlineMs, requestTimeoutMs: Math.min(options.deadlineMs, 5_000) }
        : {}),
    });
  }

  /** The outcome of `work`, or the refusal if one comes first; either way the client does nothing more. */
  async run<T>(work: (client: FileClient) => Promise<T>): Promise<T> {
    const running = work(this.client);
    running.catch(() => {});
    try {
      return await Promise.race([running, this.refused]);
    } finally {
      this.#stopped = true;
    }
  }

  async #watchViolations(t: NatsTransport): Promise<void> {
    for await (const s of t.connection.status()) {
      if (s.type !== "error" || s.error.name !== "PermissionViolationError") continue;
      const { operation, subject } = s.error as Error & { operation?: string; subject?: string };
      const op = operation === "subscription" ? "subscribe" : "publish";
      this.#refuse(new PermissionDeniedError(subject ?? "?", op, { cause: s.error }));
    }
  }

  #watching(t: Transport): Transport {
    return {
      get name() {
        return t.name;
      },
      get maxPayload() {
        return t.maxPayload;
      },
      get status() {
        return t.status;
      },
      publish: (subject, data, options) => t.publish(subject, data, options),
      subscribe: (subject, handler, options) => t.subscribe(subject, handler, options),
      request: async (subject, data, options) => {
        try {
          return await t.request(subject, data, options);
        } catch (error) {
          if (error instanceof Error && error.name === "PermissionDeniedError") this.#refuse(error);
          throw error;
        }
      },
      flush: () => t.flush(),
      onStatus: (listener) => t.onStatus(listener),
      inbox: () => t.inbox(),
      close: () => t.close(),
      closed: () => t.closed(),
    };
  }

  #stoppable(clock: Clock): Clock {
    return {
      now: () => clock.now(),
      setTimeout: (fn, ms): TimerHandle => clock.setTimeout(() => this.#stopped || fn(), ms),
      clearTimeout: (handle) => clock.clearTimeout(handle),
    };
  }
}
