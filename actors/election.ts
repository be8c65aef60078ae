// The election runtime of one node (SPEC 7): runs its registry and server
// roles (machines/registry.ts, machines/server.ts) as actors and gives them the
// world — the coordinator record in the compare-and-set store, WHO and FAILED
// on `dvs.<c>.dns.*`, the servers' broadcasts on `dvs.<c>._srv.*`, PING, the
// COORDINATOR event on `dvs.<c>.events`, and a `clock.tick` from the injected
// clock, only when one is due: after every event either machine takes, one
// timer is armed at the earliest instant a tick would change anything.
import { type Actor, type Subscription as ActorSubscription, createActor } from "xstate";
import { earliest } from "../machines/due.js";
import type { ElectionTimings } from "../machines/electionTimings.js";
import type { ViewChange } from "../machines/membership.js";
import {
  liveCoordinator,
  type RegistryAnswer,
  type RegistryEvent,
  type RegistryMachine,
  type RegistryRecord,
  type RegistryView,
  registryMachine,
  registryTickDue,
  registryView,
  type StoreWrite,
} from "../machines/registry.js";
import {
  holdsValidLease,
  type OutgoingServerMessage,
  type PeerMessage,
  type ServerMachine,
  type ServerRecord,
  type ServerState,
  serverMachine,
  serverTickDue,
} from "../machines/server.js";
import { decode, type Encoding, encode, encodingOf, headersFor } from "../protocol/codec.js";
import {
  type CoordinatorEvent,
  type CoordinatorRecord,
  coordinatorRecordSchema,
  type HeldFile,
  type NodeId,
  PROTOCOL_VERSION,
  type ServerMessage,
  type ServerType,
  serverMessageSchema,
  type RegistryAnswer as WireAnswer,
} from "../protocol/messages.js";
import { publishNodeEvent } from "../protocol/nodeEvents.js";
import { ReplyGuard, refusalLog } from "../protocol/responder.js";
import type { Subjects } from "../protocol/subjects.js";
import type { Clock } from "../transport/clock.js";
import { DeadlineTimer } from "../transport/deadline.js";
import { CasConflictError } from "../transport/errors.js";
import type { CasStore, KvEntry } from "../transport/kv.js";
import type { Message, Subscription, Transport } from "../transport/transport.js";
import { type Endpoints, publicEndpoints, serveEndpoint } from "./endpoints.js";
import { type Logger, throttledWarn } from "./logger.js";
import { MALFORMED_QUESTION, readRegistryQuestion } from "./registryQuestions.js";
import type { Subsystem } from "./subsystem.js";

/** The store key of the coordinator record. */
export const COORDINATOR_KEY = "coordinator";

export interface ElectionOptions {
  readonly self: NodeId;
  readonly incarnation: number;
  readonly serverType: ServerType;
  readonly subjects: Subjects;
  readonly transport: Transport;
  readonly store: CasStore;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly timings: ElectionTimings;
  /** The node's public endpoints (`$SRV`): the `dns.*` subjects are served and counted there. */
  readonly endpoints?: Endpoints;
  /** The machines to run (tests plant bugs in them). */
  readonly registryMachine?: RegistryMachine;
  readonly serverMachine?: ServerMachine;
}

/**
 * The file store of this server as the election sees it: the files it holds
 * go out in ALIVE, and it hears of every coordinator change this node announces.
 */
export interface ServerFiles {
  held(): readonly HeldFile[];
  coordinatorChanged(coordinator: NodeId | null): void;
}

/** What a node's registry answers to WHO right now, and what its server role is doing. */
export interface ElectionState {
  readonly role: "starting" | "worker" | "candidate" | "coordinator" | "stopped";
  /** The term this server holds with a lease still valid, if any. */
  readonly term: { readonly epoch: number; readonly validUntil: number } | null;
  readonly who: WireAnswer;
  readonly highestEpoch: number;
  readonly dropped: number;
}

type WhoRef = { readonly kind: "reply"; readonly reply: string; readonly encoding: Encoding };
type ServerRef = { readonly kind: "server"; readonly sentAt: number };

