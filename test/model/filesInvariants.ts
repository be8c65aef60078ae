// The invariants of the file store model (SPEC 8, 9), as checks over what the
// harness records: the bytes every COMMIT sent, the catalog's writes in the
// coordinator store, the SUCCESS and FILE answers the clients got, and which
// nodes had their disk wiped (a holder lost for good). Each failure is an
// InvariantViolation naming the invariant; the harness adds the trace.
import { createHash } from "node:crypto";
import type { NodeId } from "../../protocol/messages.js";
import { InvariantViolation } from "./invariants.js";

export { InvariantViolation };

/** The invariants by the names their violations carry (tests match on these). */
export const FILES_INVARIANTS = {
  successUnique: "two SUCCESSes for one version of a file carry the same bytes",
  successRecorded: "a SUCCESS names the committed bytes under a version the catalog recorded",
  successDurable: "when a SUCCESS arrives, each holder it names has the version on its disk",
  versionsGrow: "a file's recorded versions never go backwards, and one version names one content",
  /** One commit id is recorded as one version: a retry of a recorded commit is answered with it (the record remembers earlier ids). */
  commitOnce: "a commit (one id, however often it is retried) is recorded as one version",
  updateNotOlder:
    "an UPDATE started after a SUCCESS (or an UPDATE's answer) returns that version or a newer one",
  bytesCommitted: "an UPDATE returns, byte for byte, what a COMMIT sent under the version it was recorded as",
  noLoss:
    "after a heal and repair, UPDATE returns the newest recorded version while one of its holders survives",
  callsEnd: "every client call ends by its deadline",
  /** Quorum mode (docs/protocol.md 9.5): a node marked minority records no new version. */
  minorityCommit: "a COMMIT accepted while the committing node was in a minority never happens",
  minorityReads: "a minority still answers reads: no UPDATE is refused as read-only",
} as const;

export const sha256Of = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");

/** A hash as the trace shows it. */
export const short = (sha: string): string => sha.slice(0, 8);

/** One COMMIT a client sent: its bytes are what every later answer about them is checked against. */
export interface SentCommit {
  readonly seq: number;
  readonly name: string;
  readonly bytes: Uint8Array;
  readonly sha256: string;
  readonly startedAt: number;
}

/** One write of a file's catalog record, as the model reads `SimKv.writes`. */
export interface CatalogWrite {
  readonly name: string;
  readonly version: number;
  readonly sha256: string;
  readonly commit: string;
  readonly epoch: number;
  readonly holders: readonly NodeId[];
  readonly at: number;
  readonly host: string;
}

/** A SUCCESS a client got. */
export interface Acknowledged {
  readonly seq: number;
  readonly name: string;
  readonly version: number;
  readonly sha256: string;
  readonly holders: readonly NodeId[];
  readonly at: number;
}

/** What an UPDATE returned: the identity the coordinator named and the bytes the client read. */
export interface Fetched {
  readonly seq: number;
  readonly name: string;
  readonly version: number;
  readonly sha256: string;
  readonly bytes: Uint8Array;
  readonly startedAt: number;
  readonly at: number;
}

/**
 * The version an UPDATE must not go below: the newest a SUCCESS named, or an
 * UPDATE returned, before it started (what the client has already seen).
 */
export interface Floor {
  readonly version: number;
  readonly sha256: string;
  readonly at: number;
  /** Which answer set it, for the trace. */
  readonly by: string;
}

const versionKey = (name: string, version: number): string => `${version}\u0000${name}`;

/**
 * Everything the model knows about the files of one run, with the checks made
 * as each fact arrives (a catalog write at the instant it happens, an answer
 * when its call ends).
 */
