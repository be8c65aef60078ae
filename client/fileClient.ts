// A client of the file store (SPEC 8): COMMIT serves the bytes on its source
// subject while the coordinator has them replicated, UPDATE reads the newest
// version from the holder the coordinator names and checks its hash, LS lists
// the catalog. Every call retries what a coordinator change explains (no
// coordinator, EAGAIN, BUSY, a timeout) with the same commit id until its
// deadline, so a commit that was recorded before the coordinator died is
// answered SUCCESS by the next one.
import { createHash } from "node:crypto";
import { decode, decodePlain, encode, encodingOf, headersFor } from "../protocol/codec.js";
import { readChunks } from "../protocol/fileRead.js";
import {
  CHUNK_BYTES,
  type FileAnswer,
  type FileErrorName,
  type FileIdentity,
  type FileListing,
  FileStoreError,
  fileAnswerSchema,
  readRequestSchema,
} from "../protocol/files.js";
import { PROTOCOL_VERSION } from "../protocol/messages.js";
import { Responder } from "../protocol/responder.js";
import type { Subjects } from "../protocol/subjects.js";
import type { Clock, TimerHandle } from "../transport/clock.js";
import type { Message, Transport } from "../transport/transport.js";

/** The bytes of a file being committed: read in chunks, so a large file need not be in memory. */
export interface FileSource {
  readonly size: number;
  readonly sha256: string;
  read(offset: number, length: number): Promise<Uint8Array>;
}

/** Where an UPDATE puts the bytes: chunks at offsets, then the SHA-256 of what it holds. */
export interface FileSink {
  write(offset: number, data: Uint8Array): Promise<void>;
  sha256(): Promise<string>;
}

export type Progress = (done: number, total: number) => void;

export interface FileClientOptions {
  readonly transport: Transport;
  readonly subjects: Subjects;
  readonly clock: Clock;
  /** A new commit id (dvsctl: a ULID). */
  readonly newCommitId: () => string;
  /** Timeout of one COMMIT/UPDATE/LS attempt beyond what its size needs (default 5000). */
  readonly requestTimeoutMs?: number;
  /** Timeout of one READ (default 2000). */
  readonly readTimeoutMs?: number;
  /** READs in flight (default 4). */
  readonly readWindow?: number;
  /** How long a call keeps retrying before it gives up (default 30000, plus what the size needs). */
  readonly deadlineMs?: number;
}

/** The file store's answer, once it is final. */
export type Committed = Extract<FileAnswer, { type: "SUCCESS" }>;

/** What a coordinator change explains: asked again, with the same commit id, until the deadline. */
const RETRIED: readonly FileErrorName[] = ["EAGAIN", "EBUSY", "ETIMEDOUT", "ESTALE"];

export class FileClient {
  readonly #o: FileClientOptions;

  constructor(options: FileClientOptions) {
    this.#o = options;
  }

