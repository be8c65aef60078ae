// The file store of one node (SPEC 8, seed 002), in its three roles:
// - coordinator (while this node holds a valid term): takes COMMIT, UPDATE and
//   LS from clients, delegates to a non-busy active server, records each new
//   version in the catalog with a compare-and-set under its epoch, tells every
//   server with COMMITTED, and repairs versions that lost holders;
// - active server: places REPLICAs (passive first, then itself, then other
//   actives) until the replication factor has answered DONE, and finds a holder
//   for UPDATE;
// - holder (any server): pulls the bytes with READ, checks the hash, writes
//   them to disk with fsync before DONE, and serves READ.
// Decisions are the pure functions of machines/placement.ts.

import type { ViewChange } from "../../machines/membership.js";
import {
  activeOrder,
  garbageOf,
  holderCandidates,
  holdersOf,
  liveServers,
  mayRecord,
  nextVersion,
  obsoleteBy,
  repairNeeded,
  type ServerView,
} from "../../machines/placement.js";
import type { ServerRecord } from "../../machines/server.js";
import { decode, type Encoding, encode, encodingOf, headersFor } from "../../protocol/codec.js";
import {
  type CatalogRecord,
  CHUNK_BYTES,
  type CommitRequest,
  commitRequestSchema,
  committedSchema,
  type FileAnswer,
  type FileErrorName,
  type FileIdentity,
  type FileListing,
  lsRequestSchema,
  type PeerFileAnswer,
  type PeerFileMessage,
  peerFileAnswerSchema,
  peerFileMessageSchema,
  RECENT_COMMITS,
  readRequestSchema,
  type UpdateRequest,
  updateRequestSchema,
} from "../../protocol/files.js";
import { type HeldFile, type NodeId, PROTOCOL_VERSION, type ServerType } from "../../protocol/messages.js";
import { Responder, refusalLog } from "../../protocol/responder.js";
import { QUEUE_GROUP, type Subjects } from "../../protocol/subjects.js";
import type { Clock, TimerHandle } from "../../transport/clock.js";
import { CasConflictError } from "../../transport/errors.js";
import type { CasStore } from "../../transport/kv.js";
import type { Message, Subscription, Transport } from "../../transport/transport.js";
import { type Logger, throttledWarn } from "../logger.js";
import { Catalog, type CatalogEntry, type CatalogListing, catalogKey } from "./catalog.js";
import { FileStoreError } from "./errors.js";
import { pullReplica } from "./pull.js";
import { keyOf, type ReplicaRef, type ReplicaStore } from "./replicaStore.js";

export interface FileSettings {
  /** How many servers must hold a version on disk before SUCCESS (default 3). */
  readonly replicationFactor: number;
  /** Sessions (COMMIT, REPLICA, UPDATE, REPAIR) a server runs at once; one more is answered BUSY. */
  readonly maxSessions: number;
  /** Commits waiting for the same file at the coordinator; one more is EBUSY. */
  readonly maxQueuedPerFile: number;
  /** Largest file a COMMIT may carry. */
  readonly maxFileBytes: number;
  /** Timeout of one control message (COMMIT, REPLICA, UPDATE offer, catalog write). */
  readonly requestTimeoutMs: number;
  /** Timeout of one READ of one chunk. */
  readonly readTimeoutMs: number;
  /** READs a holder keeps in flight while it pulls a replica. */
  readonly readWindow: number;
  /** How often the coordinator checks every version for lost holders. */
  readonly repairEveryMs: number;
  /** A holder re-checks a replica's hash before serving it when it last did longer ago than this. */
  readonly verifyEveryMs: number;
}

export const defaultFileSettings = (): FileSettings => ({
  replicationFactor: 3,
  maxSessions: 8,
  maxQueuedPerFile: 16,
  maxFileBytes: 1024 * 1024 * 1024,
  requestTimeoutMs: 2_000,
  readTimeoutMs: 2_000,
  readWindow: 4,
  repairEveryMs: 5_000,
  verifyEveryMs: 60_000,
});

/** What the file store needs from the election: the term this node holds, the epoch it knows, the servers. */
export interface FileElection {
  state(): { readonly term: { readonly epoch: number } | null; readonly highestEpoch: number };
  servers(): Readonly<Record<string, ServerRecord>>;
  readonly timings: { readonly statusMs: number };
}

export interface FileServiceOptions {
  readonly self: NodeId;
  readonly serverType: ServerType;
  readonly subjects: Subjects;
  readonly transport: Transport;
  readonly store: CasStore;
  readonly replicas: ReplicaStore;
  readonly election: FileElection;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly settings?: Partial<FileSettings>;
}

