// The coordinator's repair sweep (SPEC 8, seed 002): every repairEveryMs, and
// at once when a server leaves, it copies each version held by fewer than the
// replication factor from a live holder, then tells servers to drop the copies
// no record will ever name. The schedule is machines/fileCoordinator.ts's.
import type { Actor } from "xstate";
import type { FileCoordinatorMachine } from "../../machines/fileCoordinator.js";
import { garbageOf, repairNeeded, termSettled, transferTimeoutMs } from "../../machines/filePlacement.js";
import type { CatalogRecord, FileIdentity, PeerFileAnswer, PeerFileMessage } from "../../protocol/files.js";
import { type HeldFile, type NodeId, PROTOCOL_VERSION } from "../../protocol/messages.js";
import { CasConflictError } from "../../transport/errors.js";
import type { BusyFiles } from "./busyFiles.js";
import { type Catalog, type CatalogEntry, type CatalogListing, catalogKey } from "./catalog.js";
import type { CatalogWrites } from "./catalogWrites.js";
import type { FilePeers } from "./peers.js";

/** What a sweep needs from the coordinator it works for. */
export interface SweepingCoordinator {
  readonly actor: Actor<FileCoordinatorMachine>;
  /** The files whose copies are not judged yet. */
  readonly busy: BusyFiles;
  /** The catalog's read-then-writes, one per file at a time. */
  readonly writes: CatalogWrites;
  /** Who holds the recorded version now. */
  holders(record: CatalogRecord): NodeId[];
  /** This coordinator wrote `name`'s record just now. */
  recorded(name: string): void;
  /** Sends a peer message to the active servers in turn until one is not BUSY. */
  delegate(message: PeerFileMessage, timeoutMs: number): Promise<PeerFileAnswer>;
}

export class RepairSweep {
  constructor(
    readonly peers: FilePeers,
    readonly catalog: Catalog,
    readonly coordinator: SweepingCoordinator,
  ) {}

  /** Copies every version held by fewer than the replication factor of live servers, from one that holds it. */
  async sweep(): Promise<void> {
    const sweepStart = this.peers.now();
    try {
      const epoch = this.peers.term();
      if (epoch === undefined) return;
      let listing: CatalogListing;
      try {
        listing = await this.catalog.scan((e) => this.peers.warn("catalog", { key: e.key }, e.message));
      } catch (e) {
        this.peers.warn("repair", { err: e }, "could not read the catalog to repair it");
        return;
      }
      for (const entry of listing.entries) {
        if (this.peers.term() !== epoch || this.coordinator.actor.getSnapshot().matches("stopped")) return;
        await this.#repairOne(entry, epoch);
      }
      if (this.peers.term() === epoch) this.#collectGarbage(listing, epoch, sweepStart);
    } finally {
      this.coordinator.actor.send({ type: "repair.done" });
    }
  }

  /**
   * Tells each server to delete the copies no record will ever name. Nothing
   * is judged early in a term (the last coordinator's writes may still land),
   * nor for a file whose commit here is under way or ended lately, nor for a
   * file whose record cannot be read (unreadable is not absent). A holder
   * still refuses to drop a copy it knows was recorded that is newer than the
   * record (a catalog restored from a backup): the ALIVE lists cannot tell.
   */
  #collectGarbage(listing: CatalogListing, epoch: number, sweepStart: number): void {
    const { peers } = this;
    const context = this.coordinator.actor.getSnapshot().context;
    if (!termSettled(context.termStart, sweepStart, context.statusMs, peers.settings.requestTimeoutMs))
      return;
    const recorded = new Map(listing.entries.map((e) => [e.record.name, e.record]));
    const readable = (f: HeldFile) => !listing.unreadable.has(catalogKey(f.name));
    const busy = this.coordinator.busy.at(sweepStart, Object.keys(context.queued));
    this.coordinator.busy.forgetQuiet(sweepStart);
    for (const server of peers.servers()) {
      for (const copy of garbageOf(server.files.filter(readable), recorded, busy)) {
        const { name, version, sha256 } = copy;
        const discard: PeerFileMessage = {
          v: PROTOCOL_VERSION,
          type: "DISCARD",
          from: peers.self,
          epoch,
          name,
          version,
          sha256,
        };
        peers.publish(
          peers.options.subjects.filePeer(server.node),
          discard,
          "discard",
          "could not send DISCARD",
        );
      }
    }
  }

  async #repairOne({ record }: CatalogEntry, epoch: number): Promise<void> {
    const { peers } = this;
    const rf = peers.settings.replicationFactor;
    const holders = this.coordinator.holders(record);
    if (repairNeeded(holders, rf) === 0) return;
    const identity: FileIdentity = {
      name: record.name,
      version: record.version,
      sha256: record.sha256,
      size: record.size,
    };
    peers.warn(
      `repair:${record.name}`,
      { name: record.name, version: record.version, holders, rf },
      "repairing a version with too few holders",
    );
    const answer = await this.coordinator.delegate(
      { v: PROTOCOL_VERSION, type: "REPAIR", from: peers.self, epoch, ...identity, holders, rf },
      transferTimeoutMs(peers.settings, record.size) + peers.settings.requestTimeoutMs,
    );
    if (answer.type !== "SUCCESS") {
      peers.warn("repair", { name: record.name, answer }, "could not repair a version");
      return;
    }
    // The holders are written over the record as it is now, and only if it is still the version repaired:
    // a commit may have recorded a newer one meanwhile (its write and this one never overlap).
    await this.coordinator.writes.run(record.name, async () => {
      if (peers.term() !== epoch) return;
      let current: CatalogEntry | undefined;
      try {
        current = await this.catalog.get(record.name);
      } catch (e) {
        peers.warn("repair", { err: e }, "could not read the record to repair it");
        return;
      }
      if (
        current === undefined ||
        current.record.version !== record.version ||
        current.record.sha256 !== record.sha256
      )
        return;
      const updated: CatalogRecord = {
        ...current.record,
        holders: [...new Set([...holders, ...answer.holders])],
      };
      await this.catalog.record(updated, current.revision).then(
        () => this.coordinator.recorded(record.name),
        (e: unknown) => {
          if (!(e instanceof CasConflictError))
            peers.warn("repair", { err: e }, "could not record the repaired holders");
        },
      );
    });
  }
}
