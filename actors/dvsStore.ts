// The DVS and DC tables of one node (SPEC 5, groups DVS and DC): whether the
// node is initialised in the DVS and with which `dvs_usr`, and one DC actor per
// DC it knows of. Mutations answer as the request server expects (an Outcome
// with the seed's error names) and are persisted under the state dir before the
// answer, so the tables survive a restart. DC versions carry Lamport revisions;
// `merge` takes the newer version of each DC offered by another node. The
// limits of `dvs_usr` bound the tables (nr_dcs, nr_nodes: ENOSPC); a member
// leaving or rejoining the view moves it out of and back into its DCs.
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type Actor, createActor } from "xstate";
import { z } from "zod";
import {
  type DcInfo,
  type DcMachine,
  type DcRecord,
  type Departure,
  dcMachine,
  isNewer,
} from "../machines/dc.js";
import type { NodeId, Params } from "../protocol/messages.js";
import { VERSION } from "../protocol/version.js";
import type { Logger } from "./logger.js";
import type { Outcome } from "./requestServer.js";
import { writeFileDurable } from "./stateDir.js";

/** `dvs_usr` with every field present. */
export type DvsInfo = { [K in keyof Params<"DVSINIT">]-?: NonNullable<Params<"DVSINIT">[K]> };

export const DVS_DEFAULTS: Omit<DvsInfo, "version"> = {
  name: "dvs",
  nr_dcs: 32,
  nr_nodes: 64,
  nr_procs: 256,
  nr_tasks: 64,
  nr_sysprocs: 16,
  max_copybuf: 65_536,
  max_copylen: 4 * 1024 * 1024,
  dbglvl: 0,
};

const dcInfoSchema = z.strictObject({
  dcid: z.number().int(),
  flags: z.number().int(),
  nr_procs: z.number().int(),
  nr_tasks: z.number().int(),
  nr_sysprocs: z.number().int(),
  nr_nodes: z.number().int(),
  nodes: z.array(z.number().int()),
  warn2proc: z.number().int(),
  warnmsg: z.number().int(),
  name: z.string(),
});

const departureSchema = z.strictObject({
  nodeid: z.number().int().min(0).max(65_535),
  cause: z.string().max(200),
  at: z.number(),
});

export const dcRecordSchema = z.strictObject({
  dc: dcInfoSchema,
  ended: z.boolean(),
  rev: z.number().int().min(0),
  origin: z.number().int().min(0),
  // Tables written (or offered) before departures were recorded have none.
  departed: z.array(departureSchema).max(65_536).default([]),
});

/** What GETDCINFO answers: `dc_usr` and the nodes out of it because they left the view. */
export type DcView = DcInfo & { readonly departed: readonly Departure[] };

/** DCs whose node lists a view change altered, with the nodes it moved. */
export type DcMembershipChange = { readonly dcid: number; readonly nodeids: readonly number[] };

const stateFileSchema = z.strictObject({
  v: z.literal(1),
  dvs: z
    .strictObject({
      name: z.string(),
      nr_dcs: z.number().int(),
      nr_nodes: z.number().int(),
      nr_procs: z.number().int(),
      nr_tasks: z.number().int(),
      nr_sysprocs: z.number().int(),
      max_copybuf: z.number().int(),
      max_copylen: z.number().int(),
      dbglvl: z.number().int(),
      version: z.string(),
    })
    .nullable(),
  lamport: z.number().int().min(0),
  dcs: z.array(dcRecordSchema),
});

export interface DvsStoreOptions {
  readonly node: NodeId;
  readonly logger: Logger;
  /** Directory where the tables persist; memory only when absent (simulated tests). */
  readonly stateDir?: string;
}

/** The file under the state dir holding the DVS and DC tables. */
export const DVS_STATE_FILE = "dvs.json";

export class DvsStore {
  #dvs: DvsInfo | null = null;
  #lamport = 0;
  readonly #dcs = new Map<number, Actor<DcMachine>>();

  constructor(readonly options: DvsStoreOptions) {
    this.#load();
  }

  get initialized(): boolean {
    return this.#dvs !== null;
  }

  get dvs(): DvsInfo | null {
    return this.#dvs;
  }

  // ---- DVS ----