/** How long a transfer of `size` bytes may take end to end, for one hop. */
export function transferTimeoutMs(settings: FileSettings, size: number): number {
  const rounds = Math.ceil(Math.max(1, Math.ceil(size / CHUNK_BYTES)) / settings.readWindow);
  return 2 * settings.requestTimeoutMs + rounds * settings.readTimeoutMs;
}

type Reply = (answer: FileAnswer | PeerFileAnswer) => void;

const error = (code: FileErrorName, message: string) =>
  ({ v: PROTOCOL_VERSION, type: "ERROR", error: code, message }) as const;
const BUSY = { v: PROTOCOL_VERSION, type: "BUSY" } as const;

export class FileService {
  readonly name = "files";
  readonly settings: FileSettings;
  readonly #o: FileServiceOptions;
  readonly #catalog: Catalog;
  readonly #warn: ReturnType<typeof throttledWarn>;
  readonly #responder: Responder;
  #subscriptions: Subscription[] = [];
  #coordinatorSubs: Subscription[] = [];
  #sessions = 0;
  #turn = 0;
  /** Per file, the commits under way at this coordinator (serialised) and how many wait. */
  readonly #queues = new Map<string, { tail: Promise<void>; depth: number }>();
  /** When each held replica's hash was last checked. */
  readonly #verifiedAt = new Map<string, number>();
  #repairTimer: TimerHandle | undefined;
  /** Per server, the requests waiting on its answer: they end when it leaves the view. */
  readonly #waitingOn = new Map<NodeId, Set<() => void>>();
  /** Per file, until when a commit started or ended here may still leave copies that get recorded (its own clock). */
  readonly #busyUntil = new Map<string, number>();
  /** When this coordinator's term began, and when it last wrote each file's record (its own clock). */
  #termStart = 0;
  readonly #recordedAt = new Map<string, number>();
  #repairing = false;
  #stopped = false;