export class FileHistory {
  /** Per file, per SHA-256: the COMMIT that sent those bytes (each body is unique). */
  readonly sent = new Map<string, Map<string, SentCommit>>();
  /** Per file, the catalog's writes in the order they took effect. */
  readonly catalog = new Map<string, CatalogWrite[]>();
  readonly acknowledged: Acknowledged[] = [];
  /** UPDATEs that returned a file and passed their checks. */
  readonly fetches: Fetched[] = [];
  /** Per (file, version), the hash its first SUCCESS carried. */
  readonly #ackedAt = new Map<string, Acknowledged>();
  /** Per (file, version), the hash the catalog recorded. */
  readonly #recordedAt = new Map<string, string>();
  /** Per (file, version, hash), every node named as its holder by a SUCCESS or a catalog write. */
  readonly #holders = new Map<string, Set<NodeId>>();
  /** Per commit id (unique in a run), the version it was recorded as. */
  readonly #versionOfCommit = new Map<string, number>();
  /** Commits recorded as a second version (when `commitOnce` is not enforced): for the report. */
  readonly recordedAgain: string[] = [];
  /** Disks wiped: node and when. */
  readonly wipes: { readonly node: NodeId; readonly at: number }[] = [];

  /** `commitOnce`: a commit recorded as a second version is a violation, not only counted. */
  constructor(readonly options: { readonly commitOnce: boolean } = { commitOnce: false }) {}

  commitSent(commit: SentCommit): void {
    let byHash = this.sent.get(commit.name);
    if (byHash === undefined) {
      byHash = new Map();
      this.sent.set(commit.name, byHash);
    }
    byHash.set(commit.sha256, commit);
  }

  diskWiped(node: NodeId, at: number): void {
    this.wipes.push({ node, at });
  }

  /**
   * A catalog write: a file's versions only grow, the same version is only
   * rewritten with the same bytes (repair adds holders), and the bytes are
   * ones a client committed under that name.
   */
  recorded(write: CatalogWrite): void {
    const writes = this.catalog.get(write.name) ?? [];
    this.catalog.set(write.name, writes);
    const last = writes.at(-1);
    writes.push(write);
    const what = `${write.host} wrote ${write.name} v${write.version} (${short(write.sha256)}, commit ${write.commit}, epoch ${write.epoch}) at t=${write.at}`;
    if (last !== undefined && write.version < last.version) {
      throw new InvariantViolation(
        FILES_INVARIANTS.versionsGrow,
        `${what} over v${last.version} (${short(last.sha256)}) written by ${last.host} at t=${last.at}`,
      );
    }
    const before = this.#recordedAt.get(versionKey(write.name, write.version));
    if (before !== undefined && before !== write.sha256) {
      throw new InvariantViolation(
        FILES_INVARIANTS.versionsGrow,
        `${what}, but v${write.version} was recorded as ${short(before)} before`,
      );
    }
    if (this.sent.get(write.name)?.get(write.sha256) === undefined) {
      throw new InvariantViolation(
        FILES_INVARIANTS.bytesCommitted,
        `${what}: no COMMIT of ${write.name} sent those bytes`,
      );
    }
    const first = this.#versionOfCommit.get(write.commit);
    if (first !== undefined && first !== write.version) {
      const again = `${what}, but commit ${write.commit} was recorded as v${first} before: readers can see its bytes, then a later commit's, then its bytes again`;
      if (this.options.commitOnce) throw new InvariantViolation(FILES_INVARIANTS.commitOnce, again);
      this.recordedAgain.push(again);
    }
    this.#versionOfCommit.set(write.commit, write.version);
    this.#recordedAt.set(versionKey(write.name, write.version), write.sha256);
    this.#addHolders(write.name, write.version, write.sha256, write.holders);
  }