  init(params: Params<"DVSINIT">): Outcome {
    if (this.#dvs) return { error: "EEXIST", message: `node ${this.options.node} is already initialised` };
    const dvs: DvsInfo = { ...DVS_DEFAULTS, version: VERSION };
    for (const [key, value] of Object.entries(params))
      if (value !== undefined) Object.assign(dvs, { [key]: value });
    this.#dvs = dvs;
    this.#save();
    return { rcode: this.options.node, data: this.#dvs };
  }

  end(): Outcome {
    if (!this.#dvs) return { error: "ENOTINIT", message: "DVS not initialised on this node" };
    this.#dvs = null;
    this.#save();
    return { rcode: 0 };
  }

  // ---- DCs ----

  /** Active DCs, by ascending DCID. */
  dcs(): DcInfo[] {
    return [...this.#dcs.values()]
      .map((a) => a.getSnapshot().context)
      .filter((r) => !r.ended)
      .map((r) => r.dc)
      .sort((a, b) => a.dcid - b.dcid);
  }

  dc(dcid: number): DcInfo | undefined {
    const record = this.#dcs.get(dcid)?.getSnapshot().context;
    return record && !record.ended ? record.dc : undefined;
  }

  /** DC `dcid` with its departures (GETDCINFO); undefined when not active here. */
  dcView(dcid: number): DcView | undefined {
    const record = this.#active(dcid)?.getSnapshot().context;
    return record ? { ...record.dc, departed: record.departed } : undefined;
  }

  /** The nodes of DC `dcid`; undefined when this node knows no such (active) DC. */
  nodesOf(dcid: number): readonly NodeId[] | undefined {
    return this.dc(dcid)?.nodes;
  }

  /** The process limits of DC `dcid` (SPAWN); undefined when not active here. */
  limitsOf(dcid: number): { readonly nr_procs: number; readonly nr_tasks: number } | undefined {
    const dc = this.dc(dcid);
    return dc ? { nr_procs: dc.nr_procs, nr_tasks: dc.nr_tasks } : undefined;
  }

  /** Whether this node knows DC `dcid` as ended (a tombstone, not merely unknown). */
  ended(dcid: number): boolean {
    return this.#dcs.get(dcid)?.getSnapshot().context.ended ?? false;
  }

  dcInit(params: Params<"DCINIT">): Outcome {
    if (this.dc(params.dcid)) return { error: "EEXIST", message: `DC ${params.dcid} exists` };
    const limit = this.#dvs?.nr_dcs ?? DVS_DEFAULTS.nr_dcs;
    if (this.dcs().length >= limit)
      return { error: "ENOSPC", message: `the DVS allows at most ${limit} DCs (nr_dcs)` };
    const nodes = [...new Set(params.nodes ?? [])].sort((a, b) => a - b);
    const most = this.#nodeLimit();
    if (nodes.length > most)
      return { error: "ENOSPC", message: `a DC has at most ${most} nodes (nr_nodes); ${nodes.length} given` };
    const dc: DcInfo = {
      dcid: params.dcid,
      flags: params.flags ?? 0,
      nr_procs: params.nr_procs ?? this.#dvs?.nr_procs ?? DVS_DEFAULTS.nr_procs,
      nr_tasks: params.nr_tasks ?? this.#dvs?.nr_tasks ?? DVS_DEFAULTS.nr_tasks,
      nr_sysprocs: params.nr_sysprocs ?? this.#dvs?.nr_sysprocs ?? DVS_DEFAULTS.nr_sysprocs,
      nr_nodes: nodes.length,
      nodes,
      warn2proc: params.warn2proc ?? -1,
      warnmsg: params.warnmsg ?? 0,
      name: params.name ?? `dc${params.dcid}`,
    };
    const rev = this.#tick();
    const existing = this.#dcs.get(params.dcid);
    if (existing) existing.send({ type: "dc.init", dc, ...rev });
    else this.#spawn({ dc, ended: false, departed: [], ...rev });
    this.#save();
    return { rcode: params.dcid, data: dc };
  }

  dcEnd(dcid: number): Outcome {
    const actor = this.#active(dcid);
    if (!actor) return { error: "ENOENT", message: `no DC ${dcid}` };
    actor.send({ type: "dc.end", ...this.#tick() });
    this.#save();
    return { rcode: 0 };
  }

  addNode(dcid: number, nodeid: NodeId): Outcome {
    const actor = this.#active(dcid);
    if (!actor) return { error: "ENOENT", message: `no DC ${dcid}` };
    const { dc, departed } = actor.getSnapshot().context;
    if (dc.nodes.includes(nodeid)) return { error: "EEXIST", message: `node ${nodeid} is in DC ${dcid}` };
    // A departed node keeps its place: adding it back does not take another.
    const most = this.#nodeLimit();
    const held = dc.nodes.length + departed.filter((d) => d.nodeid !== nodeid).length;
    if (held >= most)
      return { error: "ENOSPC", message: `DC ${dcid} has ${held} nodes, the most a DC may have (nr_nodes)` };
    actor.send({ type: "dc.addNode", nodeid, ...this.#tick() });
    this.#save();
    return { rcode: 0, data: actor.getSnapshot().context.dc };
  }

  delNode(dcid: number, nodeid: NodeId): Outcome {
    const actor = this.#active(dcid);
    if (!actor) return { error: "ENOENT", message: `no DC ${dcid}` };
    const { dc, departed } = actor.getSnapshot().context;
    // A departed node can be removed too: it then does not come back when it rejoins.
    if (!dc.nodes.includes(nodeid) && !departed.some((d) => d.nodeid === nodeid))
      return { error: "ENOENT", message: `node ${nodeid} is not in DC ${dcid}` };
    actor.send({ type: "dc.delNode", nodeid, ...this.#tick() });
    this.#save();
    return { rcode: 0, data: actor.getSnapshot().context.dc };
  }

  // ---- view changes ----

  /** Members declared gone from the view (DISCONNECT, for `cause`, at `at`) leave every active DC they are in. */
  depart(nodeids: readonly NodeId[], cause: string, at: number): DcMembershipChange[] {
    return this.#moveNodes(
      (r) => r.dc.nodes.filter((n) => nodeids.includes(n)),
      (actor) => actor.send({ type: "dc.depart", nodeids, cause: cause.slice(0, 200), at }),
    );
  }

  /** Members in the view come back into every active DC they departed from. */
  rejoin(nodeids: readonly NodeId[]): DcMembershipChange[] {
    return this.#moveNodes(
      (r) => r.departed.filter((d) => nodeids.includes(d.nodeid)).map((d) => d.nodeid),
      (actor) => actor.send({ type: "dc.return", nodeids }),
    );
  }

  // ---- synchronisation ----

  /** Every DC version this node holds, ended ones included (so an end is not undone by a stale copy). */
  records(): DcRecord[] {
    return [...this.#dcs.values()].map((a) => a.getSnapshot().context);
  }

  /** Takes the newer version of each offered DC; true when anything changed. */
  merge(records: readonly DcRecord[]): boolean {
    let changed = false;
    for (const record of records) {
      this.#lamport = Math.max(this.#lamport, record.rev);
      const actor = this.#dcs.get(record.dc.dcid);
      if (!actor) {
        this.#spawn(record);
        changed = true;
      } else if (isNewer(record, actor.getSnapshot().context)) {
        actor.send({ type: "dc.replace", record });
        changed = true;
      }
    }
    if (changed) this.#save();
    return changed;
  }

  // ---- internals ----

  /** Sends `move` to each active DC where `moved` names nodes; saves once. */
  #moveNodes(
    moved: (record: DcRecord) => readonly NodeId[],
    move: (actor: Actor<DcMachine>) => void,
  ): DcMembershipChange[] {
    const changes: DcMembershipChange[] = [];
    for (const actor of this.#dcs.values()) {
      const record = actor.getSnapshot().context;
      const nodeids = record.ended ? [] : moved(record);
      if (nodeids.length === 0) continue;
      move(actor);
      changes.push({ dcid: record.dc.dcid, nodeids });
    }
    if (changes.length > 0) this.#save();
    return changes.sort((a, b) => a.dcid - b.dcid);
  }

  #nodeLimit(): number {
    return this.#dvs?.nr_nodes ?? DVS_DEFAULTS.nr_nodes;
  }

  #active(dcid: number): Actor<DcMachine> | undefined {
    const actor = this.#dcs.get(dcid);
    return actor && !actor.getSnapshot().context.ended ? actor : undefined;
  }

  #tick(): { rev: number; origin: number } {
    this.#lamport++;
    return { rev: this.#lamport, origin: this.options.node };
  }

  #spawn(record: DcRecord): void {
    const actor = createActor(dcMachine, { input: record });
    actor.start();
    this.#dcs.set(record.dc.dcid, actor);
  }

  get #file(): string | undefined {
    return this.options.stateDir ? join(this.options.stateDir, DVS_STATE_FILE) : undefined;
  }

  #load(): void {
    const file = this.#file;
    if (!file || !existsSync(file)) return;
    try {
      const parsed = stateFileSchema.parse(JSON.parse(readFileSync(file, "utf8")));
      this.#dvs = parsed.dvs;
      this.#lamport = parsed.lamport;
      for (const record of parsed.dcs) this.#spawn(record);
    } catch (error) {
      // A damaged table must not keep the node down: start empty, say so loudly, keep the file.
      this.options.logger.error({ err: error, file }, "could not read the DVS tables; starting without them");
    }
  }

  #save(): void {
    const file = this.#file;
    if (!file || !this.options.stateDir) return;
    mkdirSync(this.options.stateDir, { recursive: true });
    const state: z.infer<typeof stateFileSchema> = {
      v: 1,
      dvs: this.#dvs,
      lamport: this.#lamport,
      dcs: this.records().map((r) => ({
        ...r,
        dc: { ...r.dc, nodes: [...r.dc.nodes] },
        departed: r.departed.map((d) => ({ ...d })),
      })),
    };
    writeFileDurable(file, `${JSON.stringify(state, null, 2)}\n`);
  }
}