/** A write expected a revision the store no longer holds (machines/registry.ts, wentBack). */
const WENT_BACK = "the registry's stream went back: a replica lost acknowledged writes (nats-server 2.9)";

export class Election implements Subsystem {
  readonly name = "election";
  readonly registry: Actor<RegistryMachine>;
  readonly server: Actor<ServerMachine>;
  readonly #o: ElectionOptions;
  readonly #warn: ReturnType<typeof throttledWarn>;
  readonly #replies: ReplyGuard;
  readonly #refs = new Map<string, WhoRef | ServerRef>();
  #nextRef = 1;
  #subscriptions: Subscription[] = [];
  #stopWatch: (() => void) | undefined;
  #observers: ActorSubscription[] = [];
  /** The one tick timer, armed at the next instant a tick is due. */
  readonly #tick: DeadlineTimer;
  #lastView = "";
  #release: Promise<void> | undefined;
  /** The renewal under way, and the revision this node last wrote: a release must expect that one. */
  #renewal: Promise<unknown> = Promise.resolve();
  #written = 0;
  #stopped = false;
  #files: ServerFiles | undefined;

  constructor(options: ElectionOptions) {
    this.#o = options;
    this.#warn = throttledWarn(options.logger, options.clock);
    this.#tick = new DeadlineTimer(options.clock, () => this.#onTick());
    this.#replies = new ReplyGuard({
      onRefused: (reply, subject) => this.#warn("reply-subject", ...refusalLog(reply, subject)),
    });
    const now = options.clock.now();
    const registry = (options.registryMachine ?? registryMachine).provide({
      actions: {
        answer: (_, { ref, answer }) => this.#answer(ref, answer),
        write: (_, write) => this.#write(write),
        read: () => this.#read(),
        ping: (_, { coordinator, epoch, ref }) => this.#ping(coordinator, epoch, ref),
      },
    });
    const { leaseMs, confirmMs } = options.timings;
    this.registry = createActor(registry, {
      input: { self: options.self, leaseMs, confirmMs, at: now },
      clock: options.clock,
    });
    const server = (options.serverMachine ?? serverMachine).provide({
      actions: {
        askRegistry: (_, { message, sentAt }) => {
          const ref = this.#ref({ kind: "server", sentAt });
          this.#toRegistry({ type: message, from: options.self, ref, at: sentAt });
        },
        startElection: (_, { epoch }) => {
          // The registry writes nothing for it: ELECTED writes over the term that ran out (machines/registry.ts).
          options.logger.info({ epoch }, "the coordinator's lease ran out: ELECTION");
          this.#broadcast("ELECTION", epoch);
        },
        broadcast: (_, { message, epoch }) => {
          this.#broadcast(message, epoch);
          // The coordinator is a server too: its own ALIVE keeps it, and the files it holds, in every list.
          if (message === "STATUS") this.#broadcast("ALIVE", epoch);
        },
        replyAlive: (_, { reply }) => this.#publish(reply, this.#serverMessage("ALIVE", this.#epoch())),
        renewLease: (_, { expected, epoch, sentAt }) => this.#renew(expected, epoch, sentAt),
        releaseLease: (_, { expected, epoch }) => {
          // After a renewal under way, whose revision the release must expect.
          this.#release = this.#renewal
            .then(() => this.#writeRecord({ coordinator: null, epoch }, Math.max(expected, this.#written)))
            .then(
              () => {},
              (error: unknown) => options.logger.warn({ err: error }, "could not give the term back"),
            );
        },
        announce: (_, { coordinator, epoch, cause }) => this.#announce(coordinator, epoch, cause),
      },
    });
    this.server = createActor(server, {
      input: {
        self: options.self,
        incarnation: options.incarnation,
        type: options.serverType,
        timings: options.timings,
        at: now,
      },
      clock: options.clock,
    });
  }

  /**
   * The file store of this server, built after the election since it asks the
   * election who coordinates: from now on ALIVE lists its files.
   */
  carryFiles(files: ServerFiles): void {
    this.#files = files;
  }

  start(): void {
    const { transport, subjects, store, self } = this.#o;
    this.registry.start();
    this.server.start();
    const sub = (subject: string, handler: (msg: Message) => void) =>
      this.#subscriptions.push(transport.subscribe(subject, handler));
    const specs = publicEndpoints(subjects, self);
    for (const [spec, handler] of [
      [specs.dnsWho, (msg: Message) => this.#onWho(msg)],
      [specs.dnsNodeWho, (msg: Message) => this.#onWho(msg)],
      [specs.dnsFailed, (msg: Message) => this.#onFailed(msg)],
    ] as const)
      this.#subscriptions.push(serveEndpoint(transport, this.#o.endpoints, spec, handler));
    sub(subjects.servers, (msg) => this.#onServerMessage(msg));
    sub(subjects.serverPing(self), (msg) => this.#onServerMessage(msg));
    this.#stopWatch = store.watch(COORDINATOR_KEY, (entry) => this.#onEntry(entry));
    // Every event either machine takes may move the next tick's instant.
    this.#observers = [this.registry.subscribe(() => this.#arm()), this.server.subscribe(() => this.#arm())];
    this.#read();
    this.#arm();
  }

  /** The state tests and GETNODEINFO-style reports read. */
  state(): ElectionState {
    const snap = this.server.getSnapshot();
    const ctx = snap.context;
    const now = this.#now();
    const role = (typeof snap.value === "string" ? snap.value : "stopped") as ElectionState["role"];
    return {
      role,
      term:
        role === "coordinator" && ctx.lease !== null && holdsValidLease(ctx, now)
          ? { epoch: ctx.epoch, validUntil: ctx.lease.validUntil }
          : null,
      who: this.#who(now),
      highestEpoch: ctx.highestEpoch,
      dropped: ctx.dropped,
    };
  }

  /** The other servers this node has heard from (SERVER, ALIVE): their type, files and when last heard. */
  servers(): Readonly<Record<string, ServerRecord>> {
    return this.server.getSnapshot().context.servers;
  }

  /** The timings the election runs on (the file store reads the STATUS period). */
  get timings(): ElectionTimings {
    return this.#o.timings;
  }

  /** A server left the view for good (DISCONNECT): drop it from the list. */
  serverGone(node: NodeId): void {
    if (!this.#stopped) this.server.send({ type: "peer.gone", node, at: this.#now() });
  }

  /** Servers that DISCONNECTed leave the list at once; the others age out with their ALIVE. */
  onView(_members: readonly NodeId[], change?: ViewChange): void {
    if (change?.event === "DISCONNECT") for (const m of change.changed) this.serverGone(m.node);
  }

  /** Graceful stop: a coordinator gives its term back (so the next election need not wait out the lease). */
  async stop(timeoutMs = this.#o.timings.leaseMs): Promise<void> {
    if (this.#stopped) return;
    this.server.send({ type: "server.stop", at: this.#now() });
    this.#stopped = true;
    if (this.#release) await withTimeout(this.#release, timeoutMs, this.#o.clock);
    this.#tick.clear();
    for (const o of this.#observers) o.unsubscribe();
    this.#observers = [];
    for (const s of this.#subscriptions) s.unsubscribe();
    this.#subscriptions = [];
    this.#stopWatch?.();
    this.server.stop();
    this.registry.stop();
  }

  #now(): number {
    return this.#o.clock.now();
  }

  /**
   * When a tick would next change either machine or the view the server role
   * hears (one it has not heard, its role having changed, is due at once). The
   * server role asks nothing before its registry read the store: it would hear NOTHING.
   */
  #dueAt(now: number): number | undefined {
    const registry = this.registry.getSnapshot().context;
    const server = this.server.getSnapshot();
    const view = this.#view(now);
    return earliest(
      registryTickDue(registry, now),
      registry.loaded ? serverTickDue(server.value as ServerState, server.context) : undefined,
      view !== null && view.key !== this.#lastView ? now : undefined,
    );
  }

  /** Moves the tick timer to the instant the next tick is due. */
  #arm(): void {
    if (!this.#stopped) this.#tick.set(this.#dueAt(this.#now()));
  }

  /** Both machines take the tick, as at any instant (a stalled node's late one too); taking it re-arms the timer. */
  #onTick(): void {
    if (this.#stopped) return;
    const at = this.#now();
    this.#toRegistry({ type: "clock.tick", at });
    this.server.send({ type: "clock.tick", at });
  }

  #toRegistry(event: RegistryEvent): void {
    if (this.#stopped) return;
    this.registry.send(event);
    // Tell the server role what the registry vouches for now, when that changed.
    const view = this.#view(event.at);
    if (view === null || view.key === this.#lastView) return;
    this.#lastView = view.key;
    this.server.send({ type: "registry.view", ...view.view, at: event.at });
  }

  /** What the registry vouches for at `at` (null: it has not read the store yet), and its key. */
  #view(at: number): { view: RegistryView; key: string } | null {
    const view = registryView(this.registry.getSnapshot().context, at);
    if (view === null) return null;
    // The server's role is part of the key: a coordinator that stepped down must hear the view again as a worker.
    const role = String(this.server.getSnapshot().value);
    return { view, key: `${view.coordinator}/${view.epoch}/${view.live}/${role}` };
  }

  #who(at: number): WireAnswer {
    const live = liveCoordinator(this.registry.getSnapshot().context, at);
    return live?.coordinator != null
      ? { v: PROTOCOL_VERSION, type: "OK", coordinator: live.coordinator, epoch: live.epoch }
      : { v: PROTOCOL_VERSION, type: "NOTHING" };
  }

  #ref(ref: WhoRef | ServerRef): string {
    const id = `${this.#nextRef++}`;
    this.#refs.set(id, ref);
    return id;
  }

  #answer(refId: string, answer: RegistryAnswer): void {
    const ref = this.#refs.get(refId);
    this.#refs.delete(refId);
    if (ref === undefined) return;
    if (ref.kind === "server") {
      // Out of the registry's action: the server role's reaction may ask the registry again.
      queueMicrotask(() => {
        if (this.#stopped) return;
        this.server.send({ type: "registry.answer", answer, sentAt: ref.sentAt, at: this.#now() });
      });
      return;
    }
    const wire: WireAnswer =
      answer.type === "OK"
        ? { v: PROTOCOL_VERSION, type: "OK", coordinator: answer.coordinator, epoch: answer.epoch }
        : { v: PROTOCOL_VERSION, type: "NOTHING" };
    this.#publish(ref.reply, wire, ref.encoding);
  }

  #onEntry(entry: KvEntry): void {
    const record = this.#parse(entry);
    queueMicrotask(() => this.#toRegistry({ type: "store.entry", record, at: this.#now() }));
  }

  /**
   * The entry as the registry sees it. One that cannot be read (garbage bytes,
   * a record that fails the schema, an epoch no write could have given it) is
   * not ignored: it becomes a malformed record at its revision, which the next
   * election replaces with a compare-and-set once a lease has passed.
   */
  #parse(entry: KvEntry): RegistryRecord {
    const decoded = decode(entry.value, "json");
    const parsed = decoded.ok ? coordinatorRecordSchema.safeParse(decoded.value) : undefined;
    // A term's epoch is the revision that opened it, so no record holds an epoch past its own revision.
    if (parsed?.success && (parsed.data.epoch ?? entry.revision) <= entry.revision) {
      const { coordinator, epoch } = parsed.data;
      return { coordinator, epoch: epoch ?? entry.revision, revision: entry.revision };
    }
    this.#warn(
      "record",
      { revision: entry.revision, bytes: entry.value.byteLength },
      "the coordinator record in the store cannot be read: the next election replaces it",
    );
    return { coordinator: null, epoch: entry.revision, revision: entry.revision, malformed: true };
  }

  #read(): void {
    this.#o.store.get(COORDINATOR_KEY).then(
      (entry) => {
        const record = entry === undefined ? null : this.#parse(entry);
        this.#toRegistry({ type: "store.entry", record, at: this.#now() });
      },
      (error: unknown) => {
        this.#warn("read", { err: error }, "could not read the coordinator record");
        this.#toRegistry({ type: "store.unavailable", at: this.#now() });
      },
    );
  }

  #writeRecord(
    value: Pick<CoordinatorRecord, "coordinator" | "epoch">,
    expected: number | null,
  ): Promise<number> {
    const record: CoordinatorRecord = {
      v: PROTOCOL_VERSION,
      ...value,
      writer: this.#o.self,
      at: this.#now(),
    };
    const bytes = encode(record, "json");
    return expected === null
      ? this.#o.store.create(COORDINATOR_KEY, bytes)
      : this.#o.store.update(COORDINATOR_KEY, bytes, expected);
  }

  #write(write: StoreWrite): void {
    this.#writeRecord({ coordinator: write.coordinator, epoch: write.epoch }, write.expected).then(
      (revision) =>
        this.#toRegistry({
          type: "store.written",
          op: write.op,
          record: { coordinator: write.coordinator, epoch: write.epoch ?? revision, revision },
          at: this.#now(),
        }),
      (error: unknown) => {
        const conflict = error instanceof CasConflictError;
        if (!conflict) this.#warn("write", { err: error }, "could not write the coordinator record");
        const current = conflict ? error.current : undefined;
        if (current !== undefined && write.expected !== null && current < write.expected)
          this.#warn("went-back", { expected: write.expected, current }, WENT_BACK);
        this.#toRegistry({
          type: conflict ? "store.conflict" : "store.failed",
          op: write.op,
          ...(current === undefined ? {} : { current }),
          at: this.#now(),
        });
      },
    );
  }

  #ping(coordinator: NodeId, epoch: number, ref: string): void {
    const { transport, subjects } = this.#o;
    transport
      .request(subjects.serverPing(coordinator), encode(this.#serverMessage("PING", this.#epoch())), {
        timeoutMs: Math.max(50, Math.round(this.#o.timings.leaseMs / 2)),
      })
      .then(
        () => this.#toRegistry({ type: "ping.answered", epoch, ref, at: this.#now() }),
        () => this.#toRegistry({ type: "ping.failed", epoch, ref, at: this.#now() }),
      );
  }

  /** The message's reply subject when dvsd may answer it (an inbox); a foreign one is dropped and logged. */
  #replyOf(msg: Message): string | undefined {
    return this.#replies.replyOf(msg);
  }

  #onWho(msg: Message): void {
    const reply = this.#replyOf(msg);
    if (!reply) return;
    const encoding = encodingOf(msg);
    if (!readRegistryQuestion(msg.data, encoding, "WHO")) {
      this.#publish(reply, MALFORMED_QUESTION, encoding);
      return;
    }
    this.#toRegistry({ type: "WHO", ref: this.#ref({ kind: "reply", reply, encoding }), at: this.#now() });
  }

  #onFailed(msg: Message): void {
    const reply = this.#replyOf(msg);
    if (!reply) return;
    const encoding = encodingOf(msg);
    const question = readRegistryQuestion(msg.data, encoding, "FAILED");
    if (question?.type !== "FAILED") {
      this.#publish(reply, MALFORMED_QUESTION, encoding);
      return;
    }
    const ref = this.#ref({ kind: "reply", reply, encoding });
    const { coordinator, epoch } = question;
    this.#toRegistry({ type: "FAILED", coordinator, epoch, ref, at: this.#now() });
  }

  #epoch(): number {
    return this.server.getSnapshot().context.highestEpoch;
  }

  #serverMessage(type: ServerMessage["type"], epoch: number): ServerMessage {
    const header = {
      v: PROTOCOL_VERSION,
      from: this.#o.self,
      incarnation: this.#o.incarnation,
      epoch,
    } as const;
    const server = this.#o.serverType;
    switch (type) {
      case "SERVER":
        return { ...header, type, server };
      case "ALIVE":
        return {
          ...header,
          type,
          server,
          coordinator: this.server.getSnapshot().context.coordinator,
          files: [...(this.#files?.held() ?? [])],
        };
      default:
        return { ...header, type };
    }
  }

  #broadcast(message: OutgoingServerMessage, epoch: number): void {
    this.#publish(this.#o.subjects.servers, this.#serverMessage(message, epoch));
  }

  #onServerMessage(msg: Message): void {
    if (this.#stopped) return;
    const decoded = decode(msg.data, "cbor", this.#o.transport.maxPayload);
    const parsed = decoded.ok ? serverMessageSchema.safeParse(decoded.value) : undefined;
    if (!parsed?.success) {
      this.#warn("server-message", {}, "dropped a malformed message from another server");
      return;
    }
    const m = parsed.data;
    const base = { from: m.from, incarnation: m.incarnation, epoch: m.epoch };
    const message: PeerMessage =
      m.type === "SERVER"
        ? { kind: m.type, ...base, server: m.server }
        : m.type === "ALIVE"
          ? { kind: m.type, ...base, server: m.server, coordinator: m.coordinator, files: m.files }
          : { kind: m.type, ...base };
    this.server.send({ type: "peer.message", message, reply: this.#replyOf(msg) ?? null, at: this.#now() });
    // A newcomer heard only from servers that start after it: tell it about this one (and the files here) now.
    if (m.type === "SERVER" && m.from !== this.#o.self) this.#broadcast("ALIVE", this.#epoch());
  }

  #renew(expected: number, epoch: number, sentAt: number): void {
    this.#renewal = this.#writeRecord({ coordinator: this.#o.self, epoch }, expected).then(
      (revision) => {
        this.#written = revision;
        if (this.#stopped) return;
        this.server.send({ type: "lease.renewed", revision, sentAt, at: this.#now() });
        // This node's registry learns its own write at once (its watch may lag).
        this.#toRegistry({
          type: "store.entry",
          record: { coordinator: this.#o.self, epoch, revision },
          at: this.#now(),
        });
      },
      (error: unknown) => {
        if (this.#stopped) return;
        if (error instanceof CasConflictError) {
          this.server.send({ type: "lease.conflict", at: this.#now() });
          this.#read();
        } else {
          this.#warn("renew", { err: error }, "could not renew the coordinator lease");
          this.server.send({ type: "lease.unavailable", at: this.#now() });
        }
      },
    );
  }

  #announce(coordinator: NodeId | null, epoch: number, cause: string): void {
    const { self, incarnation, logger, subjects } = this.#o;
    const event: CoordinatorEvent = {
      v: PROTOCOL_VERSION,
      node: self,
      incarnation,
      event: "COORDINATOR",
      coordinator,
      epoch,
      cause,
      at: this.#now(),
    };
    if (coordinator === self) logger.info({ epoch }, "this node is the coordinator");
    else logger.warn({ epoch, cause }, "this node stepped down as coordinator");
    const sent = publishNodeEvent(this.#o.transport, subjects, event);
    if (!sent.ok) this.#warn("event", { err: sent.error }, "could not publish a COORDINATOR event");
    this.#files?.coordinatorChanged(coordinator);
  }

  #publish(subject: string, value: unknown, encoding: Encoding = "cbor"): void {
    try {
      const headers = headersFor(encoding);
      this.#o.transport.publish(subject, encode(value, encoding), headers ? { headers } : undefined);
    } catch (error) {
      this.#warn("publish", { err: error, subject }, "could not publish an election message");
    }
    this.#o.endpoints?.answered(subject, value === MALFORMED_QUESTION ? "EBADMSG" : undefined);
  }
}

function withTimeout(promise: Promise<void>, ms: number, clock: Clock): Promise<void> {
  return new Promise((resolve) => {
    const timer = clock.setTimeout(resolve, ms);
    promise.finally(() => {
      clock.clearTimeout(timer);
      resolve();
    });
  });
}