  constructor(options: FileServiceOptions) {
    this.#o = options;
    this.settings = { ...defaultFileSettings(), ...options.settings };
    this.#catalog = new Catalog(options.store);
    this.#warn = throttledWarn(options.logger, options.clock);
    this.#responder = new Responder(options.transport, {
      onRefused: (reply, subject) => this.#warn("reply-subject", ...refusalLog(reply, subject)),
    });
  }

  async start(): Promise<this> {
    const { transport, subjects, self, replicas } = this.#o;
    await replicas.open();
    const sub = (subject: string, handler: (msg: Message) => void) =>
      this.#subscriptions.push(transport.subscribe(subject, handler));
    sub(subjects.filePeer(self), (msg) => this.#onPeer(msg));
    sub(subjects.fileCommitted, (msg) => void this.#onCommitted(msg));
    sub(subjects.fileRead(self), (msg) => void this.#onRead(msg));
    return this;
  }

  /** The versions this server holds, for ALIVE. */
  held(): HeldFile[] {
    return this.#o.replicas.held().map(({ name, version, sha256 }) => ({ name, version, sha256 }));
  }

  /** This node won a term or lost it: take (or stop taking) the clients' COMMIT, UPDATE and LS. */
  coordinatorChanged(coordinator: NodeId | null): void {
    if (this.#stopped) return;
    const mine = coordinator === this.#o.self;
    if (mine && this.#coordinatorSubs.length === 0) {
      const { transport, subjects } = this.#o;
      const sub = (subject: string, handler: (msg: Message) => void) =>
        this.#coordinatorSubs.push(transport.subscribe(subject, handler, { queue: QUEUE_GROUP }));
      sub(subjects.fileCommit, (msg) => void this.#onClient(msg, "COMMIT"));
      sub(subjects.fileUpdate, (msg) => void this.#onClient(msg, "UPDATE"));
      sub(subjects.fileLs, (msg) => void this.#onClient(msg, "LS"));
      this.#termStart = this.#now();
      this.#recordedAt.clear();
      this.#scheduleRepair(0);
    } else if (!mine && this.#coordinatorSubs.length > 0) {
      for (const s of this.#coordinatorSubs) s.unsubscribe();
      this.#coordinatorSubs = [];
      this.#o.clock.clearTimeout(this.#repairTimer);
    }
  }

  /**
   * A server left this node's view (PARTITION: crashed or cut off; DISCONNECT:
   * gone): what waits on its answer stops waiting, and a coordinator looks for
   * versions it held at once.
   */
  serverLeft(node: NodeId): void {
    const waiting = this.#waitingOn.get(node);
    this.#waitingOn.delete(node);
    for (const stop of waiting ?? []) stop();
    if (this.#coordinatorSubs.length > 0) this.#scheduleRepair(0);
  }

  /** Crashed or cut off (PARTITION) or gone (DISCONNECT): the file store stops waiting on those servers. */
  onView(_members: readonly NodeId[], change?: ViewChange): void {
    if (change?.event === "DISCONNECT" || change?.event === "PARTITION")
      for (const m of change.changed) this.serverLeft(m.node);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#o.clock.clearTimeout(this.#repairTimer);
    for (const s of [...this.#subscriptions, ...this.#coordinatorSubs]) s.unsubscribe();
    this.#subscriptions = [];
    this.#coordinatorSubs = [];
    await this.#o.replicas.close();
  }

  // --- shared ------------------------------------------------------------------------

  #now(): number {
    return this.#o.clock.now();
  }

  #servers(): ServerView[] {
    const { election, self, serverType, clock } = this.#o;
    return liveServers(
      election.servers(),
      { node: self, type: serverType, files: this.held() },
      clock.now(),
      election.timings.statusMs * 3,
    );
  }

  /** The epoch of the term this node holds now, or undefined. */
  #term(): number | undefined {
    return this.#o.election.state().term?.epoch;
  }

  #reply(msg: Message, answer: FileAnswer | PeerFileAnswer, encoding: Encoding = "cbor"): void {
    try {
      const headers = headersFor(encoding);
      this.#responder.answer(msg, encode(answer, encoding), headers ? { headers } : {});
    } catch (e) {
      this.#warn("reply", { err: e }, "could not answer a file store message");
    }
  }

  /**
   * Sends a peer message to `node` and reads its answer; failures come back as
   * ERROR answers, and so does `node` leaving the view (EAGAIN) before it answers:
   * a transfer's timeout is long, and a dead holder need not be waited out.
   */
  #ask(node: NodeId, message: PeerFileMessage, timeoutMs: number): Promise<PeerFileAnswer> {
    return new Promise<PeerFileAnswer>((resolve) => {
      const waiting = this.#waitingOn.get(node) ?? new Set<() => void>();
      this.#waitingOn.set(node, waiting);
      const stop = () =>
        resolve(error("EAGAIN", `server ${node} left the view before it answered ${message.type}`));
      waiting.add(stop);
      this.#request(node, message, timeoutMs).then((answer) => {
        waiting.delete(stop);
        if (waiting.size === 0 && this.#waitingOn.get(node) === waiting) this.#waitingOn.delete(node);
        resolve(answer);
      });
    });
  }

  async #request(node: NodeId, message: PeerFileMessage, timeoutMs: number): Promise<PeerFileAnswer> {
    try {
      const msg = await this.#o.transport.request(this.#o.subjects.filePeer(node), encode(message), {
        timeoutMs,
      });
      const decoded = decode(msg.data, "cbor", this.#o.transport.maxPayload);
      const parsed = decoded.ok ? peerFileAnswerSchema.safeParse(decoded.value) : undefined;
      if (!parsed?.success)
        return error("EIO", `server ${node} answered ${message.type} with a malformed message`);
      return parsed.data;
    } catch (e) {
      const name = e instanceof Error ? e.name : "Error";
      const code: FileErrorName = name === "TimeoutError" ? "ETIMEDOUT" : "EAGAIN";
      return error(
        code,
        `server ${node} did not answer ${message.type}: ${e instanceof Error ? e.message : e}`,
      );
    }
  }

  /** Runs `fn` as one session, or answers BUSY when this server runs as many as it allows. */
  async #session(reply: Reply, fn: () => Promise<FileAnswer | PeerFileAnswer>): Promise<void> {
    if (this.#sessions >= this.settings.maxSessions) {
      reply(BUSY);
      return;
    }
    this.#sessions++;
    try {
      reply(await fn());
    } catch (e) {
      reply(this.#failure(e));
    } finally {
      this.#sessions--;
    }
  }

  #failure(e: unknown): ReturnType<typeof error> {
    if (e instanceof FileStoreError) return error(e.code, e.message);
    if (e instanceof Error && e.name === "StoreUnavailableError")
      return error("EAGAIN", `the catalog cannot be reached: ${e.message}`);
    this.#o.logger.warn({ err: e }, "a file store session failed");
    return error("EIO", e instanceof Error ? e.message : String(e));
  }

  // --- coordinator --------------------------------------------------------------------

  async #onClient(msg: Message, kind: "COMMIT" | "UPDATE" | "LS"): Promise<void> {
    const encoding = encodingOf(msg);
    const reply = (answer: FileAnswer) => this.#reply(msg, answer, encoding);
    const decoded = decode(msg.data, encoding);
    if (!decoded.ok) return reply(error("EINVAL", decoded.message));
    const schema =
      kind === "COMMIT" ? commitRequestSchema : kind === "UPDATE" ? updateRequestSchema : lsRequestSchema;
    const parsed = schema.safeParse(decoded.value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return reply(
        error("EINVAL", `${kind}: ${issue?.path.join(".") || "message"}: ${issue?.message ?? "invalid"}`),
      );
    }
    const epoch = this.#term();
    if (epoch === undefined) return reply(error("EAGAIN", `node ${this.#o.self} is not the coordinator now`));
    try {
      if (kind === "COMMIT") reply(await this.#commit(parsed.data as CommitRequest, epoch));
      else if (kind === "UPDATE") reply(await this.#update(parsed.data as UpdateRequest, epoch));
      else reply(await this.#ls((parsed.data as { prefix?: string }).prefix ?? ""));
    } catch (e) {
      reply(this.#failure(e));
    }
  }

  async #commit(request: CommitRequest, epoch: number): Promise<FileAnswer> {
    if (request.size > this.settings.maxFileBytes)
      return error("EINVAL", `size ${request.size} exceeds files.maxFileBytes ${this.settings.maxFileBytes}`);
    const queue = this.#queues.get(request.name) ?? { tail: Promise.resolve(), depth: 0 };
    if (queue.depth >= this.settings.maxQueuedPerFile)
      return error("EBUSY", `${queue.depth} commits of ${request.name} are waiting already`);
    queue.depth++;
    this.#queues.set(request.name, queue);
    this.#holdBusy(request.name, request.size);
    const run = queue.tail.then(() => this.#commitNow(request, epoch));
    queue.tail = run.then(
      () => {},
      () => {},
    );
    try {
      return await run;
    } finally {
      this.#holdBusy(request.name, request.size);
      if (--queue.depth === 0) this.#queues.delete(request.name);
    }
  }

  async #commitNow(request: CommitRequest, epoch: number): Promise<FileAnswer> {
    if (this.#term() !== epoch) return error("EAGAIN", "this node's term ended");
    const existing = await this.#catalog.get(request.name);
    const recorded = existing === undefined ? undefined : recordedCommit(existing.record, request.commit);
    if (recorded !== undefined) {
      // A retry of a commit that was recorded (its answer was lost): the same version, never a new one.
      if (recorded.sha256 !== request.sha256)
        return error("EINVAL", `commit id ${request.commit} was used for other bytes`);
      return recorded;
    }
    if (!mayRecord(existing?.record, epoch)) return error("EAGAIN", "a newer coordinator recorded this file");
    const identity: FileIdentity = {
      name: request.name,
      version: nextVersion(existing?.record),
      sha256: request.sha256,
      size: request.size,
    };
    const message: PeerFileMessage = {
      v: PROTOCOL_VERSION,
      type: "COMMIT",
      from: this.#o.self,
      epoch,
      ...identity,
      commit: request.commit,
      rf: this.settings.replicationFactor,
      source: this.#o.subjects.fileSource(request.commit),
    };
    const answer = await this.#delegate(
      message,
      transferTimeoutMs(this.settings, identity.size) + this.settings.requestTimeoutMs,
    );
    if (answer.type !== "SUCCESS")
      return answer.type === "ERROR" ? answer : error("EIO", `unexpected ${answer.type}`);
    // Record it only while this term lasts: a deposed coordinator records nothing.
    if (this.#term() !== epoch)
      return error("EAGAIN", "this node's term ended before the version was recorded");
    const record: CatalogRecord = {
      v: PROTOCOL_VERSION,
      ...identity,
      epoch,
      commit: request.commit,
      holders: answer.holders,
      at: this.#now(),
      earlier: earlierCommits(existing?.record),
    };
    try {
      await this.#catalog.record(record, existing?.revision);
    } catch (e) {
      if (e instanceof CasConflictError)
        return error("EAGAIN", `another commit of ${request.name} was recorded first`);
      throw e;
    }
    this.#recordedAt.set(identity.name, this.#now());
    this.#publishCommitted(identity, epoch);
    this.#o.logger.info(
      { name: identity.name, version: identity.version, holders: answer.holders },
      "committed",
    );
    return success(record);
  }

  /** Sends a COMMIT, UPDATE or REPAIR to the active servers in turn until one is not BUSY. */
  async #delegate(message: PeerFileMessage, timeoutMs: number): Promise<PeerFileAnswer> {
    const order = activeOrder(this.#servers(), this.#o.self, this.#turn++);
    let last: PeerFileAnswer = error("EBUSY", "every active server is busy");
    for (const node of order) {
      const answer = await this.#ask(node, message, timeoutMs);
      if (answer.type === "BUSY") continue;
      // No responders: that server is gone. A timeout is not passed on: the server may still be at work.
      if (answer.type === "ERROR" && answer.error === "EAGAIN") {
        last = answer;
        continue;
      }
      return answer;
    }
    return last;
  }

  async #update(request: UpdateRequest, epoch: number): Promise<FileAnswer> {
    const entry = await this.#catalog.get(request.name);
    if (entry === undefined) return error("ENOENT", `no file named ${request.name}`);
    const { record } = entry;
    const identity: FileIdentity = {
      name: record.name,
      version: record.version,
      sha256: record.sha256,
      size: record.size,
    };
    const holders = this.#holders(record);
    const answer = await this.#delegate(
      { v: PROTOCOL_VERSION, type: "UPDATE", from: this.#o.self, epoch, ...identity, holders },
      2 * this.settings.requestTimeoutMs + this.settings.readTimeoutMs,
    );
    if (answer.type === "FILE")
      return { v: PROTOCOL_VERSION, type: "FILE", ...identity, source: answer.source };
    return answer.type === "ERROR" ? answer : error("EIO", `unexpected ${answer.type}`);
  }

  async #ls(prefix: string): Promise<FileAnswer> {
    const entries = await this.#catalog.list((e) => this.#warn("catalog", { key: e.key }, e.message));
    const servers = this.#servers();
    const files: FileListing[] = entries
      .filter((e) => e.record.name.startsWith(prefix))
      .map(({ record }) => ({
        name: record.name,
        version: record.version,
        sha256: record.sha256,
        size: record.size,
        holders: this.#holders(record, servers),
        at: record.at,
      }));
    return { v: PROTOCOL_VERSION, type: "LIST", files };
  }

  /** Who holds the recorded version now (ALIVE lists, and recorded holders not heard from since it was written). */
  #holders(record: CatalogRecord, servers = this.#servers()): NodeId[] {
    const since = this.#recordedAt.get(record.name) ?? this.#termStart;
    return holdersOf(record, { holders: record.holders, since }, servers, this.#o.election.timings.statusMs);
  }

  #publishCommitted(identity: FileIdentity, epoch: number): void {
    try {
      this.#o.transport.publish(
        this.#o.subjects.fileCommitted,
        encode({ v: PROTOCOL_VERSION, type: "COMMITTED", from: this.#o.self, epoch, ...identity }),
      );
    } catch (e) {
      this.#warn("committed", { err: e }, "could not announce a committed version");
    }
  }

  // --- repair (coordinator) ----------------------------------------------------------------

  #scheduleRepair(delayMs: number): void {
    this.#o.clock.clearTimeout(this.#repairTimer);
    this.#repairTimer = this.#o.clock.setTimeout(() => void this.#repair(), delayMs);
  }

  /** Copies every version held by fewer than the replication factor of live servers, from one that holds it. */
  async #repair(): Promise<void> {
    if (this.#stopped || this.#coordinatorSubs.length === 0) return;
    if (this.#repairing) return this.#scheduleRepair(this.settings.repairEveryMs);
    this.#repairing = true;
    const sweepStart = this.#now();
    try {
      const epoch = this.#term();
      if (epoch === undefined) return;
      let listing: CatalogListing;
      try {
        listing = await this.#catalog.scan((e) => this.#warn("catalog", { key: e.key }, e.message));
      } catch (e) {
        this.#warn("repair", { err: e }, "could not read the catalog to repair it");
        return;
      }
      for (const entry of listing.entries) {
        if (this.#term() !== epoch || this.#stopped) return;
        await this.#repairOne(entry, epoch);
      }
      if (this.#term() === epoch) this.#collectGarbage(listing, epoch, sweepStart);
    } finally {
      this.#repairing = false;
      if (!this.#stopped && this.#coordinatorSubs.length > 0)
        this.#scheduleRepair(this.settings.repairEveryMs);
    }
  }

  /** A commit of `name` under way (or just ended): its copies are not judged until its slowest holder is done. */
  #holdBusy(name: string, size: number): void {
    const until =
      this.#now() + transferTimeoutMs(this.settings, size) + 2 * this.#o.election.timings.statusMs;
    this.#busyUntil.set(name, Math.max(until, this.#busyUntil.get(name) ?? 0));
  }

  /**
   * Tells each server to delete the copies no record will ever name. Nothing
   * is judged early in a term (the last coordinator's writes may still land),
   * nor for a file whose commit here is under way or ended lately, nor for a
   * file whose record cannot be read (unreadable is not absent).
   */
  #collectGarbage(listing: CatalogListing, epoch: number, sweepStart: number): void {
    const statusMs = this.#o.election.timings.statusMs;
    if (sweepStart - this.#termStart < 2 * statusMs + 2 * this.settings.requestTimeoutMs) return;
    const recorded = new Map(listing.entries.map((e) => [e.record.name, e.record]));
    const readable = (f: HeldFile) => !listing.unreadable.has(catalogKey(f.name));
    const busy = new Set(this.#queues.keys());
    for (const [name, until] of this.#busyUntil) {
      if (sweepStart < until) busy.add(name);
      else this.#busyUntil.delete(name);
    }
    for (const server of this.#servers()) {
      for (const copy of garbageOf(server.files.filter(readable), recorded, busy)) {
        const { name, version, sha256 } = copy;
        const discard: PeerFileMessage = {
          v: PROTOCOL_VERSION,
          type: "DISCARD",
          from: this.#o.self,
          epoch,
          name,
          version,
          sha256,
        };
        try {
          this.#o.transport.publish(this.#o.subjects.filePeer(server.node), encode(discard));
        } catch (e) {
          this.#warn("discard", { err: e }, "could not send DISCARD");
        }
      }
    }
  }

  async #repairOne({ record, revision }: CatalogEntry, epoch: number): Promise<void> {
    const rf = this.settings.replicationFactor;
    const holders = this.#holders(record);
    if (repairNeeded(holders, rf) === 0) return;
    const identity: FileIdentity = {
      name: record.name,
      version: record.version,
      sha256: record.sha256,
      size: record.size,
    };
    this.#warn(
      `repair:${record.name}`,
      { name: record.name, version: record.version, holders, rf },
      "repairing a version with too few holders",
    );
    const answer = await this.#delegate(
      { v: PROTOCOL_VERSION, type: "REPAIR", from: this.#o.self, epoch, ...identity, holders, rf },
      transferTimeoutMs(this.settings, record.size) + this.settings.requestTimeoutMs,
    );
    if (answer.type !== "SUCCESS") {
      this.#warn("repair", { name: record.name, answer }, "could not repair a version");
      return;
    }
    if (this.#term() !== epoch) return;
    const updated: CatalogRecord = {
      ...record,
      holders: [...new Set([...holders, ...answer.holders])],
      at: record.at,
    };
    await this.#catalog.record(updated, revision).then(
      () => this.#recordedAt.set(record.name, this.#now()),
      (e: unknown) => {
        if (!(e instanceof CasConflictError))
          this.#warn("repair", { err: e }, "could not record the repaired holders");
      },
    );
  }

  // --- active server and holder -----------------------------------------------------------

  #onPeer(msg: Message): void {
    const decoded = decode(msg.data, "cbor", this.#o.transport.maxPayload);
    const parsed = decoded.ok ? peerFileMessageSchema.safeParse(decoded.value) : undefined;
    const reply: Reply = (answer) => this.#reply(msg, answer);
    if (!parsed?.success) {
      this.#warn("peer", {}, "dropped a malformed file store message from another server");
      reply(error("EINVAL", "malformed file store message"));
      return;
    }
    const m = parsed.data;
    // Fencing: work from a coordinator of an older term than one this server knows is refused.
    const highest = this.#o.election.state().highestEpoch;
    if (m.epoch < highest) {
      reply(error("ESTALE", `epoch ${m.epoch} is older than ${highest}`));
      return;
    }
    switch (m.type) {
      case "COMMIT":
        void this.#session(reply, () => this.#place(m, m.source, m.rf, new Set()));
        return;
      case "REPAIR":
        void this.#session(reply, () => this.#repairCopies(m));
        return;
      case "REPLICA":
        void this.#session(reply, () => this.#hold(m, m.source));
        return;
      case "UPDATE":
        void this.#session(reply, () => this.#find(m));
        return;
      case "DISCARD":
        void this.#discard(m);
        return;
    }
  }

  /** Asks holders, `rf - existing.size` at a time, until that many answered DONE (seed 002: REPLICA, DONE, SUCCESS). */
  async #place(
    identity: FileIdentity & { readonly epoch: number },
    source: string | ((holder: NodeId) => string),
    rf: number,
    existing: ReadonlySet<NodeId>,
  ): Promise<PeerFileAnswer> {
    const candidates = holderCandidates(this.#servers(), this.#o.self, existing);
    const wanted = rf - existing.size;
    const done: NodeId[] = [];
    const failures: string[] = [];
    const replica = (holder: NodeId): Extract<PeerFileMessage, { type: "REPLICA" }> => ({
      v: PROTOCOL_VERSION,
      type: "REPLICA",
      from: this.#o.self,
      epoch: identity.epoch,
      name: identity.name,
      version: identity.version,
      sha256: identity.sha256,
      size: identity.size,
      source: typeof source === "string" ? source : source(holder),
    });
    const timeoutMs = transferTimeoutMs(this.settings, identity.size);
    // One slot per replica wanted: a slot asks candidates in turn until one answers DONE.
    const slot = async () => {
      for (let holder = candidates.shift(); holder !== undefined; holder = candidates.shift()) {
        const message = replica(holder);
        const answer =
          holder === this.#o.self
            ? await this.#hold(message, message.source).catch((e: unknown) => this.#failure(e))
            : await this.#ask(holder, message, timeoutMs);
        if (answer.type === "DONE") {
          done.push(holder);
          return;
        }
        failures.push(`${holder}: ${answer.type === "ERROR" ? answer.message : answer.type}`);
      }
    };
    await Promise.all(Array.from({ length: Math.max(0, wanted) }, slot));
    if (done.length >= wanted)
      return { v: PROTOCOL_VERSION, type: "SUCCESS", holders: done.slice(0, wanted) };
    return error(
      "ENOSPC",
      `only ${existing.size + done.length} of ${rf} servers hold ${identity.name} version ${identity.version}` +
        (failures.length > 0 ? ` (${failures.join("; ")})` : ""),
    );
  }

  async #repairCopies(m: Extract<PeerFileMessage, { type: "REPAIR" }>): Promise<PeerFileAnswer> {
    const sources = m.holders.filter((h) => h !== this.#o.self);
    let turn = 0;
    // Each new holder reads from one of the holders, in turn.
    const source = () => this.#o.subjects.fileRead(sources[turn++ % sources.length] ?? this.#o.self);
    return this.#place(m, source, m.rf, new Set(m.holders));
  }

  /** REPLICA: pull the bytes from `source`, check them, write them to disk with fsync, answer DONE. */
  async #hold(m: FileIdentity & { readonly epoch: number }, source: string): Promise<PeerFileAnswer> {
    const identity: FileIdentity = { name: m.name, version: m.version, sha256: m.sha256, size: m.size };
    const done = { v: PROTOCOL_VERSION, type: "DONE", holder: this.#o.self } as const;
    if (this.#o.replicas.get(identity) !== undefined) return done;
    if (!this.#isSource(source)) return error("EINVAL", `${source} is not a file source subject`);
    await pullReplica({
      transport: this.#o.transport,
      replicas: this.#o.replicas,
      identity,
      source,
      window: this.settings.readWindow,
      timeoutMs: this.settings.readTimeoutMs,
    });
    this.#verifiedAt.set(keyOf(identity), this.#now());
    return done;
  }

  #isSource(subject: string): boolean {
    const { subjects } = this.#o;
    return (
      subject.startsWith(subjects.fileSource("")) ||
      subject.startsWith(subjects.fileRead(0).replace(/0$/, ""))
    );
  }

  /**
   * UPDATE: a server that holds the version serves it itself (FILE); an active
   * server asked by the coordinator asks the holders in turn (their UPDATE has
   * no holders: they answer for themselves).
   */
  async #find(m: Extract<PeerFileMessage, { type: "UPDATE" }>): Promise<PeerFileAnswer> {
    if (await this.#servable(m)) return { v: PROTOCOL_VERSION, type: "FILE", source: this.#o.self };
    const failures: string[] = [];
    for (const holder of m.holders) {
      if (holder === this.#o.self) continue;
      const probe: PeerFileMessage = { ...m, from: this.#o.self, holders: [] };
      const answer = await this.#ask(
        holder,
        probe,
        this.settings.requestTimeoutMs + this.settings.readTimeoutMs,
      );
      if (answer.type === "FILE") return answer;
      failures.push(`${holder}: ${answer.type === "ERROR" ? answer.message : answer.type}`);
    }
    const why = failures.length > 0 ? ` (${failures.join("; ")})` : "";
    return error("ENOENT", `no reachable server holds ${m.name} version ${m.version}${why}`);
  }

  /** Whether this server holds the version with good bytes (the hash is re-checked when it was not lately). */
  async #servable(ref: ReplicaRef): Promise<boolean> {
    if (this.#o.replicas.get(ref) === undefined) return false;
    const key = keyOf(ref);
    const checked = this.#verifiedAt.get(key);
    if (checked !== undefined && this.#now() - checked < this.settings.verifyEveryMs) return true;
    const good = await this.#o.replicas.verify(ref);
    if (good) this.#verifiedAt.set(key, this.#now());
    else
      this.#o.logger.error(
        { name: ref.name, version: ref.version },
        "a replica failed its hash check and was set aside",
      );
    return good;
  }

  async #onRead(msg: Message): Promise<void> {
    const encoding = encodingOf(msg);
    const decoded = decode(msg.data, encoding);
    const parsed = decoded.ok ? readRequestSchema.safeParse(decoded.value) : undefined;
    if (!parsed?.success) return this.#reply(msg, error("EINVAL", "malformed READ"), encoding);
    const { offset, length, ...ref } = parsed.data;
    try {
      const data = await this.#o.replicas.read(ref, offset, length);
      this.#reply(msg, { v: PROTOCOL_VERSION, type: "DATA", offset, data }, encoding);
    } catch (e) {
      this.#reply(msg, this.#failure(e), encoding);
    }
  }

  /**
   * What the catalog says of `name` before this holder drops a copy of it: the
   * readable record, "absent" when the key is confirmed absent, or undefined
   * when it cannot tell (the record does not parse, or the store is out of
   * reach): then nothing is dropped, and that is logged (throttled).
   */
  async #catalogSays(name: string): Promise<CatalogRecord | "absent" | undefined> {
    try {
      const found = await this.#catalog.lookup(name);
      if (found.kind === "record") return found.entry.record;
      if (found.kind === "absent") return "absent";
      this.#warn(
        `unreadable:${found.error.key}`,
        { name, key: found.error.key },
        "kept the copies of a file whose catalog record cannot be read",
      );
    } catch (e) {
      this.#warn("keep", { err: e, name }, "kept copies the catalog could not be read to judge");
    }
    return undefined;
  }

  #remove(copy: ReplicaRef, why: string): void {
    this.#verifiedAt.delete(keyOf(copy));
    this.#o.replicas.remove(copy).then(
      () => this.#o.logger.info({ name: copy.name, version: copy.version }, why),
      (e: unknown) => this.#warn("remove", { err: e }, "could not discard a copy"),
    );
  }

  /**
   * DISCARD: the coordinator judged the copy garbage. It goes only when the
   * catalog agrees: the key is absent, or its readable record names another
   * version or other bytes. Never the copy the record names.
   */
  async #discard(copy: Extract<PeerFileMessage, { type: "DISCARD" }>): Promise<void> {
    const record = await this.#catalogSays(copy.name);
    if (record === undefined || this.#stopped) return;
    if (record !== "absent" && record.version === copy.version && record.sha256 === copy.sha256) {
      this.#warn(
        "discard-named",
        { name: copy.name, version: copy.version, from: copy.from },
        "refused to discard the copy the catalog names",
      );
      return;
    }
    this.#remove(copy, "discarded a copy no record names");
  }

  /**
   * COMMITTED: drop older versions of that file and losing bytes under the
   * same version, as the file's readable record says (the message only says
   * when to look).
   */
  async #onCommitted(msg: Message): Promise<void> {
    const decoded = decode(msg.data, "cbor");
    const parsed = decoded.ok ? committedSchema.safeParse(decoded.value) : undefined;
    if (!parsed?.success) {
      this.#warn("committed", {}, "dropped a malformed COMMITTED");
      return;
    }
    if (parsed.data.epoch < this.#o.election.state().highestEpoch) return;
    if (obsoleteBy(this.#o.replicas.held(), parsed.data).length === 0) return;
    const record = await this.#catalogSays(parsed.data.name);
    if (record === undefined || record === "absent" || this.#stopped) return;
    for (const old of obsoleteBy(this.#o.replicas.held(), record))
      this.#remove(old, "removed an old version");
  }
}

const success = (record: CatalogRecord): FileAnswer => ({
  v: PROTOCOL_VERSION,
  type: "SUCCESS",
  name: record.name,
  version: record.version,
  sha256: record.sha256,
  size: record.size,
  holders: record.holders,
});

/** The answer to a commit id the record names: its own, or one of the earlier commits it remembers. */
function recordedCommit(
  record: CatalogRecord,
  commit: string,
): Extract<FileAnswer, { type: "SUCCESS" }> | undefined {
  if (record.commit === commit) return success(record) as Extract<FileAnswer, { type: "SUCCESS" }>;
  const earlier = record.earlier?.find((e) => e.commit === commit);
  if (earlier === undefined) return undefined;
  // The holders may have dropped that version since.
  return { ...(success(record) as Extract<FileAnswer, { type: "SUCCESS" }>), ...earlier, holders: [] };
}

/** The commits a new record remembers: the one it replaces, then those it remembered. */
function earlierCommits(previous: CatalogRecord | undefined): CatalogRecord["earlier"] {
  if (previous === undefined) return undefined;
  const { commit, version, sha256, size } = previous;
  return [{ commit, version, sha256, size }, ...(previous.earlier ?? [])].slice(0, RECENT_COMMITS);
}
