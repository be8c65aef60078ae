// The coordinator role of the file store (SPEC 8, seed 002), while this node
// holds a valid term: takes the clients' COMMIT, UPDATE and LS, runs the
// commits of a file one at a time, delegates to a non-busy active server,
// records each new version in the catalog with a compare-and-set under its
// epoch, tells every server with COMMITTED, and repairs versions that lost
// holders. Its lifecycle and bookkeeping are machines/fileCoordinator.ts.

import { type Actor, createActor } from "xstate";
import {
  entryOf,
  type FileCoordinatorMachine,
  fileCoordinatorMachine,
} from "../../machines/fileCoordinator.js";
import {
  activeOrder,
  earlierCommits,
  holdersOf,
  mayRecord,
  nextVersion,
  recordedCommit,
  type ServerView,
  successOf,
  transferTimeoutMs,
} from "../../machines/filePlacement.js";
import { decodePlain, type Encoding, encodingOf } from "../../protocol/codec.js";
import {
  type CatalogRecord,
  type CommitRequest,
  commitRequestSchema,
  type FileAnswer,
  type FileIdentity,
  type FileListing,
  lsRequestSchema,
  type PeerFileAnswer,
  type PeerFileMessage,
  type UpdateRequest,
  updateRequestSchema,
} from "../../protocol/files.js";
import { type NodeId, PROTOCOL_VERSION } from "../../protocol/messages.js";
import { CasConflictError } from "../../transport/errors.js";
import type { Message, Subscription } from "../../transport/transport.js";
import { type EndpointSpec, publicEndpoints, serveEndpoint } from "../endpoints.js";
import { fileOutcome } from "../metrics.js";
import { BusyFiles } from "./busyFiles.js";
import type { Catalog } from "./catalog.js";
import { CatalogWrites } from "./catalogWrites.js";
import { minorityRefusal } from "./minorityRefusal.js";
import { type FilePeers, fileError } from "./peers.js";
import { RepairSweep } from "./repair.js";

type ClientRequest = "COMMIT" | "UPDATE" | "LS";
const OPERATION = { COMMIT: "commit", UPDATE: "update", LS: "ls" } as const;

export class Coordinator {
  readonly actor: Actor<FileCoordinatorMachine>;
  #subscriptions: Subscription[] = [];
  /** Per file, the end of the last commit admitted: the next one runs after it. */
  readonly #tails = new Map<string, Promise<void>>();
  /** Commits offered to the machine and not yet admitted or refused, by ref. */
  readonly #offers = new Map<string, { admit: () => void; refuse: (depth: number) => void }>();
  /** The files whose copies are not judged yet (commits under way or ended lately). */
  readonly busy: BusyFiles;
  /** When this coordinator last wrote each file's record this term (its own clock). */
  readonly #recordedAt = new Map<string, number>();
  #nextRef = 1;
  readonly #repair: RepairSweep;

  constructor(
    readonly peers: FilePeers,
    readonly catalog: Catalog,
    /** The catalog's read-then-writes, one per file at a time (a commit's and a repair's never overlap). */
    readonly writes: CatalogWrites = new CatalogWrites(),
  ) {
    const { settings, options } = peers;
    this.busy = new BusyFiles({ ...settings, statusMs: options.election.timings.statusMs });
    this.#repair = new RepairSweep(peers, catalog, this);
    const machine = fileCoordinatorMachine.provide({
      actions: {
        takeClients: () => this.#takeClients(),
        leaveClients: () => this.#leaveClients(),
        sweep: () => void this.#repair.sweep(),
        admitCommit: (_, { ref }) => this.#offers.get(ref)?.admit(),
        refuseCommit: (_, { ref, depth }) => this.#offers.get(ref)?.refuse(depth),
      },
    });
    this.actor = createActor(machine, {
      clock: options.clock,
      input: {
        self: options.self,
        maxQueuedPerFile: settings.maxQueuedPerFile,
        repairEveryMs: settings.repairEveryMs,
        statusMs: options.election.timings.statusMs,
      },
    }).start();
  }

  /** This node won a term or lost it: take (or stop taking) the clients' COMMIT, UPDATE and LS. */
  changed(coordinator: NodeId | null): void {
    this.actor.send({ type: "coordinator.changed", coordinator, at: this.peers.now() });
  }

  /** A server left the view: a coordinator looks for versions it held at once. */
  serverLeft(): void {
    this.actor.send({ type: "server.left" });
  }

  stop(): void {
    this.actor.send({ type: "files.stop" });
  }

