// The active server role of the file store (SPEC 8, seed 002): given a COMMIT
// or a REPAIR by the coordinator, it places REPLICAs (passive servers first,
// then itself, then other actives) until the replication factor answered DONE;
// given an UPDATE, it finds a holder that serves the version. Where to place is
// machines/filePlacement.ts's decision; holding a copy itself is the holder's work.
import { holderCandidates, transferTimeoutMs } from "../../machines/filePlacement.js";
import type { FileIdentity, PeerFileAnswer, PeerFileMessage } from "../../protocol/files.js";
import { type NodeId, PROTOCOL_VERSION } from "../../protocol/messages.js";
import type { Holder } from "./holder.js";
import { type FilePeers, fileError } from "./peers.js";

export class ActiveServer {
  constructor(
    readonly peers: FilePeers,
    readonly holder: Holder,
  ) {}

  /** Asks holders, `rf - existing.size` at a time, until that many answered DONE (seed 002: REPLICA, DONE, SUCCESS). */
  async place(
    identity: FileIdentity & { readonly epoch: number; readonly sourceEncoding?: "json" | undefined },
    source: string | ((holder: NodeId) => string),
    rf: number,
    existing: ReadonlySet<NodeId>,
  ): Promise<PeerFileAnswer> {
    const { peers } = this;
    const candidates = holderCandidates(peers.servers(), peers.self, existing);
    const wanted = rf - existing.size;
    const done: NodeId[] = [];
    const failures: string[] = [];
    const replica = (holder: NodeId): Extract<PeerFileMessage, { type: "REPLICA" }> => ({
      v: PROTOCOL_VERSION,
      type: "REPLICA",
      from: peers.self,
      epoch: identity.epoch,
      name: identity.name,
      version: identity.version,
      sha256: identity.sha256,
      size: identity.size,
      source: typeof source === "string" ? source : source(holder),
      // A client's JSON COMMIT: every holder asks its source in JSON too.
      ...(identity.sourceEncoding === "json" ? { sourceEncoding: "json" } : {}),
    });
    const timeoutMs = transferTimeoutMs(peers.settings, identity.size);
    // One slot per replica wanted: a slot asks candidates in turn until one answers DONE.
    const slot = async () => {
      for (let holder = candidates.shift(); holder !== undefined; holder = candidates.shift()) {
        const message = replica(holder);
        const answer =
          holder === peers.self
            ? await this.holder.hold(message, message.source).catch((e: unknown) => peers.failure(e))
            : await peers.ask(holder, message, timeoutMs);
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
    return fileError(
      "ENOSPC",
      `only ${existing.size + done.length} of ${rf} servers hold ${identity.name} version ${identity.version}` +
        (failures.length > 0 ? ` (${failures.join("; ")})` : ""),
    );
  }

  /** REPAIR: new holders, each reading from one of the holders in turn, until the replication factor. */
  async repairCopies(m: Extract<PeerFileMessage, { type: "REPAIR" }>): Promise<PeerFileAnswer> {
    const { self, subjects } = this.peers.options;
    const sources = m.holders.filter((h) => h !== self);
    let turn = 0;
    const source = () => subjects.fileRead(sources[turn++ % sources.length] ?? self);
    return this.place(m, source, m.rf, new Set(m.holders));
  }

  /**
   * UPDATE: a server that holds the version serves it itself (FILE); an active
   * server asked by the coordinator asks the holders in turn (their UPDATE has
   * no holders: they answer for themselves).
   */
  async find(m: Extract<PeerFileMessage, { type: "UPDATE" }>): Promise<PeerFileAnswer> {
    const { peers } = this;
    if (await this.holder.servable(m)) return { v: PROTOCOL_VERSION, type: "FILE", source: peers.self };
    const failures: string[] = [];
    for (const holder of m.holders) {
      if (holder === peers.self) continue;
      const probe: PeerFileMessage = { ...m, from: peers.self, holders: [] };
      const answer = await peers.ask(
        holder,
        probe,
        peers.settings.requestTimeoutMs + peers.settings.readTimeoutMs,
      );
      if (answer.type === "FILE") return answer;
      failures.push(`${holder}: ${answer.type === "ERROR" ? answer.message : answer.type}`);
    }
    const why = failures.length > 0 ? ` (${failures.join("; ")})` : "";
    // The version is recorded: a holder out of reach now may be back soon (a reconnect, a restart), so the client tries again.
    return fileError("EAGAIN", `no reachable server holds ${m.name} version ${m.version}${why}`);
  }
}
