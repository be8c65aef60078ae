// The file store of one node (SPEC 8, seed 002): the facade the node starts and
// stops. It subscribes, admits peer sessions (machines/fileServer.ts answers
// BUSY past maxSessions) and routes each message to a role: the coordinator
// (coordinator.ts) while this node holds a term, the active server
// (activeServer.ts), and the holder (holder.ts) on every server.
import { type Actor, createActor } from "xstate";
import { type FileServerMachine, fileServerMachine } from "../../machines/fileServer.js";
import type { ViewChange } from "../../machines/membership.js";
import { decode } from "../../protocol/codec.js";
import { type FileAnswer, type PeerFileAnswer, peerFileMessageSchema } from "../../protocol/files.js";
import type { HeldFile, NodeId } from "../../protocol/messages.js";
import type { Message, Subscription } from "../../transport/transport.js";
import { publicEndpoints, serveEndpoint } from "../endpoints.js";
import { type FileOperation, fileOutcome } from "../metrics.js";
import { ActiveServer } from "./activeServer.js";
import { Catalog } from "./catalog.js";
import { Coordinator } from "./coordinator.js";
import { Holder } from "./holder.js";
import { MinorityRefusal } from "./minorityRefusal.js";
import { BUSY, FilePeers, fileError, type Reply } from "./peers.js";
import { defaultFileSettings, type FileServiceOptions, type FileSettings } from "./settings.js";

export { transferTimeoutMs } from "../../machines/filePlacement.js";
export {
  defaultFileSettings,
  type FileElection,
  type FileServiceOptions,
  type FileSettings,
} from "./settings.js";

type Session = {
  readonly operation: FileOperation;
  readonly reply: Reply;
  readonly run: () => Promise<FileAnswer | PeerFileAnswer>;
};

export class FileService {
  readonly name = "files";
  readonly settings: FileSettings;
  readonly #server: Actor<FileServerMachine>;
  readonly #o: FileServiceOptions;
  readonly #peers: FilePeers;
  readonly #coordinator: Coordinator;
  readonly #holder: Holder;
  readonly #active: ActiveServer;
  /** Answers the clients' COMMIT with EROFS while this node is in a minority. */
  readonly #minority: MinorityRefusal;
  #subscriptions: Subscription[] = [];
  /** Sessions offered to the machine and not yet run or refused, by ref. */
  readonly #offers = new Map<string, Session>();
  #nextRef = 1;