  #takeClients(): void {
    // A new term: what the last one wrote is judged from the term's start.
    this.#recordedAt.clear();
    const { transport, subjects, self, endpoints } = this.peers.options;
    const specs = publicEndpoints(subjects, self);
    const sub = (spec: EndpointSpec, kind: ClientRequest) =>
      this.#subscriptions.push(
        serveEndpoint(transport, endpoints, spec, (msg) => void this.#onClient(msg, kind)),
      );
    sub(specs.fileCommit, "COMMIT");
    sub(specs.fileUpdate, "UPDATE");
    sub(specs.fileLs, "LS");
  }

  #leaveClients(): void {
    for (const s of this.#subscriptions) s.unsubscribe();
    this.#subscriptions = [];
  }

  async #onClient(msg: Message, kind: ClientRequest): Promise<void> {
    const encoding = encodingOf(msg);
    const reply = (answer: FileAnswer) => {
      this.peers.options.metrics?.fileOperation(OPERATION[kind], fileOutcome(answer));
      this.peers.reply(msg, answer, encoding);
    };
    // Malformed (undecodable, not plain data, not of the shape) is EBADMSG; EINVAL is for a value the store refuses.
    const decoded = decodePlain(msg.data, encoding);
    if (!decoded.ok) return reply(fileError("EBADMSG", decoded.message));
    const schema =
      kind === "COMMIT" ? commitRequestSchema : kind === "UPDATE" ? updateRequestSchema : lsRequestSchema;
    const parsed = schema.safeParse(decoded.value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return reply(
        fileError(
          "EBADMSG",
          `${kind}: ${issue?.path.join(".") || "message"}: ${issue?.message ?? "invalid"}`,
        ),
      );
    }
    // Quorum mode: a minority takes no COMMIT (reads are still served).
    if (kind === "COMMIT" && this.peers.options.readOnly?.()) return reply(minorityRefusal(this.peers.self));
    const epoch = this.peers.term();
    if (epoch === undefined)
      return reply(fileError("EAGAIN", `node ${this.peers.self} is not the coordinator now`));
    try {
      if (kind === "COMMIT") {
        const answer = await this.#commit(parsed.data as CommitRequest, epoch, encoding);
        this.peers.options.actions?.commit((parsed.data as CommitRequest).name, answer);
        reply(answer);
      } else if (kind === "UPDATE") reply(await this.#update(parsed.data as UpdateRequest, epoch));
      else reply(await this.#ls((parsed.data as { prefix?: string }).prefix ?? ""));
    } catch (e) {
      reply(this.peers.failure(e));
    }
  }

  /** Admits the commit to its file's queue (the machine counts them) and runs it after the ones before it. */
  #commit(request: CommitRequest, epoch: number, encoding: Encoding): Promise<FileAnswer> {
    const { settings } = this.peers;
    if (request.size > settings.maxFileBytes)
      return Promise.resolve(
        fileError("EINVAL", `size ${request.size} exceeds files.maxFileBytes ${settings.maxFileBytes}`),
      );
    const { name, size } = request;
    return new Promise<FileAnswer>((resolve) => {
      const ref = `${this.#nextRef++}`;
      const admit = () => {
        this.#offers.delete(ref);
        this.busy.hold(name, size, this.peers.now());
        const run = (this.#tails.get(name) ?? Promise.resolve()).then(() =>
          this.#commitNow(request, epoch, encoding),
        );
        this.#tails.set(
          name,
          run.then(
            () => {},
            () => {},
          ),
        );
        resolve(
          run.finally(() => {
            const at = this.peers.now();
            this.busy.hold(name, size, at);
            this.actor.send({ type: "commit.ended", name, size, at });
            if (entryOf(this.actor.getSnapshot().context.queued, name) === undefined)
              this.#tails.delete(name);
          }),
        );
      };
      const refuse = (depth: number) => {
        this.#offers.delete(ref);
        resolve(fileError("EBUSY", `${depth} commits of ${name} are waiting already`));
      };
      this.#offers.set(ref, { admit, refuse });
      this.actor.send({ type: "commit.offered", ref, name, size, at: this.peers.now() });
    });
  }

  #commitNow(request: CommitRequest, epoch: number, encoding: Encoding): Promise<FileAnswer> {
    return this.writes.run(request.name, () => this.#commitExclusive(request, epoch, encoding));
  }

  /** A commit from reading the file's record to writing the next one; no other write of that record runs meanwhile. */
  async #commitExclusive(request: CommitRequest, epoch: number, encoding: Encoding): Promise<FileAnswer> {
    const { peers } = this;
    if (peers.term() !== epoch) return fileError("EAGAIN", "this node's term ended");
    const existing = await this.catalog.get(request.name);
    const recorded = existing === undefined ? undefined : recordedCommit(existing.record, request.commit);
    if (recorded !== undefined) {
      // A retry of a commit that was recorded (its answer was lost): the same version, never a new one.
      if (recorded.sha256 !== request.sha256)
        return fileError("EINVAL", `commit id ${request.commit} was used for other bytes`);
      return recorded;
    }
    if (!mayRecord(existing?.record, epoch))
      return fileError("EAGAIN", "a newer coordinator recorded this file");
    const identity: FileIdentity = {
      name: request.name,
      version: nextVersion(existing?.record),
      sha256: request.sha256,
      size: request.size,
    };
    const message: PeerFileMessage = {
      v: PROTOCOL_VERSION,
      type: "COMMIT",
      from: peers.self,
      epoch,
      ...identity,
      commit: request.commit,
      rf: peers.settings.replicationFactor,
      source: peers.options.subjects.fileSource(request.commit),
      // The holders ask the client's source in the encoding of its COMMIT.
      ...(encoding === "json" ? { sourceEncoding: "json" } : {}),
    };
    const answer = await this.delegate(
      message,
      transferTimeoutMs(peers.settings, identity.size) + peers.settings.requestTimeoutMs,
    );
    if (answer.type !== "SUCCESS")
      return answer.type === "ERROR" ? answer : fileError("EIO", `unexpected ${answer.type}`);
    // Record it only while this term lasts: a deposed coordinator records nothing.
    if (peers.term() !== epoch)
      return fileError("EAGAIN", "this node's term ended before the version was recorded");
    const record: CatalogRecord = {
      v: PROTOCOL_VERSION,
      ...identity,
      epoch,
      commit: request.commit,
      holders: answer.holders,
      at: peers.now(),
      earlier: earlierCommits(existing?.record),
    };
    try {
      await this.catalog.record(record, existing?.revision);
    } catch (e) {
      if (e instanceof CasConflictError)
        return fileError("EAGAIN", `another commit of ${request.name} was recorded first`);
      throw e;
    }
    this.recorded(identity.name);
    peers.publish(
      peers.options.subjects.fileCommitted,
      { v: PROTOCOL_VERSION, type: "COMMITTED", from: peers.self, epoch, ...identity },
      "committed",
      "could not announce a committed version",
    );
    peers.options.logger.info(
      { name: identity.name, version: identity.version, holders: answer.holders },
      "committed",
    );
    return successOf(record);
  }

  /** Sends a COMMIT, UPDATE or REPAIR to the active servers in turn until one is not BUSY. */
  async delegate(message: PeerFileMessage, timeoutMs: number): Promise<PeerFileAnswer> {
    const turn = this.actor.getSnapshot().context.turn;
    this.actor.send({ type: "delegation.started" });
    const order = activeOrder(this.peers.servers(), this.peers.self, turn);
    let last: PeerFileAnswer = fileError("EBUSY", "every active server is busy");
    for (const node of order) {
      const answer = await this.peers.ask(node, message, timeoutMs);
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
    const entry = await this.catalog.get(request.name);
    if (entry === undefined) return fileError("ENOENT", `no file named ${request.name}`);
    const { record } = entry;
    const identity: FileIdentity = {
      name: record.name,
      version: record.version,
      sha256: record.sha256,
      size: record.size,
    };
    // A coordinator that has not yet heard the servers' ALIVE (a new term, its own link just back)
    // knows no holder from them: it asks the holders the record names, who answer for themselves.
    const known = this.holders(record);
    const holders = known.length > 0 ? known : record.holders;
    const { settings } = this.peers;
    const answer = await this.delegate(
      { v: PROTOCOL_VERSION, type: "UPDATE", from: this.peers.self, epoch, ...identity, holders },
      2 * settings.requestTimeoutMs + settings.readTimeoutMs,
    );
    if (answer.type === "FILE")
      return { v: PROTOCOL_VERSION, type: "FILE", ...identity, source: answer.source };
    return answer.type === "ERROR" ? answer : fileError("EIO", `unexpected ${answer.type}`);
  }

  async #ls(prefix: string): Promise<FileAnswer> {
    const entries = await this.catalog.list((e) => this.peers.warn("catalog", { key: e.key }, e.message));
    const servers = this.peers.servers();
    const files: FileListing[] = entries
      .filter((e) => e.record.name.startsWith(prefix))
      .map(({ record }) => ({
        name: record.name,
        version: record.version,
        sha256: record.sha256,
        size: record.size,
        holders: this.holders(record, servers),
        at: record.at,
      }));
    return { v: PROTOCOL_VERSION, type: "LIST", files };
  }

  /** This coordinator wrote `name`'s record just now. */
  recorded(name: string): void {
    this.#recordedAt.set(name, this.peers.now());
  }

  /** Who holds the recorded version now (ALIVE lists, and recorded holders not heard from since it was written). */
  holders(record: CatalogRecord, servers: ServerView[] = this.peers.servers()): NodeId[] {
    const { termStart, statusMs } = this.actor.getSnapshot().context;
    const since = this.#recordedAt.get(record.name) ?? termStart;
    return holdersOf(record, { holders: record.holders, since }, servers, statusMs);
  }
}
