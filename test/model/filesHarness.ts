// The system under test of the file store model: a SimCluster of five real
// node runtimes (two of them passive servers) running the election and the
// file store with replication factor 3 over three simulated servers and one
// simulated store, two clients (FileClient, short deadlines) on chosen
// servers, and the topology the commands set. COMMITs and UPDATEs start
// without being awaited, so several are in flight while nodes crash, disks are
// wiped and routes are cut. After every simulated event the harness reads the
// catalog's new writes and checks them; each call is checked when it ends;
// the final heal restarts every node and checks that what was acknowledged is
// served. A failure carries a readable trace.

import { catalogKey } from "../../actors/files/catalog.js";
import type { CatalogWrites } from "../../actors/files/catalogWrites.js";
import type { FileSettings } from "../../actors/files/fileService.js";
import { SimDisk } from "../../actors/files/memoryReplicas.js";
import type { ReplicaStore } from "../../actors/files/replicaStore.js";
import type { QuorumGate, QuorumGateOptions } from "../../actors/quorumGate.js";
import { bytesSource, FileClient, memorySink } from "../../client/fileClient.js";
import { decode } from "../../protocol/codec.js";
import { catalogRecordSchema } from "../../protocol/files.js";
import type { NodeId } from "../../protocol/messages.js";
import { subjects } from "../../protocol/subjects.js";
import { SimCluster } from "../../sim/cluster.js";
import { seededRandom } from "../../transport/clock.js";
import type { CasStore } from "../../transport/kv.js";
import type { SimKv } from "../../transport/sim/index.js";
import { Faults, failWithTrace, TraceLog } from "./faults.js";
import {
  checkServed,
  type Fetched,
  FILES_INVARIANTS,
  FileHistory,
  InvariantViolation,
  type SentCommit,
  sha256Of,
  short,
} from "./filesInvariants.js";
import { MinorityWatch } from "./filesMinority.js";

export const NODE_IDS = [1, 2, 3, 4, 5] as const;
export const SERVERS = 3;
export const CLIENTS = 2;
/** Few names, so commits of the same file are concurrent. */
export const FILE_NAMES = ["a.txt", "dir/b.bin"] as const;
export const REPLICATION_FACTOR = 3;
/** Disks a run may wipe: one more than a version can lose and still be required to survive. */
export const MAX_WIPES = REPLICATION_FACTOR;

/** Short server timeouts, so failovers and repairs happen within a few simulated seconds. */
const FILE_SETTINGS: Partial<FileSettings> = {
  replicationFactor: REPLICATION_FACTOR,
  requestTimeoutMs: 1_000,
  readTimeoutMs: 1_000,
  repairEveryMs: 2_000,
};
/** The clients' timeouts: a commit of up to four chunks stops retrying after 15.5 s, an UPDATE after 6.5 s. */
const CLIENT_SETTINGS = { requestTimeoutMs: 3_000, readTimeoutMs: 500, deadlineMs: 2_000 } as const;
/**
 * By when every call must have ended: a commit's last attempt starts by
 * 15.5 s and waits at most 12 s (27.5 s); an UPDATE starts no attempt after
 * 6.5 s and one attempt (its retried ask, then its reads) ends within 10 s.
 * 60 s is well past both.
 */
const CALL_BOUND_MS = 60_000;
/**
 * How long the final heal waits once every call has ended: the election
 * settles (about 4 s, as the election model's stabilisation bound), every
 * server sends ALIVE (1 s), and two repair rounds (2 s apart) copy what lost
 * holders, each copy taking up to a transfer timeout (3 s).
 */
const REPAIR_WAIT_MS = 14_000;
/** Lines of the trace kept in a counterexample. */
const TRACE_LINES = 120;

/** One run's fixed setting. */
export interface FilesConfig {
  readonly seed: number;
  /** Server (0..2) of node id i at index i-1. */
  readonly serverOf: readonly number[];
  /** The two passive servers. */
  readonly passive: readonly NodeId[];
  /** Server of client i at index i. */
  readonly clientServer: readonly number[];
  /** The slowest a message or store hop is (the fastest is 1 ms). */
  readonly latencyMaxMs: number;
  /** Quorum mode (membership.quorum): a minority's file store is read-only (default off). */
  readonly quorum?: boolean;
  /** Default REPLICATION_FACTOR; 2 lets a minority of two commit when nothing stops it (quorum model). */
  readonly replicationFactor?: number;
}

