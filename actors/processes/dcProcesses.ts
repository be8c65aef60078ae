// What a change to a DC does to its processes (SPEC 5, "the tables govern"):
// DCEND ends the processes of the DC hosted here (and is refused while any
// runs unless forced), DELNODE of this node moves its processes of the DC to
// the DC's other nodes or ends them, and DC tables learnt from another node end
// the processes here that their DC no longer allows (ended, or this node removed).
import type { NodeId } from "../../protocol/messages.js";
import type { Location } from "../../protocol/processes.js";
import type { Logger } from "../logger.js";
import type { DcDirectory } from "./dcDirectory.js";
import type { Hosted, HostedTable } from "./hosted.js";
import type { Hosting } from "./hosting.js";
import type { Migrations } from "./migration.js";

/** What happened to one process of a DC this node was removed from (DELNODE's reply). */
export type Eviction =
  | { readonly endpoint: number; readonly outcome: "migrated"; readonly to: NodeId }
  | { readonly endpoint: number; readonly outcome: "ended"; readonly reason: string }
  /** It was already moving to another node when the DELNODE came. */
  | { readonly endpoint: number; readonly outcome: "moving" };

/** The port the DVS tables (actors/dvsTables.ts) act on processes through. */
export interface DcProcessPort {
  /** Live processes of DC `dcid` this node knows of whose host is in the view. */
  running(dcid: number): Location[];
  /** Ends every process of DC `dcid` hosted here (migrating ones too); their endpoints. */
  endAll(dcid: number, reason: string): number[];
  /** This node left DC `dcid`: its processes there move to the DC's other nodes, or end. */
  evict(dcid: number): Promise<Eviction[]>;
  /** Ends the processes hosted here whose DC ended or no longer lists this node; their keys. */
  reconcile(): string[];
}

export interface DcProcessesOptions {
  readonly self: NodeId;
  readonly table: HostedTable;
  readonly dcs: DcDirectory;
  readonly hosting: Hosting;
  readonly migrations: Migrations;
  readonly logger: Logger;
  /** Whether `node` is this node or a member of its view. */
  readonly inView: (node: NodeId) => boolean;
}

export class DcProcesses implements DcProcessPort {
  readonly #o: DcProcessesOptions;

  constructor(options: DcProcessesOptions) {
    this.#o = options;
  }

  running(dcid: number): Location[] {
    return this.#o.table.locations.liveIn(dcid).filter((e) => this.#o.inView(e.node));
  }

  endAll(dcid: number, reason: string): number[] {
    const ended = this.#hostedIn(dcid).map((h) => {
      this.#o.hosting.end(h, reason);
      return h.endpoint;
    });
    if (ended.length > 0) this.#o.logger.info({ dcid, endpoints: ended, reason }, "ended the DC's processes");
    return ended;
  }

  async evict(dcid: number): Promise<Eviction[]> {
    const { self, dcs, inView } = this.#o;
    const targets = (dcs.nodesOf(dcid) ?? []).filter((n) => n !== self && inView(n));
    // Spread over the targets; each process tries the next target when one refuses.
    const outcomes = await Promise.all(
      this.#hostedIn(dcid).map((h, i) => this.#evictOne(h, rotate(targets, i))),
    );
    this.#o.logger.info({ dcid, outcomes }, "left a DC: its processes here moved or ended");
    return outcomes;
  }

  reconcile(): string[] {
    const { self, dcs } = this.#o;
    const ended: string[] = [];
    for (const h of [...this.#o.table.hosted.values()]) {
      const nodes = dcs.nodesOf(h.dcid);
      let gone: string | undefined;
      if (dcs.ended?.(h.dcid) === true) gone = "its DC ended";
      else if (nodes !== undefined && !nodes.includes(self)) gone = `node ${self} is no longer in its DC`;
      if (gone === undefined) continue;
      this.#o.logger.warn(
        { dcid: h.dcid, endpoint: h.endpoint, reason: gone },
        "ending a process its DC no longer allows here",
      );
      this.#o.hosting.end(h, gone);
      ended.push(h.key);
    }
    return ended;
  }

  async #evictOne(h: Hosted, targets: readonly NodeId[]): Promise<Eviction> {
    const { endpoint } = h;
    if (!h.lifecycle.getSnapshot().matches("running")) return { endpoint, outcome: "moving" };
    const refusals: string[] = [];
    for (const to of targets) {
      const outcome = await this.#o.migrations.migrate(h, to);
      if (!("error" in outcome)) return { endpoint, outcome: "migrated", to };
      refusals.push(`node ${to}: ${outcome.error}`);
      // Ended or moved meanwhile (a DCEND, another MIGRATE): nothing left to do here.
      if (!this.#o.table.isCurrent(h)) return { endpoint, outcome: "ended", reason: outcome.message };
    }
    const reason =
      targets.length === 0
        ? `no other node of DC ${h.dcid} is in the view`
        : `every other node refused it (${refusals.join(", ")})`;
    this.#o.hosting.end(h, `DELNODE: ${reason}`);
    return { endpoint, outcome: "ended", reason };
  }

  #hostedIn(dcid: number): Hosted[] {
    return [...this.#o.table.hosted.values()].filter((h) => h.dcid === dcid);
  }
}

/** `list` starting at its `by`-th element (modulo its length), wrapping around. */
function rotate<T>(list: readonly T[], by: number): T[] {
  if (list.length === 0) return [];
  const at = by % list.length;
  return [...list.slice(at), ...list.slice(0, at)];
}
