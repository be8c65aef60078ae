// The process side of a node (SPEC 5, "process" and "node & proxy" rows):
// processes are XState actors spawned from registered machines in a DC, at an
// endpoint valid on every node. This module hosts them, routes their messages
// through the proxies in per-sender order, moves them between nodes
// (MIGRATE) without losing or duplicating a message, enforces their
// privileges, persists their snapshots, and answers the process requests.
//
// The event contract with a process machine (see docs/processes.md and
// machines/processEvents.ts):
// - in: `{type: "dvs.message", from, seq, body}` for each message, in order per
//   sender; `{type: "dvs.rply", id, rply}` answering one of its requests;
//   `{type: "dvs.error", op, id?, error, message}` when one of its sends or
//   requests was refused (EPERM) or failed.
// - out (XState `emit`): `{type: "dvs.send", dcid?, endpoint, body}` sends a
//   message; `{type: "dvs.rqst", id, request, dst?, params?}` makes a request.
import { type Actor, type AnyStateMachine, createActor, type Snapshot } from "xstate";
import { z } from "zod";
import type { ViewChange } from "../machines/membership.js";
import { type ProcessLifecycleMachine, processLifecycleMachine } from "../machines/process.js";
import type { DvsEvent, Sender } from "../machines/processEvents.js";
import { decode, encode, makeRqst } from "../protocol/codec.js";
import {
  dcidSchema,
  type ErrorName,
  endpointSchema,
  isRequestType,
  type NodeId,
  nodeIdSchema,
  PROTOCOL_VERSION,
  type RequestType,
  type Rply,
  type Rqst,
} from "../protocol/messages.js";
import {
  announcementSchema,
  type Envelope,
  type Location,
  MAX_HOPS,
  type MigrationReply,
  migrationMessageSchema,
  migrationReplySchema,
  type Privileges,
  type ProcessRecord,
} from "../protocol/processes.js";
import { Responder, refusalLog } from "../protocol/responder.js";
import type { Subjects } from "../protocol/subjects.js";
import type { Clock, TimerHandle } from "../transport/clock.js";
import { NoRespondersError, PayloadTooLargeError, TimeoutError } from "../transport/errors.js";
import type { Message, Subscription, Transport } from "../transport/transport.js";
import { LocationTable, procKey } from "./locations.js";
import { type Logger, throttledWarn } from "./logger.js";
import type { MachineRegistry } from "./machineRegistry.js";
import { Mailbox } from "./mailbox.js";
import type { ProcessSnapshotStore } from "./processStore.js";
import { type NodeTraffic, Proxies, type ProxyInfo, type ProxyStats } from "./proxy.js";
import type { Outcome, RequestHandlers } from "./requestServer.js";

export interface ProcessTimings {
  /** How long the old host waits for the new one to take a migrating process. */
  readonly migrationTimeoutMs: number;
  /** How long a gap in one sender's sequence may stay open before it is skipped (and counted). */
  readonly gapTimeoutMs: number;
  /** Delay between a change of a process (delivery, send, SETPRIV) and the save of its snapshot. */
  readonly persistDebounceMs: number;
  /** Longest `stop()` waits for the snapshots to be saved. */
  readonly stopTimeoutMs: number;
}

export const defaultProcessTimings: ProcessTimings = {
  migrationTimeoutMs: 2_000,
  gapTimeoutMs: 5_000,
  persistDebounceMs: 1_000,
  stopTimeoutMs: 2_000,
};

/** In `priv.endpoints`: any endpoint. The largest endpoint the protocol accepts, reserved (SPAWN refuses it). */
export const ANY_ENDPOINT = 65_536;
/** In `priv.rqsts`: any request type. */
export const ANY_RQST = "*";
/** What a process may do by default: everything. */
export const UNRESTRICTED: Privileges = { rqsts: [ANY_RQST], endpoints: [ANY_ENDPOINT] };

/** Bits of `proc_usr.flags`. */
export const PROC_FLAGS = {
  /** Stopped for a move; messages are held (`waitmigr`). */
  MIGRATING: 1,
  /** Restored from its persisted snapshot when the node started. */
  RESTORED: 2,
  /** Its privileges are not the default (unrestricted) ones. */
  RESTRICTED: 4,
  /** Its machine failed (an action threw); messages to it are dropped. */
  FAILED: 8,
} as const;

/** GETPROCINFO's `proc_usr`: a process as its host sees it. */
export interface ProcUsr {
  /** Slot number on its current host (install order). */
  readonly nr: number;
  readonly endpoint: number;
  readonly dcid: number;
  /** The node hosting it. */
  readonly nodeid: NodeId;
  /** PROC_FLAGS bits. */
  readonly flags: number;
  readonly name: string;
  /** The registered machine it was spawned from. */
  readonly machine: string;
  /** Sender key of the last message delivered to it, or null. */
  readonly getfrom: string | null;
  /** The last destination it sent to, or null. */
  readonly sendto: { readonly dcid: number; readonly endpoint: number } | null;
  /** Messages held while it migrates. */
  readonly waitmigr: number;
  /** Messages delivered to it since spawn (carried across migrations). */
  readonly delivered: number;
  /** Messages waiting in its reorder buffer for an earlier one. */
  readonly pending: number;
  /** Location epoch: 1 at spawn, +1 per migration. */
  readonly epoch: number;
  /** Host lifecycle: running, or migrating. */
  readonly state: "running" | "migrating";
  /** Its machine's actor status, state value and context. */
  readonly status: string;
  readonly value: unknown;
  readonly context: unknown;
  /** Errors: duplicates dropped, sequence numbers skipped after a gap timeout, sends/requests refused. */
  readonly duplicates: number;
  readonly gaps: number;
  readonly refused: number;
}

export interface ProcessRuntimeOptions {
  readonly node: NodeId;
  readonly subjects: Subjects;
  readonly transport: Transport;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly registry: MachineRegistry;
  /** The DC tables: nodes of DC `dcid` as this node knows them; undefined when the DC does not exist here. */
  readonly dcs: { nodesOf(dcid: number): readonly NodeId[] | undefined };
  /** Sends `rqst` to node `dst`'s request server and resolves with its RPLY. */
  readonly forwarder: { forward(rqst: Rqst, dst: NodeId): Promise<Rply> };
  /** Where process snapshots persist; none: processes do not survive a restart. */
  readonly snapshots?: ProcessSnapshotStore;
  readonly timings?: Partial<ProcessTimings>;
  /**
   * This run of the node (its membership incarnation). Requesters' messages are
   * numbered per run, so a restarted node's numbering cannot collide with the
   * previous one's. Default: the clock's time at construction.
   */
  readonly incarnation?: number;
}