/** Wraps the store client every node gets (election and catalog share it), to plant a bug. */
/** nats-server 2.9's window in which a compare-and-set is checked but not applied (nats-io/nats-server#4320). */
const CAS_RAFT_MS = 50;

export type StoreMutation = (store: CasStore, kv: SimKv) => CasStore;
/** Makes the replica store a node opens over its disk, to plant a bug. */
export type ReplicaMutation = (id: NodeId, disk: SimDisk) => ReplicaStore;

/** Planted bugs to run the model against; production code when absent. */
export interface FilesMutation {
  readonly store?: StoreMutation;
  readonly replicas?: ReplicaMutation;
  /** The coordinator's order of catalog writes. */
  readonly catalogWrites?: () => CatalogWrites;
  /** The gate each node acts on its minority mark with (quorum mode). */
  readonly quorumGate?: (options: QuorumGateOptions) => QuorumGate;
}

/** How much of the model a run exercised, for the CLI's summary. */
export interface FilesCoverage {
  steps: number;
  /** Simulated events after which the catalog was checked. */
  checks: number;
  commits: number;
  successes: number;
  commitErrors: number;
  updates: number;
  fetched: number;
  updateErrors: number;
  /** Calls that ended while another call on the same file was in flight. */
  concurrent: number;
  /** Catalog writes (versions recorded and repairs). */
  recorded: number;
  /** Commits recorded as a second version: a retry after another commit was recorded over the first. */
  recordedAgain: number;
  coordinatorChanges: number;
  wipes: number;
  /** Files the final check excused because every holder of their newest version was wiped. */
  excused: number;
  /** Files the final check found served. */
  served: number;
  /** Of those, files held on fewer disks than the replication factor after the final repair wait. */
  underReplicated: number;
  /** Copies of older versions (or of a commit that lost) still on disks after the final repair wait. */
  obsoleteCopies: number;
  largest: number;
  /** Quorum mode: commits refused with EROFS, and times a node marked itself minority. */
  minorityRefused: number;
  minorityMarked: number;
}

export function emptyFilesCoverage(): FilesCoverage {
  return {
    steps: 0,
    checks: 0,
    commits: 0,
    successes: 0,
    commitErrors: 0,
    updates: 0,
    fetched: 0,
    updateErrors: 0,
    concurrent: 0,
    recorded: 0,
    recordedAgain: 0,
    coordinatorChanges: 0,
    wipes: 0,
    excused: 0,
    served: 0,
    underReplicated: 0,
    obsoleteCopies: 0,
    largest: 0,
    minorityRefused: 0,
    minorityMarked: 0,
  };
}

interface Call {
  readonly seq: number;
  readonly kind: "commit" | "update";
  readonly name: string;
}

/** Bytes of commit `seq`: a header that makes them unique, then `size` seeded bytes. */
export function bodyOf(seq: number, name: string, size: number, seed: number): Uint8Array {
  const header = new TextEncoder().encode(`${name}#${seq}\n`);
  const bytes = new Uint8Array(header.byteLength + size);
  bytes.set(header);
  const random = seededRandom(seed);
  for (let i = header.byteLength; i < bytes.byteLength; i += 4) {
    const word = Math.floor(random.next() * 0x1_0000_0000);
    for (let j = 0; j < 4 && i + j < bytes.byteLength; j++) bytes[i + j] = (word >>> (8 * j)) & 0xff;
  }
  return bytes;
}

export class FilesHarness {
  readonly cluster: SimCluster;
  readonly kv: SimKv;
  readonly history: FileHistory;
  readonly #config: FilesConfig;
  readonly #clients: FileClient[] = [];
  readonly #faults: Faults;
  readonly #calls = new Map<number, Call>();
  #seq = 0;
  #absorbed = 0;
  #coordinator: NodeId | undefined;
  /** The first violation seen inside a callback; the run stops at the next event. */
  #failure: unknown;
  readonly #log: TraceLog;
  readonly #coverage: FilesCoverage = emptyFilesCoverage();
  readonly #minority = new MinorityWatch();