  constructor(options: FileServiceOptions) {
    this.#o = options;
    this.settings = { ...defaultFileSettings(), ...options.settings };
    this.#peers = new FilePeers(options, this.settings);
    const catalog = new Catalog(options.store);
    const machine = fileServerMachine.provide({
      actions: {
        runSession: (_, { ref }) => void this.#run(ref),
        refuseSession: (_, { ref }) => {
          const session = this.#offers.get(ref);
          this.#offers.delete(ref);
          if (session) this.#o.metrics?.fileOperation(session.operation, "busy");
          session?.reply(BUSY);
        },
      },
    });
    this.#server = createActor(machine, {
      clock: options.clock,
      input: { maxSessions: this.settings.maxSessions },
    }).start();
    this.#coordinator = new Coordinator(this.#peers, catalog, options.catalogWrites);
    this.#holder = new Holder(this.#peers, catalog, this.#server);
    this.#active = new ActiveServer(this.#peers, this.#holder);
    this.#minority = new MinorityRefusal(this.#peers);
  }

  async start(): Promise<this> {
    const { transport, subjects, self, replicas } = this.#o;
    await replicas.open();
    const sub = (subject: string, handler: (msg: Message) => void) =>
      this.#subscriptions.push(transport.subscribe(subject, handler));
    sub(subjects.filePeer(self), (msg) => this.#onPeer(msg));
    sub(subjects.fileCommitted, (msg) => void this.#holder.onCommitted(msg));
    this.#subscriptions.push(
      serveEndpoint(transport, this.#o.endpoints, publicEndpoints(subjects, self).fileRead, (msg) => {
        void this.#holder.onRead(msg);
      }),
    );
    this.#minority.update(this.#readOnly());
    return this;
  }

  /** The versions this server holds, for ALIVE. */
  held(): HeldFile[] {
    return this.#peers.held();
  }

  /** The bytes of the versions this server holds (finished replicas only). */
  bytesHeld(): number {
    let bytes = 0;
    for (const replica of this.#o.replicas.held()) bytes += replica.size;
    return bytes;
  }

  /** This node won a term or lost it: take (or stop taking) the clients' COMMIT, UPDATE and LS. */
  coordinatorChanged(coordinator: NodeId | null): void {
    this.#coordinator.changed(coordinator);
  }

  /**
   * A server left this node's view (PARTITION: crashed or cut off; DISCONNECT:
   * gone): what waits on its answer stops waiting, and a coordinator looks for
   * versions it held at once.
   */
  serverLeft(node: NodeId): void {
    this.#peers.serverLeft(node);
    this.#coordinator.serverLeft();
  }

  /** The membership view changed: the servers that crashed, were cut off or left are let go. */
  onView(_members: readonly NodeId[], change?: ViewChange): void {
    // The minority mark is recomputed at every announced change (and gone after DVSEND).
    this.#minority.update(this.#readOnly());
    if (change?.event !== "DISCONNECT" && change?.event !== "PARTITION") return;
    for (const m of change.changed) this.serverLeft(m.node);
  }

  async stop(): Promise<void> {
    this.#coordinator.stop();
    this.#minority.stop();
    this.#server.send({ type: "files.stop" });
    for (const s of this.#subscriptions) s.unsubscribe();
    this.#subscriptions = [];
    await this.#o.replicas.close();
  }

  #onPeer(msg: Message): void {
    const decoded = decode(msg.data, "cbor", this.#o.transport.maxPayload);
    const parsed = decoded.ok ? peerFileMessageSchema.safeParse(decoded.value) : undefined;
    const reply: Reply = (answer) => this.#peers.reply(msg, answer);
    if (!parsed?.success) {
      this.#peers.warn("peer", {}, "dropped a malformed file store message from another server");
      reply(fileError("EINVAL", "malformed file store message"));
      return;
    }
    const m = parsed.data;
    // Fencing: work from a coordinator of an older term than one this server knows is refused.
    const highest = this.#o.election.state().highestEpoch;
    if (m.epoch < highest) {
      reply(fileError("ESTALE", `epoch ${m.epoch} is older than ${highest}`));
      return;
    }
    switch (m.type) {
      case "COMMIT":
        // A minority places no new version: EAGAIN sends the coordinator to another active server.
        if (this.#readOnly()) {
          reply(fileError("EAGAIN", `server ${this.#o.self} is in a minority (quorum mode)`));
          return;
        }
        this.#session("place", reply, () => this.#active.place(m, m.source, m.rf, new Set()));
        return;
      case "REPAIR":
        this.#session("repair", reply, () => this.#active.repairCopies(m));
        return;
      case "REPLICA":
        this.#session("replica", reply, () => this.#holder.hold(m, m.source));
        return;
      case "UPDATE":
        this.#session("find", reply, () => this.#active.find(m));
        return;
      case "DISCARD":
        void this.#holder.discard(m);
        return;
    }
  }

  #readOnly(): boolean {
    return this.#o.readOnly?.() ?? false;
  }

  /** Runs `run` as one session, or answers BUSY when this server runs as many as it allows. */
  #session(operation: FileOperation, reply: Reply, run: Session["run"]): void {
    const ref = `${this.#nextRef++}`;
    this.#offers.set(ref, { operation, reply, run });
    this.#server.send({ type: "session.offered", ref });
  }

  async #run(ref: string): Promise<void> {
    const session = this.#offers.get(ref);
    this.#offers.delete(ref);
    if (session === undefined) return;
    const reply = (answer: FileAnswer | PeerFileAnswer) => {
      this.#o.metrics?.fileOperation(session.operation, fileOutcome(answer));
      session.reply(answer);
    };
    try {
      reply(await session.run());
    } catch (e) {
      reply(this.#peers.failure(e));
    } finally {
      this.#server.send({ type: "session.ended" });
    }
  }
}