  /**
   * A SUCCESS: it carries the hash of the bytes its own COMMIT sent, under a
   * version the catalog recorded with those bytes; no other SUCCESS named other
   * bytes for that version. (With the catalog's versions only growing, the
   * SUCCESSes of a file never go backwards in the order they were recorded.)
   */
  succeeded(ack: Acknowledged, commit: SentCommit): void {
    const what = `commit #${ack.seq} of ${ack.name} answered SUCCESS v${ack.version} (${short(ack.sha256)}) holders [${ack.holders.join(",")}] at t=${ack.at}`;
    if (ack.sha256 !== commit.sha256) {
      throw new InvariantViolation(
        FILES_INVARIANTS.successRecorded,
        `${what}, but it sent ${short(commit.sha256)}`,
      );
    }
    const other = this.#ackedAt.get(versionKey(ack.name, ack.version));
    if (other !== undefined && other.sha256 !== ack.sha256) {
      throw new InvariantViolation(
        FILES_INVARIANTS.successUnique,
        `${what}; commit #${other.seq} was answered SUCCESS v${other.version} with ${short(other.sha256)} at t=${other.at}`,
      );
    }
    const recorded = this.#recordedAt.get(versionKey(ack.name, ack.version));
    if (recorded !== ack.sha256) {
      throw new InvariantViolation(
        FILES_INVARIANTS.successRecorded,
        `${what}, but the catalog ${
          recorded === undefined ? "never recorded that version" : `recorded it as ${short(recorded)}`
        }`,
      );
    }
    this.acknowledged.push(ack);
    if (other === undefined) this.#ackedAt.set(versionKey(ack.name, ack.version), ack);
    this.#addHolders(ack.name, ack.version, ack.sha256, ack.holders);
  }

  /** The newest SUCCESS of `name` so far. */
  newestAcknowledged(name: string): Acknowledged | undefined {
    let newest: Acknowledged | undefined;
    for (const ack of this.acknowledged)
      if (ack.name === name && (newest === undefined || ack.version > newest.version)) newest = ack;
    return newest;
  }

  /** What an UPDATE of `name` starting now must not go below (undefined: anything goes). */
  floor(name: string): Floor | undefined {
    const ack = this.newestAcknowledged(name);
    let floor: Floor | undefined = ack && {
      version: ack.version,
      sha256: ack.sha256,
      at: ack.at,
      by: `commit #${ack.seq} was answered SUCCESS v${ack.version}`,
    };
    for (const f of this.fetches) {
      if (f.name === name && (floor === undefined || f.version > floor.version))
        floor = {
          version: f.version,
          sha256: f.sha256,
          at: f.at,
          by: `update #${f.seq} returned v${f.version}`,
        };
    }
    return floor;
  }

  /**
   * An UPDATE that returned: the bytes it read hash to what the coordinator
   * named, a COMMIT of that file sent exactly those bytes, and the catalog
   * recorded them under the version returned. It is not older than the newest
   * version a SUCCESS named or an UPDATE returned before it started, as long as
   * a holder of that version was not lost for good (see `survivors`).
   */
  fetched(fetch: Fetched, floor: Floor | undefined): void {
    const what = `update #${fetch.seq} of ${fetch.name} (started t=${fetch.startedAt}) returned v${fetch.version} (${short(fetch.sha256)}, ${fetch.bytes.byteLength} bytes) at t=${fetch.at}`;
    const actual = sha256Of(fetch.bytes);
    const commit = this.sent.get(fetch.name)?.get(fetch.sha256);
    if (actual !== fetch.sha256 || commit === undefined || Buffer.compare(commit.bytes, fetch.bytes) !== 0) {
      throw new InvariantViolation(
        FILES_INVARIANTS.bytesCommitted,
        `${what}: the bytes hash to ${short(actual)}${
          commit === undefined ? ", and no COMMIT of that file sent that hash" : ""
        }`,
      );
    }
    const recorded = this.#recordedAt.get(versionKey(fetch.name, fetch.version));
    if (recorded !== fetch.sha256) {
      throw new InvariantViolation(
        FILES_INVARIANTS.bytesCommitted,
        `${what}, but the catalog ${
          recorded === undefined
            ? "never recorded that version"
            : `recorded v${fetch.version} as ${short(recorded)}`
        } (commit #${commit.seq} sent those bytes)`,
      );
    }
    if (
      floor !== undefined &&
      fetch.version < floor.version &&
      this.survivors(fetch.name, floor.version, floor.sha256).length > 0
    ) {
      throw new InvariantViolation(
        FILES_INVARIANTS.updateNotOlder,
        `${what}, after ${floor.by} at t=${floor.at}`,
      );
    }
    this.fetches.push(fetch);
  }