  get #requestMs(): number {
    return this.#o.requestTimeoutMs ?? 5_000;
  }

  get #readMs(): number {
    return this.#o.readTimeoutMs ?? 2_000;
  }

  get #window(): number {
    return this.#o.readWindow ?? 4;
  }

  /** How long one attempt at moving `size` bytes may take. */
  #transferMs(size: number): number {
    const rounds = Math.ceil(Math.max(1, Math.ceil(size / CHUNK_BYTES)) / this.#window);
    return this.#requestMs + 3 * rounds * this.#readMs;
  }

  /**
   * Commits `source` as the newest version of `name`. Resolves with SUCCESS
   * (the version, its holders) once replication-factor servers hold it on disk
   * and it is recorded; rejects with FileStoreError otherwise.
   */
  async commit(
    name: string,
    source: FileSource,
    options: { readonly commit?: string; readonly onProgress?: Progress } = {},
  ): Promise<Committed> {
    const { transport, subjects } = this.#o;
    const commit = options.commit ?? this.#o.newCommitId();
    const served = new Set<number>();
    let done = 0;
    // A holder READ is a sign of life of the attempt: one that shows none for this long died with its coordinator.
    const activity = {
      last: this.#o.clock.now(),
      idleMs: 2 * this.#requestMs + Math.ceil(source.size / 50_000),
    };
    const responder = new Responder(transport);
    const sub = transport.subscribe(subjects.fileSource(commit), (msg) => void serve(msg));
    const serve = async (msg: Message) => {
      // Only a reader's inbox: never a subject a holder (or anyone) names, with this client's rights.
      if (!responder.accepts(msg)) return;
      activity.last = this.#o.clock.now();
      // Answered in the READ's own encoding: a holder asks in JSON when a COMMIT came in JSON.
      const encoding = encodingOf(msg);
      const decoded = decodePlain(msg.data, encoding);
      const parsed = decoded.ok ? readRequestSchema.safeParse(decoded.value) : undefined;
      let answer: FileAnswer;
      if (!parsed?.success) {
        // Malformed is EBADMSG, as on every file store subject; EINVAL is a READ of other bytes.
        answer = {
          v: PROTOCOL_VERSION,
          type: "ERROR",
          error: "EBADMSG",
          message: decoded.ok ? "malformed READ" : `READ: ${decoded.message}`,
        };
      } else if (parsed.data.name !== name || parsed.data.sha256 !== source.sha256) {
        answer = { v: PROTOCOL_VERSION, type: "ERROR", error: "EINVAL", message: "not this commit's bytes" };
      } else {
        const { offset, length } = parsed.data;
        try {
          const data = await source.read(offset, Math.min(length, Math.max(0, source.size - offset)));
          answer = { v: PROTOCOL_VERSION, type: "DATA", offset, data };
          if (!served.has(offset)) {
            served.add(offset);
            done += data.byteLength;
            options.onProgress?.(Math.min(done, source.size), source.size);
          }
        } catch (e) {
          answer = { v: PROTOCOL_VERSION, type: "ERROR", error: "EIO", message: String(e) };
        }
      }
      try {
        const headers = headersFor(encoding);
        responder.answer(msg, encode(answer, encoding), headers ? { headers } : {});
      } catch {
        // The reader times out and its holder fails the REPLICA: the commit reports it.
      }
    };
    try {
      const request = {
        v: PROTOCOL_VERSION,
        type: "COMMIT",
        commit,
        name,
        size: source.size,
        sha256: source.sha256,
      };
      const answer = await this.#retrying(
        subjects.fileCommit,
        request,
        this.#transferMs(source.size) * 2,
        activity,
      );
      if (answer.type !== "SUCCESS") throw unexpected("COMMIT", answer);
      return answer;
    } finally {
      sub.unsubscribe();
    }
  }

  /** Reads the newest version of `name` into `sink`; checks its SHA-256 and retries another read when it differs. */
  async update(
    name: string,
    sink: () => FileSink,
    options: { readonly onProgress?: Progress } = {},
  ): Promise<FileIdentity & { readonly source: number }> {
    const started = this.#o.clock.now();
    let last: unknown;
    for (let attempt = 0; ; attempt++) {
      const answer = await this.#retrying(
        this.#o.subjects.fileUpdate,
        { v: PROTOCOL_VERSION, type: "UPDATE", name },
        0,
      );
      if (answer.type !== "FILE") throw unexpected("UPDATE", answer);
      const target = sink();
      let done = 0;
      try {
        await readChunks(
          {
            transport: this.#o.transport,
            identity: answer,
            source: this.#o.subjects.fileRead(answer.source),
            window: this.#window,
            timeoutMs: this.#readMs,
          },
          async (offset, data) => {
            await target.write(offset, data);
            done += data.byteLength;
            options.onProgress?.(done, answer.size);
          },
        );
        const actual = await target.sha256();
        if (actual === answer.sha256) {
          const { name: n, version, sha256, size, source } = answer;
          return { name: n, version, sha256, size, source };
        }
        last = new FileStoreError(
          "EIO",
          `${name} version ${answer.version} read back with SHA-256 ${actual}, expected ${answer.sha256}`,
        );
      } catch (e) {
        last = e;
      }
      if (this.#o.clock.now() - started > this.#deadline(answer.size) || attempt >= 5) throw last;
      await this.#sleep(backoff(attempt));
    }
  }

  /** The catalog: every file's newest version, size and holders. */
  async ls(prefix?: string): Promise<FileListing[]> {
    const answer = await this.#retrying(
      this.#o.subjects.fileLs,
      { v: PROTOCOL_VERSION, type: "LS", ...(prefix ? { prefix } : {}) },
      0,
    );
    if (answer.type !== "LIST") throw unexpected("LS", answer);
    return answer.files;
  }

  #deadline(size: number): number {
    return (this.#o.deadlineMs ?? 30_000) + this.#transferMs(size);
  }

  /** Sends `request` until an answer that is final (not EAGAIN, EBUSY, a timeout or no coordinator) or the deadline. */
  async #retrying(
    subject: string,
    request: object,
    extraMs: number,
    activity?: { last: number; readonly idleMs: number },
  ): Promise<FileAnswer> {
    const started = this.#o.clock.now();
    const deadline = this.#deadline(0) + extraMs;
    for (let attempt = 0; ; attempt++) {
      let last: FileStoreError;
      try {
        const asked = this.#ask(subject, request, this.#requestMs + extraMs);
        const answer = activity === undefined ? await asked : await this.#whileActive(asked, activity);
        if (answer.type !== "ERROR") return answer;
        last = new FileStoreError(answer.error, answer.message);
      } catch (e) {
        if (!(e instanceof FileStoreError)) throw e;
        last = e;
      }
      if (!RETRIED.includes(last.code)) throw last;
      if (this.#o.clock.now() - started + backoff(attempt) > deadline) throw last;
      await this.#sleep(backoff(attempt));
    }
  }

  /**
   * The attempt's answer, or ETIMEDOUT once nothing has been heard of it for
   * `idleMs`: its coordinator died, and waiting out the whole attempt would
   * take as long as the largest transfer. A retry with the same commit id is safe.
   */
  #whileActive<T>(asked: Promise<T>, activity: { last: number; readonly idleMs: number }): Promise<T> {
    activity.last = this.#o.clock.now();
    return new Promise<T>((resolve, reject) => {
      let timer: TimerHandle | undefined;
      const check = () => {
        const idle = this.#o.clock.now() - activity.last;
        if (idle < activity.idleMs) {
          timer = this.#o.clock.setTimeout(check, activity.idleMs - idle);
          return;
        }
        reject(new FileStoreError("ETIMEDOUT", `nothing heard of the commit for ${idle} ms`));
      };
      timer = this.#o.clock.setTimeout(check, activity.idleMs);
      asked.then(
        (value) => {
          this.#o.clock.clearTimeout(timer);
          resolve(value);
        },
        (error: unknown) => {
          this.#o.clock.clearTimeout(timer);
          reject(error);
        },
      );
    });
  }

  /** One attempt: the answer, or FileStoreError (ETIMEDOUT, EAGAIN when no coordinator answers, EIO when malformed). */
  async #ask(subject: string, request: object, timeoutMs: number): Promise<FileAnswer> {
    let msg: Message;
    try {
      msg = await this.#o.transport.request(subject, encode(request), { timeoutMs });
    } catch (e) {
      // A refusal by the NATS server is final: no coordinator change explains it.
      if (e instanceof Error && (e.name === "PermissionDeniedError" || e.name === "AuthorizationError"))
        throw e;
      const timedOut = e instanceof Error && e.name === "TimeoutError";
      const why = e instanceof Error ? e.message : String(e);
      throw new FileStoreError(
        timedOut ? "ETIMEDOUT" : "EAGAIN",
        timedOut ? "the coordinator did not answer in time" : `no coordinator answers (${why})`,
        { cause: e },
      );
    }
    const decoded = decode(msg.data, "cbor", this.#o.transport.maxPayload);
    const parsed = decoded.ok ? fileAnswerSchema.safeParse(decoded.value) : undefined;
    if (!parsed?.success)
      throw new FileStoreError("EIO", "the coordinator answered with a malformed message");
    return parsed.data;
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.#o.clock.setTimeout(resolve, ms));
  }
}

const backoff = (attempt: number): number => Math.min(1_000, 50 * 2 ** attempt);

function unexpected(kind: string, answer: FileAnswer): FileStoreError {
  return new FileStoreError("EIO", `${kind} was answered ${answer.type}`);
}

/** A file held in memory, to commit. */
export function bytesSource(bytes: Uint8Array): FileSource {
  return {
    size: bytes.byteLength,
    sha256: createHash("sha256").update(bytes).digest("hex"),
    read: async (offset, length) => bytes.subarray(offset, offset + length),
  };
}

/** An UPDATE into memory: `bytes()` after the call resolves. */
export function memorySink(size = 0): FileSink & { bytes(): Uint8Array } {
  let buffer = new Uint8Array(size);
  return {
    write: async (offset, data) => {
      if (offset + data.byteLength > buffer.byteLength) {
        const grown = new Uint8Array(offset + data.byteLength);
        grown.set(buffer);
        buffer = grown;
      }
      buffer.set(data, offset);
    },
    sha256: async () => createHash("sha256").update(buffer).digest("hex"),
    bytes: () => buffer,
  };
}