/** One process hosted here. */
interface Hosted {
  readonly key: string;
  readonly dcid: number;
  readonly endpoint: number;
  readonly name: string;
  readonly machine: string;
  readonly logic: AnyStateMachine;
  readonly nr: number;
  readonly spawnedAt: number;
  readonly restored: boolean;
  /** The node it came from, when it arrived by migration. */
  readonly cameFrom: NodeId | undefined;
  readonly gen: number;
  epoch: number;
  priv: Privileges;
  /** Undefined while stopped for a move. */
  actor: Actor<AnyStateMachine> | undefined;
  readonly lifecycle: Actor<ProcessLifecycleMachine>;
  mailbox: Mailbox;
  /** Accepted in order, not yet handed to the actor. */
  queue: Envelope[];
  draining: boolean;
  /** While migrating: what arrived meanwhile, in arrival order. */
  stash: Envelope[];
  /** While migrating: the record shipped (what persists if the node stops meanwhile). */
  shipped: ProcessRecord | undefined;
  sendSeq: Record<string, number>;
  delivered: number;
  duplicates: number;
  gaps: number;
  refused: number;
  failed: boolean;
  getfrom: string | null;
  sendto: { dcid: number; endpoint: number } | null;
  gapTimer: TimerHandle | undefined;
}

type Failure = { readonly error: ErrorName; readonly message: string };

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

/** Requests forwarded between nodes carry this `src` prefix: they follow forwarding pointers only, never loop. */
const FORWARDED = "fwd:";

/**
 * Requesters (SEND `src`, chosen by the client) whose message numbering a node
 * keeps. Beyond it the least recently used is forgotten, so a flood of made-up
 * client ids costs bounded memory; a forgotten requester that sends again
 * numbers afresh under a new sender key.
 */
export const MAX_CLIENT_SENDERS = 4_096;

/** Counters of the whole runtime (drops are also logged, throttled). */
export interface ProcessRuntimeStats {
  /** Messages for a process nobody knows, or that bounced too often. */
  undeliverable: number;
  /** Internal messages (announcements, migration offers) that could not be read. */
  badMessages: number;
  /** Replies to a process's requests that came back after it moved or ended. */
  lostReplies: number;
  /** Migrations done from here / failed. */
  migrationsOut: number;
  migrationsFailed: number;
  migrationsIn: number;
}

export class ProcessRuntime {
  readonly name = "processes";
  readonly stats: ProcessRuntimeStats = {
    undeliverable: 0,
    badMessages: 0,
    lostReplies: 0,
    migrationsOut: 0,
    migrationsFailed: 0,
    migrationsIn: 0,
  };
  readonly #o: ProcessRuntimeOptions;
  readonly #t: ProcessTimings;
  readonly #self: NodeId;
  readonly #incarnation: number;
  readonly #warn: ReturnType<typeof throttledWarn>;
  readonly #responder: Responder;
  readonly #proxies: Proxies;
  readonly #locations = new LocationTable();
  readonly #hosted = new Map<string, Hosted>();
  /** Forwarding pointers of processes that moved away from here. */
  readonly #moved = new Map<string, { to: NodeId; epoch: number }>();
  /** Per requester (`src`), least recently used first: its sender and, per destination, the last seq used. */
  readonly #clientSenders = new Map<string, { sender: Sender; seqs: Record<string, number> }>();
  /** Requesters forgotten by MAX_CLIENT_SENDERS so far. */
  #clientsForgotten = 0;
  readonly #dirty = new Set<string>();
  #persistTimer: TimerHandle | undefined;
  #subscriptions: Subscription[] = [];
  #members = new Set<NodeId>();
  #nextNr = 1;
  #rqstSeq = 0;
  #running = false;

