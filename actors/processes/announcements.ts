// Where processes run, told to every node: each host announces the processes
// it spawned, took or ended on `dvs.<c>._loc`, and applies the others'
// announcements to its location table; a copy that a newer one supersedes is dropped.
import { decode, encode } from "../../protocol/codec.js";
import { type NodeId, PROTOCOL_VERSION } from "../../protocol/messages.js";
import { announcementSchema, type Location } from "../../protocol/processes.js";
import type { Subjects } from "../../protocol/subjects.js";
import type { Message, Transport } from "../../transport/transport.js";
import type { Logger } from "../logger.js";
import type { Hosted, HostedTable, ProcessRuntimeStats, Warn } from "./hosted.js";
import { procKey } from "./locations.js";

/** Entries per announcement, so a node hosting many processes stays under the payload limit. */
const ENTRIES_PER_ANNOUNCEMENT = 1_000;

export interface AnnouncementsOptions {
  readonly self: NodeId;
  readonly table: HostedTable;
  readonly transport: Transport;
  readonly subjects: Subjects;
  readonly logger: Logger;
  readonly warn: Warn;
  readonly stats: ProcessRuntimeStats;
  /** Another node runs a newer (or winning) copy of `h`: the copy here goes. */
  readonly onStale: (h: Hosted) => void;
  /** Another node says this node hosts `h` at its epoch (the old host of a provisional copy confirming the move). */
  readonly onConfirmed: (h: Hosted) => void;
}

export class Announcements {
  readonly #o: AnnouncementsOptions;

  constructor(options: AnnouncementsOptions) {
    this.#o = options;
  }

  publish(entries: Location[]): void {
    const { transport, subjects, self } = this.#o;
    for (let i = 0; i < entries.length; i += ENTRIES_PER_ANNOUNCEMENT) {
      try {
        const announcement = {
          v: PROTOCOL_VERSION,
          from: self,
          entries: entries.slice(i, i + ENTRIES_PER_ANNOUNCEMENT),
        };
        transport.publish(subjects.procLocation, encode(announcement));
      } catch (error) {
        this.#o.warn("announce", { err: error }, "could not announce process locations");
      }
    }
  }

  /** Another node's announcement; nothing it carries can throw out of here. */
  receive(msg: Message): void {
    const { self, table, stats, warn } = this.#o;
    try {
      const decoded = decode(msg.data, "cbor", this.#o.transport.maxPayload);
      const parsed = decoded.ok ? announcementSchema.safeParse(decoded.value) : undefined;
      if (parsed === undefined || !parsed.success) {
        stats.badMessages++;
        warn(
          "bad-announcement",
          { bytes: msg.data.byteLength },
          "dropped an unreadable location announcement",
        );
        return;
      }
      if (parsed.data.from === self) return;
      for (const entry of parsed.data.entries) {
        if (entry.node === self && !entry.ended) {
          const mine = table.hosted.get(procKey(entry.dcid, entry.endpoint));
          if (mine?.provisional === parsed.data.from && mine.epoch === entry.epoch) this.#o.onConfirmed(mine);
          continue;
        }
        const h = table.hosted.get(procKey(entry.dcid, entry.endpoint));
        const newer = table.locations.apply(entry);
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
          this.#o.onStale(h);
        }
      }
    } catch (error) {
      warn("announcement-handler", { err: error }, "an announcement handler failed");
    }
  }
}