  /** `commitOnce`: enforce the invariant of that name (see FILES_INVARIANTS), else count its breaches. */
  constructor(
    config: FilesConfig,
    mutation: FilesMutation = {},
    checks: { readonly commitOnce?: boolean } = {},
  ) {
    this.#config = config;
    this.history = new FileHistory({ commitOnce: checks.commitOnce ?? true });
    const plantReplicas = mutation.replicas;
    this.cluster = new SimCluster({
      seed: config.seed,
      servers: SERVERS,
      latencyMs: { min: 1, max: config.latencyMaxMs },
      election: { passive: config.passive },
      files: { ...FILE_SETTINGS, replicationFactor: config.replicationFactor ?? REPLICATION_FACTOR },
      quorum: config.quorum ?? false,
      ...(mutation.quorumGate ? { quorumGate: mutation.quorumGate } : {}),
      // The store as nats-server 2.9.10 is: two compare-and-sets of one key within a Raft round may both succeed.
      kv: { casRaftMs: CAS_RAFT_MS },
      ...(plantReplicas ? { replicaStore: plantReplicas } : {}),
      ...(mutation.catalogWrites ? { catalogWrites: mutation.catalogWrites } : {}),
    });
    if (this.cluster.kv === undefined) throw new Error("the cluster runs no election");
    this.#log = new TraceLog(() => this.now);
    this.#faults = new Faults({
      cluster: this.cluster,
      servers: SERVERS,
      serverOf: (id) => this.serverOf(id),
      record: (what) => this.note(what),
    });
    const kv = this.cluster.kv;
    this.kv = kv;
    const plantStore = mutation.store;
    if (plantStore !== undefined) {
      const client = kv.client.bind(kv);
      kv.client = (host) => plantStore(client(host), kv);
    }
    for (let i = 0; i < CLIENTS; i++) {
      const host = `client-${i}`;
      this.#clients.push(
        new FileClient({
          transport: this.cluster.network.connect(host, { server: config.clientServer[i] ?? 0 }),
          subjects: subjects("dvs"),
          clock: this.cluster.network.hostClock(host),
          newCommitId: () => `m${this.#seq}`, // unused: every commit names its id
          ...CLIENT_SETTINGS,
        }),
      );
    }
  }

  get now(): number {
    return this.cluster.clock.now();
  }

  get coverage(): FilesCoverage {
    return { ...this.#coverage, recordedAgain: this.history.recordedAgain.length };
  }

  serverOf(id: NodeId): number {
    return this.#config.serverOf[id - 1] ?? 0;
  }

  /** The node that holds a term now, if any. */
  coordinator(): NodeId | undefined {
    for (const [id, node] of this.cluster.nodes) if (node.election?.state().term) return id;
    return undefined;
  }

  /** The running nodes named as holders of the file's newest recorded version. */
  holdersOf(name: string): NodeId[] {
    const current = this.history.current(name);
    if (current === undefined) return [];
    return this.history
      .holders(name, current.version, current.sha256)
      .filter((id) => this.cluster.nodes.has(id));
  }

  /** Starts every node and lets the election settle and the servers hear each other. */
  async begin(): Promise<void> {
    for (const id of NODE_IDS) this.cluster.start(id, this.serverOf(id));
    this.note(`begin: ${this.#placement()}`);
    await this.#run(2_000);
  }

  /** Starts a COMMIT of `size` seeded bytes (plus a unique header) without waiting for it. */
  async commit(client: number, name: string, size: number, seed: number): Promise<void> {
    const seq = ++this.#seq;
    const bytes = bodyOf(seq, name, size, seed);
    const commit: SentCommit = { seq, name, bytes, sha256: sha256Of(bytes), startedAt: this.now };
    this.history.commitSent(commit);
    this.#coverage.commits++;
    this.#coverage.largest = Math.max(this.#coverage.largest, bytes.byteLength);
    this.note(`commit #${seq} c${client} ${name} ${bytes.byteLength} B (${short(commit.sha256)})`);
    const call = this.#begin({ seq, kind: "commit", name });
    this.#client(client)
      .commit(name, bytesSource(bytes), { commit: `m${seq}` })
      .then(
        (answer) =>
          this.#end(call, `SUCCESS v${answer.version} holders [${answer.holders.join(",")}]`, () => {
            this.#coverage.successes++;
            const ack = {
              seq,
              name,
              version: answer.version,
              sha256: answer.sha256,
              holders: answer.holders,
              at: this.now,
            };
            this.history.succeeded(ack, commit);
            this.history.checkDurable(
              ack,
              (node) =>
                this.cluster.disk(node).load({ name, version: ack.version, sha256: ack.sha256 }) !==
                undefined,
            );
          }),
        (error: unknown) =>
          this.#end(call, `failed: ${describeError(error)}`, () => {
            this.#coverage.commitErrors++;
            if ((error as { code?: unknown }).code === "EROFS") this.#coverage.minorityRefused++;
          }),
      );
    await this.#run(0);
  }

  /** Starts an UPDATE without waiting for it. */
  async update(client: number, name: string): Promise<void> {
    this.#startUpdate(client, name);
    await this.#run(0);
  }

  async crash(id: NodeId): Promise<void> {
    this.#faults.crash(id);
    await this.#run(0);
  }

  /** Crashes several nodes at the same instant. */
  async crashAll(ids: readonly NodeId[], why: string): Promise<void> {
    for (const id of ids) this.cluster.crash(id);
    this.note(`crash [${ids.join(",")}] (${why})`);
    await this.#run(0);
  }

  /** Starts a crashed node again: its disk is what it was (unless wiped). */
  async restart(id: NodeId): Promise<void> {
    this.#faults.restart(id);
    await this.#run(0);
  }

  /** Crashes the node (if running) and gives it an empty disk: every replica it held is lost for good. */
  async wipe(id: NodeId): Promise<void> {
    const held = this.cluster
      .disk(id)
      .list()
      .map((f) => `${f.name}@v${f.version}`);
    this.cluster.crash(id);
    this.cluster.disks.set(id, new SimDisk());
    this.history.diskWiped(id, this.now);
    this.#coverage.wipes++;
    this.note(`wipe(${id}): crashed, disk [${held.join(" ")}] lost`);
    await this.#run(0);
  }

  async cutLink(id: NodeId): Promise<void> {
    this.#faults.cutLink(id);
    await this.#run(0);
  }

  async restoreLink(id: NodeId): Promise<void> {
    this.#faults.restoreLink(id);
    await this.#run(0);
  }

  async cutRoute(a: number, b: number): Promise<void> {
    this.#faults.cutRoute(a, b);
    await this.#run(0);
  }

  async restoreRoute(a: number, b: number): Promise<void> {
    this.#faults.restoreRoute(a, b);
    await this.#run(0);
  }

  /** Cuts both routes of one server: its nodes and clients are a minority. */
  async isolate(server: number): Promise<void> {
    this.#faults.isolate(server);
    await this.#run(0);
  }

  /** Adds `ms` to every delivery and store hop of the node's traffic (0 removes it): a slow coordinator outlives its term. */
  async delay(id: NodeId, ms: number): Promise<void> {
    this.#faults.delay(id, ms);
    await this.#run(0);
  }

  async advance(ms: number): Promise<void> {
    this.note(`advance(${ms})`);
    await this.#run(ms);
  }

  /** Restores every link and route, removes every delay (crashed nodes stay down), and lets the election settle. */
  async heal(ms: number): Promise<void> {
    this.#faults.heal();
    this.note(`heal links and routes, wait ${ms}`);
    await this.#run(ms);
  }

  /**
   * The end of a run: heal the network, restart every node that is down (on
   * the disk it has), let every call end, give repair its time, then UPDATE
   * every file and check that its newest recorded version is served byte for
   * byte unless every holder of it was wiped.
   */
  async finish(): Promise<void> {
    this.#faults.heal();
    const down = NODE_IDS.filter((id) => !this.cluster.nodes.has(id));
    for (const id of down) this.cluster.start(id, this.serverOf(id));
    this.note(`final heal: links and routes restored, restarted [${down.join(",")}]`);
    await this.#run(CALL_BOUND_MS, () => this.#calls.size === 0);
    if (this.#calls.size > 0) {
      const open = [...this.#calls.values()].map((c) => `${c.kind} #${c.seq} of ${c.name}`);
      this.#fail(
        new InvariantViolation(
          FILES_INVARIANTS.callsEnd,
          `${open.join(", ")} still running ${CALL_BOUND_MS} ms after the final heal`,
        ),
      );
    }
    await this.#run(REPAIR_WAIT_MS);
    this.note("final check: UPDATE every file");
    for (const name of FILE_NAMES) {
      const current = this.history.current(name);
      let outcome = await this.#finalUpdate(name);
      // A failed read is retried once after another repair round: the invariant is about loss, not speed.
      if ("error" in outcome && current !== undefined) {
        await this.#run(2 * (FILE_SETTINGS.repairEveryMs ?? 2_000));
        outcome = await this.#finalUpdate(name);
      }
      if (
        current !== undefined &&
        this.history.survivors(name, current.version, current.sha256).length === 0
      ) {
        this.#coverage.excused++;
        this.note(`${name} v${current.version}: every holder was wiped; not required`);
      } else if (current !== undefined) {
        this.#coverage.served++;
        const copies = NODE_IDS.filter(
          (id) =>
            this.cluster.disk(id).load({ name, version: current.version, sha256: current.sha256 }) !==
            undefined,
        );
        const obsolete = NODE_IDS.flatMap((id) =>
          this.cluster
            .disk(id)
            .list()
            .filter((f) => f.name === name && (f.version !== current.version || f.sha256 !== current.sha256))
            .map((f) => `n${id}:v${f.version}`),
        );
        this.#coverage.obsoleteCopies += obsolete.length;
        if (obsolete.length > 0) this.note(`${name}: obsolete copies left [${obsolete.join(" ")}]`);
        if (copies.length < (this.#config.replicationFactor ?? REPLICATION_FACTOR)) {
          this.#coverage.underReplicated++;
          this.note(`${name} v${current.version} is on ${copies.length} disks only: [${copies.join(",")}]`);
        }
      }
      this.#check(() => checkServed(this.history, name, outcome));
    }
  }

  async #finalUpdate(name: string): Promise<Fetched | { error: string }> {
    const done = this.#startUpdate(0, name);
    await this.#run(CALL_BOUND_MS, () => this.#calls.size === 0);
    return done;
  }

  /** Starts an UPDATE; resolves with what it returned (already checked) or its error. */
  #startUpdate(client: number, name: string): Promise<Fetched | { error: string }> {
    const seq = ++this.#seq;
    const floor = this.history.floor(name);
    const startedAt = this.now;
    this.#coverage.updates++;
    this.note(`update #${seq} c${client} ${name}${floor ? ` (not below v${floor.version})` : ""}`);
    const call = this.#begin({ seq, kind: "update", name });
    let sink = memorySink();
    return this.#client(client)
      .update(name, () => {
        sink = memorySink();
        return sink;
      })
      .then(
        (answer) => {
          const fetched: Fetched = {
            seq,
            name,
            version: answer.version,
            sha256: answer.sha256,
            bytes: sink.bytes(),
            startedAt,
            at: this.now,
          };
          this.#end(call, `FILE v${answer.version} (${short(answer.sha256)}) from n${answer.source}`, () => {
            this.#coverage.fetched++;
            this.history.fetched(fetched, floor);
          });
          return fetched;
        },
        (error: unknown) => {
          const why = describeError(error);
          this.#end(call, `failed: ${why}`, () => {
            this.#coverage.updateErrors++;
            this.#minority.checkRead(seq, name, error);
          });
          return { error: why };
        },
      );
  }

  #client(i: number): FileClient {
    const client = this.#clients[i % CLIENTS];
    if (client === undefined) throw new Error(`no client ${i}`);
    return client;
  }

  #begin(call: Call): Call {
    this.#calls.set(call.seq, call);
    return call;
  }

  /** A call ended: log it, run its checks (a violation stops the run at the next event). */
  #end(call: Call, outcome: string, check: () => void): void {
    this.#calls.delete(call.seq);
    if ([...this.#calls.values()].some((c) => c.name === call.name)) this.#coverage.concurrent++;
    this.#log.add(`  ${call.kind} #${call.seq} ${call.name}: ${outcome}`);
    try {
      check();
    } catch (error) {
      this.#failure ??= error;
    }
  }

  /**
   * Runs the simulation for `ms` (or until `until` holds), reading the
   * catalog's new writes and checking them after every event.
   */
  async #run(ms: number, until?: () => boolean): Promise<void> {
    await this.cluster.clock.runUntil(() => {
      try {
        this.#observe();
      } catch (error) {
        this.#failure ??= error;
      }
      return this.#failure !== undefined || until?.() === true;
    }, ms);
    if (this.#failure !== undefined) this.#fail(this.#failure);
  }

  #observe(): void {
    this.#coverage.checks++;
    const coordinator = this.coordinator();
    if (coordinator !== this.#coordinator) {
      if (coordinator !== undefined) {
        this.#coverage.coordinatorChanges++;
        this.#log.add(`  n${coordinator} is coordinator`);
      } else this.#log.add("  no coordinator");
      this.#coordinator = coordinator;
    }
    for (const change of this.#minority.observe(this.now, this.cluster.nodes)) {
      if (change.includes("marks itself")) this.#coverage.minorityMarked++;
      this.#log.add(`  ${change}`);
    }
    const writes = this.kv.writes;
    for (; this.#absorbed < writes.length; this.#absorbed++) {
      const w = writes[this.#absorbed];
      if (w === undefined || !w.entry.key.startsWith(catalogKey(""))) continue;
      const decoded = decode(w.entry.value, "json");
      const parsed = decoded.ok ? catalogRecordSchema.safeParse(decoded.value) : undefined;
      if (!parsed?.success) {
        throw new InvariantViolation(
          FILES_INVARIANTS.versionsGrow,
          `${w.host} wrote an unreadable catalog record under ${w.entry.key} at t=${w.at}`,
        );
      }
      const r = parsed.data;
      this.#coverage.recorded++;
      this.#log.add(
        `  catalog: ${w.host} recorded ${r.name} v${r.version} (${short(r.sha256)}, commit ${r.commit}, epoch ${r.epoch}) holders [${r.holders.join(",")}]`,
        w.at,
      );
      const again = this.history.recordedAgain.length;
      const write = {
        name: r.name,
        version: r.version,
        sha256: r.sha256,
        commit: r.commit,
        epoch: r.epoch,
        holders: r.holders,
        at: w.at,
        host: w.host,
      };
      this.#minority.checkRecorded(write, this.history.sent.get(r.name)?.get(r.sha256)?.startedAt);
      this.history.recorded(write);
      const recordedAgain = this.history.recordedAgain[again];
      if (recordedAgain !== undefined) this.#log.add(`  note: ${recordedAgain}`, w.at);
    }
  }

  #check(run: () => void): void {
    try {
      run();
    } catch (error) {
      this.#fail(error);
    }
  }

  #fail(error: unknown): never {
    failWithTrace(error, () => this.trace());
  }

  /** A line of the trace. */
  note(what: string): void {
    this.#coverage.steps++;
    this.#log.add(what);
  }

  #placement(): string {
    const nodes = NODE_IDS.map(
      (id) => `n${id}@s${this.serverOf(id)}${this.#config.passive.includes(id) ? "(passive)" : ""}`,
    );
    const clients = this.#config.clientServer.map((s, i) => `c${i}@s${s}`);
    const quorum = this.#config.quorum ? "; quorum mode" : "";
    return `latency 1..${this.#config.latencyMaxMs} ms${quorum}; ${[...nodes, ...clients].join(" ")}`;
  }

  /** What happened, for a counterexample. */
  trace(): string {
    const lines = ["commands, calls and catalog writes (simulated ms):", ...this.#log.lines(TRACE_LINES)];
    lines.push(
      `topology at t=${this.now}: ${this.#placement()}`,
      `  ${this.#faults.describeCuts()}; ${this.#faults.describeDelays()}`,
      `  running: [${[...this.cluster.nodes.keys()].sort().join(",")}]; coordinator: ${
        this.coordinator() ?? "none"
      }; wiped: [${this.history.wipes.map((w) => `n${w.node}@t=${w.at}`).join(", ")}]`,
      `  calls in flight: [${[...this.#calls.values()].map((c) => `${c.kind} #${c.seq}`).join(", ")}]`,
      "disks:",
    );
    for (const id of NODE_IDS) {
      const files = this.cluster
        .disk(id)
        .list()
        .map((f) => `${f.name}@v${f.version}(${short(f.sha256)})`)
        .sort();
      lines.push(`  n${id}: ${files.join(" ") || "empty"}`);
    }
    lines.push("catalog now:");
    for (const name of FILE_NAMES) {
      const entry = this.kv.peek(catalogKey(name));
      const decoded = entry ? decode(entry.value, "json") : undefined;
      const r = decoded?.ok ? catalogRecordSchema.safeParse(decoded.value) : undefined;
      lines.push(
        `  ${name}: ${
          r?.success
            ? `v${r.data.version} (${short(r.data.sha256)}) holders [${r.data.holders.join(",")}] rev ${entry?.revision}`
            : "no record"
        }`,
      );
    }
    return lines.join("\n");
  }
}

function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return `${typeof code === "string" ? `${code} ` : ""}${error.message}`.slice(0, 240);
  }
  return String(error);
}