  constructor(options: ProcessRuntimeOptions) {
    this.#o = options;
    this.#t = { ...defaultProcessTimings, ...options.timings };
    this.#self = options.node;
    this.#incarnation = options.incarnation ?? options.clock.now();
    this.#warn = throttledWarn(options.logger, options.clock);
    // Alone until the first view change says otherwise.
    this.#members = new Set([options.node]);
    this.#responder = new Responder(options.transport, {
      onRefused: (reply, subject) => this.#warn("reply-subject", ...refusalLog(reply, subject)),
    });
    this.#proxies = new Proxies({
      node: options.node,
      subjects: options.subjects,
      transport: options.transport,
      clock: options.clock,
      logger: options.logger,
      epoch: this.#incarnation,
      deliver: (msg) => this.#route(msg),
    });
  }

  /** Subscribes, restores the processes persisted as hosted here, and announces them. */
  async start(): Promise<void> {
    if (this.#running) return;
    const { transport, subjects } = this.#o;
    this.#proxies.start([...this.#members]);
    this.#subscriptions = [
      transport.subscribe(subjects.procLocation, (msg) => this.#onAnnouncement(msg)),
      transport.subscribe(subjects.migrate(this.#self), (msg) => this.#onMigration(msg)),
    ];
    this.#running = true;
    await this.#restore();
    this.#announce(this.#locations.of(this.#self));
  }

  /** Saves every hosted process's snapshot (bounded by `stopTimeoutMs`), stops the actors, unsubscribes. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#o.clock.clearTimeout(this.#persistTimer);
    this.#persistTimer = undefined;
    for (const sub of this.#subscriptions) sub.unsubscribe();
    this.#subscriptions = [];
    const saves: Promise<void>[] = [];
    for (const h of this.#hosted.values()) {
      this.#o.clock.clearTimeout(h.gapTimer);
      // A process in the middle of a move persists as it was before it (the old epoch): if the
      // move succeeds after all, the record is removed; if not, the restart runs it on here.
      const record = h.shipped ? { ...h.shipped, epoch: h.epoch } : this.#recordOf(h);
      if (record !== undefined && this.#o.snapshots) saves.push(this.#save(record));
    }
    if (saves.length > 0) {
      let timer: TimerHandle | undefined;
      const deadline = new Promise<void>((resolve) => {
        timer = this.#o.clock.setTimeout(resolve, this.#t.stopTimeoutMs);
      });
      await Promise.race([Promise.all(saves), deadline]);
      this.#o.clock.clearTimeout(timer);
    }
    for (const h of this.#hosted.values()) {
      this.#stopActor(h);
      h.lifecycle.stop();
    }
    this.#hosted.clear();
    this.#dirty.clear();
    this.#proxies.stop();
  }

  /** Request handlers: GETPROCINFO SETPRIV GETPRIV MIGRATE SPAWN SEND PROCEND GETPROXYINFO GETPROXYSTS. */
  handlers(): RequestHandlers {
    const guard =
      <T extends RequestType>(handler: (rqst: Rqst<T>) => Outcome | Promise<Outcome>) =>
      (rqst: Rqst): Outcome | Promise<Outcome> =>
        this.#running ? handler(rqst as Rqst<T>) : fail("EAGAIN", "the process runtime is not running");
    return {
      SPAWN: guard<"SPAWN">((r) => this.#spawn(r)),
      SEND: guard<"SEND">((r) => this.#sendRqst(r)),
      GETPROCINFO: guard<"GETPROCINFO">((r) =>
        this.#atHost(r, (h) => ({ rcode: 0, data: this.#procUsr(h) })),
      ),
      GETPRIV: guard<"GETPRIV">((r) => this.#atHost(r, (h) => ({ rcode: 0, data: h.priv }))),
      SETPRIV: guard<"SETPRIV">((r) => this.#atHost(r, (h) => this.#setPriv(h, r.params.priv))),
      MIGRATE: guard<"MIGRATE">((r) => this.#atHost(r, (h) => this.#migrate(h, r.params.to))),
      PROCEND: guard<"PROCEND">((r) => this.#atHost(r, (h) => this.#procEnd(h))),
      GETPROXYINFO: guard<"GETPROXYINFO">((r) => this.#proxyInfo(r.params.nodeid)),
      GETPROXYSTS: guard<"GETPROXYSTS">((r) => this.#proxyStats(r.params.nodeid)),
    };
  }

  /** Traffic totals for GETNODEINFO. */
  traffic(): NodeTraffic {
    return this.#proxies.traffic();
  }

  /** How many proxy pairs run an actor (a pair gets one when it first carries a frame). */
  get proxyActors(): number {
    return this.#proxies.actors;
  }

  /**
   * Called on every view change: proxies of peers that left go down (their
   * processes are unreachable, EHOSTDOWN); when members joined, the processes
   * hosted here are announced again so the joiners learn where they are.
   */
  onView(members: readonly NodeId[], _change?: ViewChange): void {
    const before = this.#members;
    this.#members = new Set(members);
    const joined = members.some((m) => m !== this.#self && !before.has(m));
    // Out of the membership machine's action first: the process side creates actors (proxy pairs).
    queueMicrotask(() => {
      this.#proxies.onView(members);
      if (joined && this.#running) this.#announce(this.#locations.of(this.#self));
    });
  }

  /** The processes hosted here, as GETPROCINFO shows them (for the node's own status pages and tests). */
  processes(): ProcUsr[] {
    return [...this.#hosted.values()].map((h) => this.#procUsr(h));
  }

  /** Where this node believes process `(dcid, endpoint)` runs. */
  locate(dcid: number, endpoint: number): Location | undefined {
    return this.#locations.get(dcid, endpoint);
  }

  // ---- requests ---------------------------------------------------------------

  #spawn(rqst: Rqst<"SPAWN">): Outcome {
    const { dcid, machine, name, input } = rqst.params;
    const dc = this.#checkDc(dcid, this.#self);
    if (dc) return dc;
    const logic = this.#o.registry.get(machine);
    if (logic === undefined) {
      return fail("EINVAL", `no machine named ${machine} (known: ${this.#o.registry.list().join(", ")})`);
    }
    const endpoint = rqst.params.endpoint ?? this.#freeEndpoint(dcid);
    if (endpoint === ANY_ENDPOINT) return fail("EINVAL", `endpoint ${ANY_ENDPOINT} is reserved (ANY)`);
    const key = procKey(dcid, endpoint);
    if (this.#hosted.has(key) || this.#locations.taken(dcid, endpoint)) {
      return fail("EEXIST", `endpoint ${endpoint} of DC ${dcid} is taken`);
    }
    const epoch = (this.#locations.get(dcid, endpoint)?.epoch ?? 0) + 1;
    const h = this.#newHosted({
      dcid,
      endpoint,
      name: name ?? `${machine}-${endpoint}`,
      machine,
      logic,
      epoch,
      gen: 0,
      priv: UNRESTRICTED,
      restored: false,
      cameFrom: undefined,
      spawnedAt: this.#o.clock.now(),
    });
    this.#hosted.set(key, h);
    this.#moved.delete(key);
    try {
      this.#startActor(h, { input });
    } catch (error) {
      this.#hosted.delete(key);
      h.lifecycle.stop();
      return fail("EINVAL", `machine ${machine} did not start: ${describe(error)}`);
    }
    if (!this.#hosted.has(key)) return { rcode: Math.max(endpoint, 0), data: this.#procUsr(h) };
    const entry = this.#entryOf(h, this.#self, false);
    this.#locations.set(entry);
    this.#announce([entry]);
    this.#markDirty(h);
    return { rcode: Math.max(endpoint, 0), data: this.#procUsr(h) };
  }

  /** SEND from a requester: numbered per (this node's run, requester, destination). */
  #sendRqst(rqst: Rqst<"SEND">): Outcome {
    const { dcid, endpoint, body } = rqst.params;
    const { sender, seqs } = this.#clientSender(rqst.src);
    const sent = this.#sendFrom(sender, seqs, dcid, endpoint, body);
    if ("error" in sent) return sent;
    return { rcode: 0, data: { seq: sent.seq, nodeid: sent.node } };
  }

  /** Requesters whose numbering this node keeps (at most MAX_CLIENT_SENDERS). */
  get clientSenders(): number {
    return this.#clientSenders.size;
  }

  /** The requester's sender and numbering, now the most recently used; the least recently used beyond the cap goes. */
  #clientSender(src: Rqst["src"]): { sender: Sender; seqs: Record<string, number> } {
    const id = String(src);
    const known = this.#clientSenders.get(id);
    if (known !== undefined) {
      this.#clientSenders.delete(id);
      this.#clientSenders.set(id, known);
      return known;
    }
    // Once any requester was forgotten, a new one may be a forgotten one back: its old key
    // numbered from 1 again would be dropped as duplicates by the receivers, so it gets a fresh key.
    const run = this.#clientsForgotten === 0 ? "" : `.${this.#clientsForgotten}`;
    const key = `c:${this.#self}.${this.#incarnation}${run}:${src}`;
    const sender: Sender = { kind: "client", key, node: this.#self, src };
    const created = { sender, seqs: {} };
    this.#clientSenders.set(id, created);
    if (this.#clientSenders.size > MAX_CLIENT_SENDERS) {
      const oldest = this.#clientSenders.keys().next().value;
      if (oldest !== undefined) this.#clientSenders.delete(oldest);
      this.#clientsForgotten++;
    }
    return created;
  }

  #setPriv(h: Hosted, priv: Privileges): Outcome {
    const rqsts: string[] = [];
    for (const r of priv.rqsts) {
      const type = r.startsWith("RQST_") ? r.slice(5) : r;
      if (type !== ANY_RQST && !isRequestType(type)) return fail("EINVAL", `unknown request type ${r}`);
      if (!rqsts.includes(type)) rqsts.push(type);
    }
    const endpoints = [...new Set(priv.endpoints)].sort((a, b) => a - b);
    h.priv = { rqsts: rqsts.sort(), endpoints };
    this.#markDirty(h);
    return { rcode: 0, data: h.priv };
  }

  #procEnd(h: Hosted): Outcome {
    if (h.lifecycle.getSnapshot().matches("migrating")) {
      return fail("EBUSY", `process ${h.key} is migrating`);
    }
    const info = this.#procUsr(h);
    this.#end(h, "PROCEND");
    return { rcode: 0, data: info };
  }

  #proxyInfo(peer: NodeId): Outcome {
    if (peer === this.#self)
      return fail("EINVAL", `node ${peer} is this node: a node has no proxy to itself`);
    const info: [ProxyInfo, ProxyInfo] | undefined = this.#proxies.info(peer);
    if (info === undefined) return fail("ENOENT", `no proxy pair toward node ${peer}`);
    return { rcode: 0, data: info };
  }

  #proxyStats(peer: NodeId | undefined): Outcome {
    if (peer === undefined) return { rcode: 0, data: this.#proxies.allStats() };
    const stats: ProxyStats | undefined = this.#proxies.stats(peer);
    if (stats === undefined) return fail("ENOENT", `no proxy pair toward node ${peer}`);
    return { rcode: 0, data: [stats] };
  }

  /**
   * Runs `local` on the host of the process the request names, or forwards the
   * request there. A request that was already forwarded follows forwarding
   * pointers only, so stale location tables cannot bounce it around.
   */
  #atHost(
    rqst: Rqst<"GETPROCINFO" | "GETPRIV" | "SETPRIV" | "MIGRATE" | "PROCEND">,
    local: (h: Hosted) => Outcome | Promise<Outcome>,
  ): Outcome | Promise<Outcome> {
    const { dcid, endpoint } = rqst.params;
    const key = procKey(dcid, endpoint);
    const h = this.#hosted.get(key);
    if (h !== undefined) return local(h);
    const forwarded = typeof rqst.src === "string" && rqst.src.startsWith(FORWARDED);
    const target = forwarded ? this.#moved.get(key)?.to : this.#nextHop(key);
    if (target === undefined || target === this.#self) {
      return fail("ENOENT", `no process at endpoint ${endpoint} of DC ${dcid}`);
    }
    if (!this.#inView(target)) return fail("EHOSTDOWN", `node ${target}, host of ${key}, is not in the view`);
    return this.#forwardTo(rqst, target);
  }

  async #forwardTo(rqst: Rqst, target: NodeId): Promise<Outcome> {
    const fwd = { ...rqst, src: `${FORWARDED}${this.#self}`, dst: target, seq: ++this.#rqstSeq } as Rqst;
    try {
      const rply = await this.#o.forwarder.forward(fwd, target);
      return { rcode: rply.rcode, data: rply.data };
    } catch (error) {
      return transportFailure(error, `node ${target}`);
    }
  }

  // ---- messages -----------------------------------------------------------------

  /**
   * Numbers and sends one message from `sender`; the seq is used only when the
   * message leaves, so a refused send leaves no gap behind.
   */
  #sendFrom(
    sender: Sender,
    seqs: Record<string, number>,
    dcid: number,
    endpoint: number,
    body: unknown,
  ): Failure | { seq: number; node: NodeId } {
    const dest = procKey(dcid, endpoint);
    const host = this.#hosted.has(dest) ? this.#self : this.#nextHop(dest);
    if (host === undefined)
      return { error: "ENOENT", message: `no process at endpoint ${endpoint} of DC ${dcid}` };
    if (!this.#inView(host)) {
      return { error: "EHOSTDOWN", message: `node ${host}, host of ${dest}, is not in the view` };
    }
    let carried = body;
    if (host === this.#self) {
      // Local deliveries go through the codec too: the receiver gets a copy, as from the wire.
      try {
        const bytes = encode(body);
        if (bytes.byteLength > this.#o.transport.maxPayload) {
          return { error: "EMSGSIZE", message: `body of ${bytes.byteLength} bytes is too large` };
        }
        const decoded = decode(bytes, "cbor", Number.MAX_SAFE_INTEGER);
        carried = decoded.ok ? decoded.value : body;
      } catch (error) {
        return { error: "EINVAL", message: `body cannot be encoded: ${describe(error)}` };
      }
    }
    const previous = seqs[dest] ?? 0;
    const seq = previous + 1;
    seqs[dest] = seq;
    const error = this.#route({ sender, seq, dcid, endpoint, body: carried, hops: 0 });
    if (error !== undefined) {
      if (seqs[dest] === seq) seqs[dest] = previous;
      return { error, message: `could not send to ${dest} on node ${host}` };
    }
    return { seq, node: host };
  }

  /** Delivers a message to a process hosted here, or passes it on toward its host. */
  #route(msg: Envelope): ErrorName | undefined {
    const key = procKey(msg.dcid, msg.endpoint);
    const h = this.#hosted.get(key);
    if (h !== undefined) {
      this.#take(h, msg);
      return undefined;
    }
    const next = this.#nextHop(key);
    if (next === undefined || next === this.#self || msg.hops >= MAX_HOPS) {
      this.stats.undeliverable++;
      this.#warn(
        `undeliverable:${key}`,
        { dcid: msg.dcid, endpoint: msg.endpoint, sender: msg.sender.key, hops: msg.hops },
        "dropped a message for a process that is not here and has no known host",
      );
      return "ENOENT";
    }
    return this.#proxies.send(next, { ...msg, hops: msg.hops + 1 });
  }

  /** Where to send a message for `key` that is not hosted here: the newer of pointer and table. */
  #nextHop(key: string): NodeId | undefined {
    const [dcid, endpoint] = key.split(":").map(Number) as [number, number];
    const entry = this.#locations.get(dcid, endpoint);
    const pointer = this.#moved.get(key);
    if (entry !== undefined && (pointer === undefined || entry.epoch > pointer.epoch)) {
      return entry.ended ? undefined : entry.node;
    }
    return pointer?.to;
  }

  #take(h: Hosted, msg: Envelope): void {
    if (h.actor === undefined) {
      // Stopped for a move: held, and shipped with it or delivered here if the move fails.
      h.stash.push(msg);
      return;
    }
    const accepted = h.mailbox.accept(msg, this.#o.clock.now());
    if (accepted.duplicate) {
      h.duplicates++;
      return;
    }
    h.queue.push(...accepted.ready);
    this.#drain(h);
    this.#armGapTimer(h);
  }

  /** Hands the queued messages to the actor, one at a time, in order; re-entry only queues. */
  #drain(h: Hosted): void {
    if (h.draining) return;
    h.draining = true;
    let delivered = 0;
    try {
      while (h.queue.length > 0 && h.actor !== undefined && this.#hosted.get(h.key) === h) {
        const msg = h.queue.shift()!;
        h.delivered++;
        delivered++;
        h.getfrom = msg.sender.key;
        if (h.failed) continue;
        const event: DvsEvent = { type: "dvs.message", from: msg.sender, seq: msg.seq, body: msg.body };
        h.actor.send(event);
      }
    } finally {
      h.draining = false;
    }
    if (delivered > 0) this.#markDirty(h);
  }

  #armGapTimer(h: Hosted): void {
    if (h.gapTimer !== undefined || h.actor === undefined) return;
    const due = h.mailbox.nextExpiry(this.#t.gapTimeoutMs);
    if (due === undefined) return;
    const { clock } = this.#o;
    h.gapTimer = clock.setTimeout(
      () => {
        h.gapTimer = undefined;
        try {
          this.#expireGaps(h);
        } catch (error) {
          this.#warn("gap-timer", { err: error }, "the gap timer of a process failed");
        }
      },
      Math.max(0, due - clock.now()),
    );
  }

  #expireGaps(h: Hosted): void {
    if (this.#hosted.get(h.key) !== h || h.actor === undefined) return;
    const { ready, skipped } = h.mailbox.expire(this.#o.clock.now(), this.#t.gapTimeoutMs);
    if (skipped > 0) {
      h.gaps += skipped;
      this.#warn(
        `gap:${h.key}`,
        { dcid: h.dcid, endpoint: h.endpoint, skipped },
        "gave up waiting for messages to a process; delivering the later ones",
      );
    }
    h.queue.push(...ready);
    this.#drain(h);
    this.#armGapTimer(h);
  }

  // ---- what processes emit --------------------------------------------------------

  #onProcessSend(h: Hosted, emitted: unknown): void {
    const parsed = sendEmittedSchema.safeParse(emitted);
    if (!parsed.success) {
      this.#tell(h, { type: "dvs.error", op: "dvs.send", error: "EINVAL", message: "malformed dvs.send" });
      return;
    }
    const { endpoint, body } = parsed.data;
    const dcid = parsed.data.dcid ?? h.dcid;
    if (!allowsEndpoint(h.priv, endpoint)) {
      this.#refuse(h, "dvs.send", undefined, `may not send to endpoint ${endpoint}`);
      return;
    }
    const sender: Sender = { kind: "process", key: senderKey(h), dcid: h.dcid, endpoint: h.endpoint };
    const sent = this.#sendFrom(sender, h.sendSeq, dcid, endpoint, body);
    if ("error" in sent) {
      this.#tell(h, { type: "dvs.error", op: "dvs.send", error: sent.error, message: sent.message });
      return;
    }
    h.sendto = { dcid, endpoint };
    this.#markDirty(h);
  }

  #onProcessRqst(h: Hosted, emitted: unknown): void {
    const parsed = rqstEmittedSchema.safeParse(emitted);
    if (!parsed.success) {
      const id = (emitted as { id?: unknown } | null)?.id;
      this.#tell(h, {
        type: "dvs.error",
        op: "dvs.rqst",
        ...(typeof id === "string" || typeof id === "number" ? { id } : {}),
        error: "EINVAL",
        message: "malformed dvs.rqst",
      });
      return;
    }
    const { id, dst = this.#self, params = {} } = parsed.data;
    const type = parsed.data.request.startsWith("RQST_") ? parsed.data.request.slice(5) : parsed.data.request;
    if (!isRequestType(type)) {
      this.#tell(h, {
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
    if (!this.#inView(dst)) {
      this.#tell(h, {
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
      seq: ++this.#rqstSeq,
      params: params as Rqst["params"],
    } as Omit<Rqst, "v">);
    const actor = h.actor;
    const answer = (event: DvsEvent): void => {
      const now = this.#hosted.get(h.key);
      if (now === undefined || now.actor !== actor || actor === undefined) {
        this.stats.lostReplies++;
        return;
      }
      this.#tell(now, event);
    };
    this.#o.forwarder.forward(rqst, dst).then(
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
    this.#warn(
      `eperm:${h.key}`,
      { dcid: h.dcid, endpoint: h.endpoint, op, refused: h.refused },
      `refused: ${message}`,
    );
    this.#tell(h, { type: "dvs.error", op, ...(id !== undefined ? { id } : {}), error: "EPERM", message });
  }

  /** Sends a runtime event to a process (queued by XState when it is busy). */
  #tell(h: Hosted, event: DvsEvent): void {
    if (h.actor === undefined || h.failed) return;
    h.actor.send(event);
  }

  // ---- migration --------------------------------------------------------------------

  async #migrate(h: Hosted, to: NodeId): Promise<Outcome> {
    const dc = this.#checkDc(h.dcid, to);
    if (dc) return dc;
    if (to === this.#self) return { rcode: 0, data: this.#procUsr(h) };
    if (!this.#inView(to)) return fail("EHOSTDOWN", `node ${to} is not in the view`);
    if (h.actor === undefined || !h.lifecycle.getSnapshot().matches("running")) {
      return fail("EBUSY", `process ${h.key} is migrating`);
    }
    let snapshot: unknown;
    try {
      snapshot = h.actor.getPersistedSnapshot();
    } catch (error) {
      return fail("EINVAL", `process ${h.key} cannot be snapshotted: ${describe(error)}`);
    }
    // From here on, arrivals are held in `stash` until the move succeeds or fails.
    h.lifecycle.send({ type: "process.migrate", to });
    this.#stopActor(h);
    this.#o.clock.clearTimeout(h.gapTimer);
    h.gapTimer = undefined;
    const epoch = h.epoch + 1;
    const record = this.#recordOf(h, snapshot, epoch)!;
    h.shipped = record;
    const shippedStash = h.stash.length;
    let reply: MigrationReply;
    try {
      const offer = {
        v: PROTOCOL_VERSION,
        kind: "offer",
        from: this.#self,
        process: record,
        stash: h.stash.slice(),
      };
      const msg = await this.#o.transport.request(this.#o.subjects.migrate(to), encode(offer), {
        timeoutMs: this.#t.migrationTimeoutMs,
      });
      const decoded = decode(msg.data, "cbor", Number.MAX_SAFE_INTEGER);
      const parsed = decoded.ok ? migrationReplySchema.safeParse(decoded.value) : undefined;
      reply = parsed?.success
        ? parsed.data
        : { ok: false, error: "EBADMSG", message: `node ${to} answered the migration unreadably` };
    } catch (error) {
      const failure = transportFailure(error, `node ${to}`);
      if (error instanceof TimeoutError) this.#abortMigration(h, to, epoch);
      reply = { ok: false, ...failure };
    }
    if (!this.#running) {
      if (reply.ok) this.#removeSaved(h);
      return fail("EAGAIN", "the process runtime stopped during the migration");
    }
    if (!reply.ok) {
      this.stats.migrationsFailed++;
      this.#resume(h, snapshot, reply.message);
      return fail(reply.error, reply.message);
    }
    this.stats.migrationsOut++;
    this.#movedAway(h, to, epoch, shippedStash);
    return { rcode: 0, data: reply.proc };
  }

  /** The move failed: the process runs on here from the snapshot, then gets what was held. */
  #resume(h: Hosted, snapshot: unknown, reason: string): void {
    h.lifecycle.send({ type: "migration.failed", reason });
    h.shipped = undefined;
    try {
      this.#startActor(h, { snapshot });
      this.#tell(h, { type: "dvs.restored", cause: "resumed" });
    } catch (error) {
      h.failed = true;
      this.#o.logger.error({ err: error, dcid: h.dcid, endpoint: h.endpoint }, "a process could not resume");
    }
    this.#drain(h);
    for (const msg of h.stash.splice(0)) this.#take(h, msg);
    this.#armGapTimer(h);
  }

  /** The move succeeded: keep a forwarding pointer, announce, pass on what arrived during the move. */
  #movedAway(h: Hosted, to: NodeId, epoch: number, shippedStash: number): void {
    h.lifecycle.send({ type: "migration.done", to, epoch });
    h.lifecycle.stop();
    this.#hosted.delete(h.key);
    this.#dirty.delete(h.key);
    this.#moved.set(h.key, { to, epoch });
    h.epoch = epoch;
    const entry = this.#entryOf(h, to, false);
    this.#locations.set(entry);
    this.#announce([entry]);
    for (const msg of h.stash.slice(shippedStash)) this.#proxies.send(to, { ...msg, hops: msg.hops + 1 });
    h.stash = [];
    this.#removeSaved(h);
  }

  #abortMigration(h: Hosted, to: NodeId, epoch: number): void {
    try {
      const abort = {
        v: PROTOCOL_VERSION,
        kind: "abort",
        from: this.#self,
        dcid: h.dcid,
        endpoint: h.endpoint,
        epoch,
      };
      this.#o.transport.publish(this.#o.subjects.migrate(to), encode(abort));
    } catch (error) {
      this.#warn("abort", { err: error, to }, "could not publish a migration abort");
    }
  }

  /** On the target: take an offered process, or drop one whose offer timed out at the old host. */
  #onMigration(msg: Message): void {
    const answer = (reply: MigrationReply): void => {
      try {
        this.#responder.answer(msg, encode(reply));
      } catch (error) {
        this.#warn("migration-reply", { err: error }, "could not answer a migration");
      }
    };
    try {
      const decoded = decode(msg.data, "cbor", Number.MAX_SAFE_INTEGER);
      const parsed = decoded.ok ? migrationMessageSchema.safeParse(decoded.value) : undefined;
      if (parsed === undefined || !parsed.success) {
        this.stats.badMessages++;
        this.#warn(
          "bad-migration",
          { bytes: msg.data.byteLength },
          "dropped an unreadable migration message",
        );
        answer({ ok: false, error: "EBADMSG", message: "unreadable migration offer" });
        return;
      }
      const m = parsed.data;
      if (m.kind === "abort") {
        const h = this.#hosted.get(procKey(m.dcid, m.endpoint));
        if (h !== undefined && h.epoch === m.epoch && h.cameFrom === m.from) this.#dropCopy(h, m.from);
        return;
      }
      answer(this.#arrive(m.process, m.stash, m.from));
    } catch (error) {
      this.#warn("migration-handler", { err: error }, "a migration handler failed");
      answer({ ok: false, error: "EINVAL", message: "the migration failed on the target" });
    }
  }

  #arrive(r: ProcessRecord, stash: Envelope[], from: NodeId): MigrationReply {
    const key = procKey(r.dcid, r.endpoint);
    if (!this.#running) return { ok: false, error: "EAGAIN", message: "the process runtime is not running" };
    if (this.#hosted.has(key)) return { ok: false, error: "EEXIST", message: `${key} already runs here` };
    const logic = this.#o.registry.get(r.machine);
    if (logic === undefined) {
      return { ok: false, error: "EINVAL", message: `node ${this.#self} has no machine named ${r.machine}` };
    }
    const dc = this.#checkDc(r.dcid, this.#self);
    if (dc) return { ok: false, ...dc };
    const h = this.#newHosted({ ...r, logic, restored: false, cameFrom: from });
    h.mailbox = new Mailbox(r.mailbox, this.#o.clock.now());
    h.sendSeq = { ...r.sendSeq };
    h.delivered = r.delivered;
    h.queue = [...r.ready];
    this.#hosted.set(key, h);
    this.#moved.delete(key);
    try {
      this.#startActor(h, { snapshot: r.snapshot });
    } catch (error) {
      this.#hosted.delete(key);
      h.lifecycle.stop();
      return { ok: false, error: "EINVAL", message: `the snapshot did not start: ${describe(error)}` };
    }
    this.stats.migrationsIn++;
    this.#locations.set(this.#entryOf(h, this.#self, false));
    this.#tell(h, { type: "dvs.restored", cause: "migrated" });
    this.#drain(h);
    for (const msg of stash) this.#take(h, msg);
    this.#armGapTimer(h);
    this.#markDirty(h);
    return { ok: true, proc: this.#procUsr(h) };
  }

  /** Drops a copy of a process this node should not run (an aborted move, or a newer host elsewhere). */
  #dropCopy(h: Hosted, backTo: NodeId | undefined): void {
    this.#stopActor(h);
    h.lifecycle.stop();
    this.#o.clock.clearTimeout(h.gapTimer);
    this.#hosted.delete(h.key);
    this.#dirty.delete(h.key);
    if (backTo !== undefined) {
      this.#moved.set(h.key, { to: backTo, epoch: h.epoch - 1 });
      this.#locations.set({ ...this.#entryOf(h, backTo, false), epoch: h.epoch - 1 });
    }
    this.#removeSaved(h);
  }

  // ---- lifecycle of hosted processes ----------------------------------------------

  #newHosted(r: {
    dcid: number;
    endpoint: number;
    name: string;
    machine: string;
    logic: AnyStateMachine;
    epoch: number;
    gen: number;
    priv: Privileges;
    restored: boolean;
    cameFrom: NodeId | undefined;
    spawnedAt: number;
  }): Hosted {
    const lifecycle = createActor(processLifecycleMachine, {
      input: { dcid: r.dcid, endpoint: r.endpoint, machine: r.machine, epoch: r.epoch },
      clock: this.#o.clock,
    }).start();
    return {
      key: procKey(r.dcid, r.endpoint),
      dcid: r.dcid,
      endpoint: r.endpoint,
      name: r.name,
      machine: r.machine,
      logic: r.logic,
      nr: this.#nextNr++,
      spawnedAt: r.spawnedAt,
      restored: r.restored,
      cameFrom: r.cameFrom,
      gen: r.gen,
      epoch: r.epoch,
      priv: { rqsts: [...r.priv.rqsts], endpoints: [...r.priv.endpoints] },
      actor: undefined,
      lifecycle,
      mailbox: new Mailbox(),
      queue: [],
      draining: false,
      stash: [],
      shipped: undefined,
      sendSeq: {},
      delivered: 0,
      duplicates: 0,
      gaps: 0,
      refused: 0,
      failed: false,
      getfrom: null,
      sendto: null,
      gapTimer: undefined,
    };
  }

  /** Creates and starts the process's actor, fresh (`input`) or from a persisted snapshot. */
  #startActor(h: Hosted, from: { input: unknown } | { snapshot: unknown }): void {
    const { clock } = this.#o;
    const actor = createActor(
      h.logic,
      "snapshot" in from
        ? { clock, snapshot: from.snapshot as Snapshot<unknown> }
        : { clock, input: from.input },
    );
    const mine = (): boolean => h.actor === actor && this.#hosted.get(h.key) === h;
    actor.on("dvs.send", (emitted: unknown) => {
      if (mine()) this.#onProcessSend(h, emitted);
    });
    actor.on("dvs.rqst", (emitted: unknown) => {
      if (mine()) this.#onProcessRqst(h, emitted);
    });
    actor.subscribe({
      next: (snapshot) => {
        if (snapshot.status === "done" && mine()) this.#end(h, "reached a final state");
      },
      // Subscribing to errors keeps XState from rethrowing them outside the clock.
      error: (error) => {
        if (h.actor !== actor) return;
        h.failed = true;
        this.#o.logger.error({ err: error, dcid: h.dcid, endpoint: h.endpoint }, "a process failed");
      },
    });
    h.actor = actor;
    h.failed = false;
    actor.start();
  }

  #stopActor(h: Hosted): void {
    const actor = h.actor;
    h.actor = undefined;
    if (actor === undefined) return;
    try {
      actor.stop();
    } catch (error) {
      this.#warn("stop-actor", { err: error }, "a process actor failed to stop");
    }
  }

  /** Ends a process hosted here: tombstone announced, snapshot removed. */
  #end(h: Hosted, reason: string): void {
    if (this.#hosted.get(h.key) !== h) return;
    h.lifecycle.send({ type: "process.end", reason });
    h.lifecycle.stop();
    this.#o.clock.clearTimeout(h.gapTimer);
    h.gapTimer = undefined;
    this.#hosted.delete(h.key);
    this.#dirty.delete(h.key);
    const actor = h.actor;
    h.actor = undefined;
    if (actor !== undefined && actor.getSnapshot().status === "active") {
      try {
        actor.stop();
      } catch (error) {
        this.#warn("stop-actor", { err: error }, "a process actor failed to stop");
      }
    }
    const tombstone = { ...this.#entryOf(h, this.#self, true), epoch: h.epoch + 1 };
    this.#locations.set(tombstone);
    this.#announce([tombstone]);
    this.#removeSaved(h);
  }

  // ---- locations ----------------------------------------------------------------

  #announce(entries: Location[]): void {
    const { transport, subjects } = this.#o;
    for (let i = 0; i < entries.length; i += 1_000) {
      try {
        const announcement = { v: PROTOCOL_VERSION, from: this.#self, entries: entries.slice(i, i + 1_000) };
        transport.publish(subjects.procLocation, encode(announcement));
      } catch (error) {
        this.#warn("announce", { err: error }, "could not announce process locations");
      }
    }
  }

  #onAnnouncement(msg: Message): void {
    try {
      const decoded = decode(msg.data, "cbor", this.#o.transport.maxPayload);
      const parsed = decoded.ok ? announcementSchema.safeParse(decoded.value) : undefined;
      if (parsed === undefined || !parsed.success) {
        this.stats.badMessages++;
        this.#warn(
          "bad-announcement",
          { bytes: msg.data.byteLength },
          "dropped an unreadable location announcement",
        );
        return;
      }
      if (parsed.data.from === this.#self) return;
      for (const entry of parsed.data.entries) {
        if (entry.node === this.#self && !entry.ended) continue;
        const h = this.#hosted.get(procKey(entry.dcid, entry.endpoint));
        const newer = this.#locations.apply(entry);
        if (h !== undefined && newer && h.actor !== undefined) {
          // Another node runs a newer (or winning) copy: this one is stale.
          this.#o.logger.warn(
            {
              dcid: h.dcid,
              endpoint: h.endpoint,
              epoch: h.epoch,
              other: entry.node,
              otherEpoch: entry.epoch,
            },
            "another node hosts a newer copy of a process; dropping the copy here",
          );
          this.#dropCopy(h, undefined);
        }
      }
    } catch (error) {
      this.#warn("announcement-handler", { err: error }, "an announcement handler failed");
    }
  }

  #entryOf(h: Hosted, node: NodeId, ended: boolean): Location {
    return {
      dcid: h.dcid,
      endpoint: h.endpoint,
      node,
      epoch: h.epoch,
      ended,
      machine: h.machine,
      name: h.name,
    };
  }

  #freeEndpoint(dcid: number): number {
    let endpoint = 0;
    while (this.#hosted.has(procKey(dcid, endpoint)) || this.#locations.taken(dcid, endpoint)) endpoint++;
    return endpoint;
  }

  // ---- persistence ----------------------------------------------------------------

  /** The record of a hosted process: its snapshot and everything that moves or persists with it. */
  #recordOf(h: Hosted, snapshot?: unknown, epoch = h.epoch): ProcessRecord | undefined {
    let taken = snapshot;
    if (taken === undefined) {
      if (h.actor === undefined) return undefined;
      try {
        taken = h.actor.getPersistedSnapshot();
      } catch (error) {
        this.#warn(`snapshot:${h.key}`, { err: error }, "could not snapshot a process");
        return undefined;
      }
    }
    return {
      v: PROTOCOL_VERSION,
      dcid: h.dcid,
      endpoint: h.endpoint,
      name: h.name,
      machine: h.machine,
      epoch,
      gen: h.gen,
      priv: h.priv,
      snapshot: taken,
      mailbox: h.mailbox.state(),
      ready: [...h.queue],
      sendSeq: { ...h.sendSeq },
      delivered: h.delivered,
      spawnedAt: h.spawnedAt,
    };
  }

  #markDirty(h: Hosted): void {
    if (this.#o.snapshots === undefined || !this.#running) return;
    this.#dirty.add(h.key);
    if (this.#persistTimer !== undefined) return;
    this.#persistTimer = this.#o.clock.setTimeout(() => {
      this.#persistTimer = undefined;
      void this.#flush();
    }, this.#t.persistDebounceMs);
  }

  async #flush(): Promise<void> {
    const keys = [...this.#dirty];
    this.#dirty.clear();
    for (const key of keys) {
      const h = this.#hosted.get(key);
      if (h === undefined || h.actor === undefined) continue;
      const record = this.#recordOf(h);
      if (record !== undefined) await this.#save(record);
    }
  }

  async #save(record: ProcessRecord): Promise<void> {
    try {
      await this.#o.snapshots?.save(record);
    } catch (error) {
      this.#warn("save", { err: error }, "could not save a process snapshot");
    }
  }

  #removeSaved(h: Hosted): void {
    this.#o.snapshots?.remove(h.dcid, h.endpoint).catch((error: unknown) => {
      this.#warn("remove", { err: error }, "could not remove a process snapshot");
    });
  }

  async #restore(): Promise<void> {
    const store = this.#o.snapshots;
    if (store === undefined) return;
    let loaded: Awaited<ReturnType<ProcessSnapshotStore["load"]>>;
    try {
      loaded = await store.load();
    } catch (error) {
      this.#o.logger.error({ err: error }, "could not load the persisted processes");
      return;
    }
    for (const skipped of loaded.skipped) {
      this.#o.logger.warn(skipped, "skipped an unreadable persisted process");
    }
    for (const r of loaded.processes) {
      const key = procKey(r.dcid, r.endpoint);
      const logic = this.#o.registry.get(r.machine);
      if (logic === undefined || this.#hosted.has(key)) {
        this.#o.logger.warn(
          { dcid: r.dcid, endpoint: r.endpoint, machine: r.machine },
          "cannot restore a process",
        );
        continue;
      }
      // A new generation: what it sent before the restart may be lost, so it numbers afresh as a new sender.
      const h = this.#newHosted({ ...r, gen: r.gen + 1, logic, restored: true, cameFrom: undefined });
      h.mailbox = new Mailbox(r.mailbox, this.#o.clock.now());
      h.delivered = r.delivered;
      h.queue = [...r.ready];
      this.#hosted.set(key, h);
      try {
        this.#startActor(h, { snapshot: r.snapshot });
      } catch (error) {
        this.#hosted.delete(key);
        h.lifecycle.stop();
        this.#o.logger.error({ err: error, dcid: r.dcid, endpoint: r.endpoint }, "a process did not restore");
        continue;
      }
      this.#locations.set(this.#entryOf(h, this.#self, false));
      this.#tell(h, { type: "dvs.restored", cause: "restarted" });
      this.#drain(h);
      this.#armGapTimer(h);
      this.#markDirty(h);
    }
  }

  // ---- small things ---------------------------------------------------------------

  #procUsr(h: Hosted): ProcUsr {
    const live = h.actor?.getSnapshot() as
      | { status?: string; value?: unknown; context?: unknown }
      | undefined;
    const snap =
      live ?? (h.shipped?.snapshot as { status?: string; value?: unknown; context?: unknown } | undefined);
    const migrating = h.lifecycle.getSnapshot().matches("migrating");
    const restricted = !(h.priv.rqsts.includes(ANY_RQST) && h.priv.endpoints.includes(ANY_ENDPOINT));
    const flags =
      (migrating ? PROC_FLAGS.MIGRATING : 0) |
      (h.restored ? PROC_FLAGS.RESTORED : 0) |
      (restricted ? PROC_FLAGS.RESTRICTED : 0) |
      (h.failed ? PROC_FLAGS.FAILED : 0);
    return {
      nr: h.nr,
      endpoint: h.endpoint,
      dcid: h.dcid,
      nodeid: this.#self,
      flags,
      name: h.name,
      machine: h.machine,
      getfrom: h.getfrom,
      sendto: h.sendto,
      waitmigr: h.stash.length,
      delivered: h.delivered,
      pending: h.mailbox.pendingCount,
      epoch: h.epoch,
      state: migrating ? "migrating" : "running",
      status: h.failed ? "error" : (snap?.status ?? "stopped"),
      value: snap?.value ?? null,
      context: snap?.context ?? null,
      duplicates: h.duplicates,
      gaps: h.gaps,
      refused: h.refused,
    };
  }

  #checkDc(dcid: number, node: NodeId): Failure | undefined {
    const nodes = this.#o.dcs.nodesOf(dcid);
    if (nodes === undefined)
      return { error: "ENOENT", message: `DC ${dcid} does not exist on node ${this.#self}` };
    if (!nodes.includes(node))
      return { error: "EINVAL", message: `node ${node} is not a node of DC ${dcid}` };
    return undefined;
  }

  #inView(node: NodeId): boolean {
    return node === this.#self || this.#members.has(node);
  }
}

const senderKey = (h: Hosted): string => `p:${h.dcid}:${h.endpoint}.${h.gen}`;

function allowsEndpoint(priv: Privileges, endpoint: number): boolean {
  return priv.endpoints.includes(ANY_ENDPOINT) || priv.endpoints.includes(endpoint);
}

function allowsRqst(priv: Privileges, type: RequestType): boolean {
  return priv.rqsts.includes(ANY_RQST) || priv.rqsts.includes(type);
}

function fail(error: ErrorName, message: string): Failure {
  return { error, message };
}

function describe(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).slice(0, 200);
}

/** A transport failure as the error a reply carries. */
function transportFailure(error: unknown, who: string): Failure {
  if (error instanceof TimeoutError) return { error: "ETIMEDOUT", message: `${who} did not answer in time` };
  if (error instanceof NoRespondersError) return { error: "EHOSTDOWN", message: `${who} is not listening` };
  if (error instanceof PayloadTooLargeError) return { error: "EMSGSIZE", message: describe(error) };
  return { error: "EHOSTDOWN", message: `${who} could not be reached: ${describe(error)}` };
}
