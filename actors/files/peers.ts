// How the file store's roles talk (SPEC 8): a request to another server's peer
// subject that ends as an answer in every case (an error, a timeout, or the
// server leaving the view become ERROR answers), replies through one Responder,
// and the view of the live servers and of this node's term the roles decide by.
import { liveServers, type ServerView } from "../../machines/filePlacement.js";
import { decode, type Encoding, encode, headersFor } from "../../protocol/codec.js";
import {
  type FileAnswer,
  type FileErrorName,
  FileStoreError,
  type PeerFileAnswer,
  type PeerFileMessage,
  peerFileAnswerSchema,
} from "../../protocol/files.js";
import { type HeldFile, type NodeId, PROTOCOL_VERSION } from "../../protocol/messages.js";
import { Responder, refusalLog } from "../../protocol/responder.js";
import type { Message } from "../../transport/transport.js";
import { throttledWarn } from "../logger.js";
import type { FileServiceOptions, FileSettings } from "./settings.js";

export type Reply = (answer: FileAnswer | PeerFileAnswer) => void;

export const fileError = (code: FileErrorName, message: string) =>
  ({ v: PROTOCOL_VERSION, type: "ERROR", error: code, message }) as const;

export type FileError = ReturnType<typeof fileError>;

export const BUSY = { v: PROTOCOL_VERSION, type: "BUSY" } as const;

export class FilePeers {
  readonly warn: ReturnType<typeof throttledWarn>;
  readonly #responder: Responder;
  /** Per server, the requests waiting on its answer: they end when it leaves the view. */
  readonly #waitingOn = new Map<NodeId, Set<() => void>>();

  constructor(
    readonly options: FileServiceOptions,
    readonly settings: FileSettings,
  ) {
    this.warn = throttledWarn(options.logger, options.clock);
    this.#responder = new Responder(options.transport, {
      onRefused: (reply, subject) => this.warn("reply-subject", ...refusalLog(reply, subject)),
    });
  }

  get self(): NodeId {
    return this.options.self;
  }

  now(): number {
    return this.options.clock.now();
  }

  /** The versions this server holds, for ALIVE. */
  held(): HeldFile[] {
    return this.options.replicas.held().map(({ name, version, sha256 }) => ({ name, version, sha256 }));
  }

  /** The servers heard from lately (three STATUS periods), and this node itself. */
  servers(): ServerView[] {
    const { election, self, serverType, clock } = this.options;
    return liveServers(
      election.servers(),
      { node: self, type: serverType, files: this.held() },
      clock.now(),
      election.timings.statusMs * 3,
    );
  }

  /** The epoch of the term this node holds now, or undefined. */
  term(): number | undefined {
    return this.options.election.state().term?.epoch;
  }

  reply(msg: Message, answer: FileAnswer | PeerFileAnswer, encoding: Encoding = "cbor"): void {
    try {
      const headers = headersFor(encoding);
      this.#responder.answer(msg, encode(answer, encoding), headers ? { headers } : {});
    } catch (e) {
      this.warn("reply", { err: e }, "could not answer a file store message");
    }
    this.options.endpoints?.answered(msg.reply, answer.type === "ERROR" ? answer.error : undefined);
  }

  /** Publishes `message` on `subject`; a failure is logged (throttled under `what`), not thrown. */
  publish(subject: string, message: unknown, what: string, why: string): void {
    try {
      this.options.transport.publish(subject, encode(message));
    } catch (e) {
      this.warn(what, { err: e }, why);
    }
  }

  /**
   * Sends a peer message to `node` and reads its answer; failures come back as
   * ERROR answers, and so does `node` leaving the view (EAGAIN) before it answers:
   * a transfer's timeout is long, and a dead holder need not be waited out.
   */
  ask(node: NodeId, message: PeerFileMessage, timeoutMs: number): Promise<PeerFileAnswer> {
    return new Promise<PeerFileAnswer>((resolve) => {
      const waiting = this.#waitingOn.get(node) ?? new Set<() => void>();
      this.#waitingOn.set(node, waiting);
      const stop = () =>
        resolve(fileError("EAGAIN", `server ${node} left the view before it answered ${message.type}`));
      waiting.add(stop);
      this.#request(node, message, timeoutMs).then((answer) => {
        waiting.delete(stop);
        if (waiting.size === 0 && this.#waitingOn.get(node) === waiting) this.#waitingOn.delete(node);
        resolve(answer);
      });
    });
  }

  /** `node` left the view: what waits on its answer stops waiting. */
  serverLeft(node: NodeId): void {
    const waiting = this.#waitingOn.get(node);
    this.#waitingOn.delete(node);
    for (const stop of waiting ?? []) stop();
  }

  async #request(node: NodeId, message: PeerFileMessage, timeoutMs: number): Promise<PeerFileAnswer> {
    try {
      const msg = await this.options.transport.request(
        this.options.subjects.filePeer(node),
        encode(message),
        {
          timeoutMs,
        },
      );
      const decoded = decode(msg.data, "cbor", this.options.transport.maxPayload);
      const parsed = decoded.ok ? peerFileAnswerSchema.safeParse(decoded.value) : undefined;
      if (!parsed?.success)
        return fileError("EIO", `server ${node} answered ${message.type} with a malformed message`);
      return parsed.data;
    } catch (e) {
      const name = e instanceof Error ? e.name : "Error";
      const code: FileErrorName = name === "TimeoutError" ? "ETIMEDOUT" : "EAGAIN";
      return fileError(
        code,
        `server ${node} did not answer ${message.type}: ${e instanceof Error ? e.message : e}`,
      );
    }
  }

  /** The ERROR answer for a failure: its own code for a FileStoreError, EAGAIN for an unreachable catalog. */
  failure(e: unknown): FileError {
    if (e instanceof FileStoreError) return fileError(e.code, e.message);
    if (e instanceof Error && e.name === "StoreUnavailableError")
      return fileError("EAGAIN", `the catalog cannot be reached: ${e.message}`);
    this.options.logger.warn({ err: e }, "a file store session failed");
    return fileError("EIO", e instanceof Error ? e.message : String(e));
  }
}