  /**
   * A SUCCESS promises the version is on disk (fsync) on the holders it
   * names: each one has it on its simulated disk (what survives a crash) when
   * the answer arrives, unless its disk was wiped since the commit started or
   * a newer version was recorded since (whose COMMITTED lets the holders drop
   * this one).
   */
  checkDurable(ack: Acknowledged, onDisk: (node: NodeId) => boolean): void {
    const current = this.current(ack.name);
    if (current?.version !== ack.version) return;
    const since = this.sent.get(ack.name)?.get(ack.sha256)?.startedAt ?? 0;
    const missing = ack.holders.filter(
      (node) => !this.wipes.some((w) => w.node === node && w.at >= since) && !onDisk(node),
    );
    if (missing.length > 0) {
      throw new InvariantViolation(
        FILES_INVARIANTS.successDurable,
        `commit #${ack.seq} of ${ack.name} was answered SUCCESS v${ack.version} (${short(ack.sha256)}) holders [${ack.holders.join(",")}] at t=${ack.at}, but ${missing
          .map((n) => `n${n}`)
          .join(", ")} ha${missing.length === 1 ? "s" : "ve"} no such replica on disk`,
      );
    }
  }

  /** Every node named as a holder of this version (by its SUCCESS or a catalog write). */
  holders(name: string, version: number, sha256: string): NodeId[] {
    return [...(this.#holders.get(`${sha256}.${versionKey(name, version)}`) ?? [])].sort((a, b) => a - b);
  }

  /**
   * The named holders of a version not lost for good: a holder is lost when
   * its disk was wiped after the COMMIT of those bytes started (it may have
   * been wiped before it got the copy: then it is counted lost anyway). A
   * holder that merely crashed keeps its disk. SUCCESS names replication-factor
   * holders, so "fewer than that many lost" implies one survives.
   */
  survivors(name: string, version: number, sha256: string): NodeId[] {
    const since = this.sent.get(name)?.get(sha256)?.startedAt ?? 0;
    return this.holders(name, version, sha256).filter(
      (node) => !this.wipes.some((w) => w.node === node && w.at >= since),
    );
  }

  /** The catalog's current record of `name` as the model read it. */
  current(name: string): CatalogWrite | undefined {
    return this.catalog.get(name)?.at(-1);
  }

  #addHolders(name: string, version: number, sha256: string, holders: readonly NodeId[]): void {
    const key = `${sha256}.${versionKey(name, version)}`;
    const set = this.#holders.get(key) ?? new Set<NodeId>();
    for (const h of holders) set.add(h);
    this.#holders.set(key, set);
  }
}

/**
 * After the final heal and repair: the catalog's current version of a file
 * (never older than its newest SUCCESS) is served, byte for byte, while one of
 * its holders survives. `fetch` is what the final UPDATE returned, or its error.
 */
export function checkServed(
  history: FileHistory,
  name: string,
  fetch: Fetched | { readonly error: string },
): void {
  const current = history.current(name);
  const newest = history.newestAcknowledged(name);
  if (current === undefined) {
    if (newest !== undefined) {
      throw new InvariantViolation(
        FILES_INVARIANTS.noLoss,
        `${name} was answered SUCCESS v${newest.version} but has no catalog record`,
      );
    }
    return;
  }
  if (newest !== undefined && current.version < newest.version) {
    throw new InvariantViolation(
      FILES_INVARIANTS.versionsGrow,
      `the catalog holds ${name} v${current.version} after SUCCESS v${newest.version}`,
    );
  }
  const survivors = history.survivors(name, current.version, current.sha256);
  if (survivors.length === 0) return;
  const wanted = `${name} v${current.version} (${short(current.sha256)}; holders [${history
    .holders(name, current.version, current.sha256)
    .join(",")}], not wiped since its commit started: [${survivors.join(",")}])`;
  if ("error" in fetch) {
    throw new InvariantViolation(FILES_INVARIANTS.noLoss, `UPDATE of ${wanted} failed: ${fetch.error}`);
  }
  if (fetch.version !== current.version || fetch.sha256 !== current.sha256) {
    throw new InvariantViolation(
      FILES_INVARIANTS.noLoss,
      `UPDATE returned v${fetch.version} (${short(fetch.sha256)}), wanted ${wanted}`,
    );
  }
}
