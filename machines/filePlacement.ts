// The file store's decisions (SPEC 8, seed 002), pure: which active server a
// coordinator delegates to, which servers an active server asks for replicas
// (passive first, then itself, then other actives), who holds a version (from
// ALIVE lists and the catalog), whether a version needs repair, and which old
// copies a COMMITTED makes obsolete, what a holder does with a DISCARD, how
// long a transfer may take, and what a recorded commit answers. The roles in actors/files/ perform them.
import {
  type CatalogRecord,
  CHUNK_BYTES,
  type FileAnswer,
  type FileIdentity,
  RECENT_COMMITS,
} from "../protocol/files.js";
import { type HeldFile, type NodeId, PROTOCOL_VERSION, type ServerType } from "../protocol/messages.js";
import type { ServerRecord } from "./server.js";

/** A server as the file store sees it: from SERVER/ALIVE, or this node itself. */
export interface ServerView {
  readonly node: NodeId;
  readonly type: ServerType;
  readonly files: readonly HeldFile[];
  /** When this server was last heard from (ALIVE comes every STATUS period). */
  readonly seenAt: number;
}

export interface Self {
  readonly node: NodeId;
  readonly type: ServerType;
  readonly files: readonly HeldFile[];
}

/** Servers heard within `liveMs` of `at` (three STATUS periods), and this node itself, by id. */
export function liveServers(
  servers: Readonly<Record<string, ServerRecord>>,
  self: Self,
  at: number,
  liveMs: number,
): ServerView[] {
  const live: ServerView[] = Object.entries(servers)
    .filter(([id, s]) => Number(id) !== self.node && at - s.seenAt <= liveMs)
    .map(([id, s]) => ({ node: Number(id), type: s.type, files: s.files, seenAt: s.seenAt }));
  live.push({ ...self, seenAt: at });
  return live.sort((a, b) => a.node - b.node);
}

/**
 * The active servers to delegate to, in the order to try them: starting after
 * `turn` (round robin spreads the work), this node last among equals so it
 * keeps room for coordinating. No active server at all: this node does it.
 */
export function activeOrder(servers: readonly ServerView[], self: NodeId, turn: number): NodeId[] {
  const actives = servers.filter((s) => s.type === "active").map((s) => s.node);
  if (actives.length === 0) return [self];
  const start = turn % actives.length;
  const rotated = [...actives.slice(start), ...actives.slice(0, start)];
  const others = rotated.filter((n) => n !== self);
  return rotated.includes(self) ? [...others, self] : others;
}

/**
 * Where an active server places replicas, in the order to ask (seed 002):
 * passive servers (fewest files first, then lowest id), then a local replica,
 * then the other active servers. `exclude` are servers that already hold it.
 */
export function holderCandidates(
  servers: readonly ServerView[],
  self: NodeId,
  exclude: ReadonlySet<NodeId> = new Set(),
): NodeId[] {
  const byLoad = (a: ServerView, b: ServerView) => a.files.length - b.files.length || a.node - b.node;
  const open = servers.filter((s) => !exclude.has(s.node));
  const passives = open.filter((s) => s.type === "passive" && s.node !== self).sort(byLoad);
  const local = open.some((s) => s.node === self) ? [self] : [];
  const actives = open.filter((s) => s.type === "active" && s.node !== self).sort(byLoad);
  return [...passives.map((s) => s.node), ...local, ...actives.map((s) => s.node)];
}

export const sameVersion = (a: Pick<HeldFile, "name" | "version" | "sha256">, b: typeof a): boolean =>
  a.name === b.name && a.version === b.version && a.sha256 === b.sha256;

/**
 * Who holds this version now: live servers whose ALIVE lists it, and catalog
 * holders that are live and not heard from since `since` plus a STATUS period
 * (their list may predate the version). `since` is on this node's clock: when
 * it last wrote the record, or when its term began. ALIVE-listed ones first.
 */
export function holdersOf(
  file: Pick<HeldFile, "name" | "version" | "sha256">,
  recorded: { readonly holders: readonly NodeId[]; readonly since: number },
  servers: readonly ServerView[],
  statusMs: number,
): NodeId[] {
  const listed = servers.filter((s) => s.files.some((f) => sameVersion(f, file))).map((s) => s.node);
  const pending = recorded.holders.filter((h) => {
    if (listed.includes(h)) return false;
    const server = servers.find((s) => s.node === h);
    return server !== undefined && server.seenAt < recorded.since + statusMs;
  });
  return [...listed, ...pending];
}

/** How many more holders a version needs to reach the replication factor (0: none; none held: nothing to copy from). */
export function repairNeeded(holders: readonly NodeId[], rf: number): number {
  return holders.length === 0 ? 0 : Math.max(0, rf - holders.length);
}

/** The next version of a file: one more than the recorded one. */
export function nextVersion(recorded: { readonly version: number } | undefined): number {
  return (recorded?.version ?? 0) + 1;
}

/** A coordinator may record a version only over a record from its own term or an older one. */
export function mayRecord(recorded: { readonly epoch: number } | undefined, epoch: number): boolean {
  return recorded === undefined || recorded.epoch <= epoch;
}

/**
 * The copies a server may delete once `committed` is recorded: older versions
 * of that file, and other bytes under the same version (a commit that lost).
 */
export function obsoleteBy(
  held: readonly FileIdentity[],
  committed: Omit<FileIdentity, "size">,
): FileIdentity[] {
  return held.filter(
    (h) =>
      h.name === committed.name &&
      (h.version < committed.version || (h.version === committed.version && h.sha256 !== committed.sha256)),
  );
}

/**
 * The copies a server lists that no record will ever name: older versions,
 * other bytes under a recorded version, and versions past the recorded one
 * (or of a file never recorded) that no commit under way can still record.
 * `busy` are the files with a commit under way, or recorded or started lately.
 */
export function garbageOf(
  listed: readonly HeldFile[],
  recorded: ReadonlyMap<string, Pick<HeldFile, "version" | "sha256">>,
  busy: ReadonlySet<string>,
): HeldFile[] {
  return listed.filter((f) => {
    const record = recorded.get(f.name);
    if (record !== undefined && f.version < record.version) return true;
    if (record !== undefined && f.version === record.version) return f.sha256 !== record.sha256;
    return !busy.has(f.name);
  });
}

/**
 * What a holder does with a copy the coordinator sent DISCARD for, by the
 * file's readable record ("absent": the key is confirmed absent) and whether
 * the copy was ever recorded (its committed mark): "named" when the record
 * names it (refused); "newer" when it was recorded but is past the record, or
 * its file has no record: the catalog is older than the copy (restored from a
 * backup), so it is kept; "discard" otherwise — an older version, other bytes
 * under the recorded version, or a copy no catalog ever recorded.
 */
export type DiscardVerdict = "named" | "newer" | "discard";

export function discardVerdict(
  copy: Pick<HeldFile, "name" | "version" | "sha256">,
  record: Pick<HeldFile, "name" | "version" | "sha256"> | "absent",
  committed: boolean,
): DiscardVerdict {
  if (record !== "absent" && sameVersion(copy, record)) return "named";
  if (committed && (record === "absent" || copy.version > record.version)) return "newer";
  return "discard";
}

/** The settings a transfer's timeout depends on (a subset of the file store's settings). */
export interface TransferSettings {
  readonly requestTimeoutMs: number;
  readonly readTimeoutMs: number;
  readonly readWindow: number;
}

/** How long a transfer of `size` bytes may take end to end, for one hop. */
export function transferTimeoutMs(settings: TransferSettings, size: number): number {
  const rounds = Math.ceil(Math.max(1, Math.ceil(size / CHUNK_BYTES)) / settings.readWindow);
  return 2 * settings.requestTimeoutMs + rounds * settings.readTimeoutMs;
}

/**
 * Whether a coordinator's term is old enough to judge copies garbage at `at`:
 * the last coordinator's writes may still land for two STATUS periods and two
 * control timeouts after the term began.
 */
export function termSettled(
  termStart: number,
  at: number,
  statusMs: number,
  requestTimeoutMs: number,
): boolean {
  return at - termStart >= 2 * statusMs + 2 * requestTimeoutMs;
}

export type Success = Extract<FileAnswer, { type: "SUCCESS" }>;

/** The SUCCESS a client is answered for a recorded version. */
export function successOf(record: CatalogRecord): Success {
  return {
    v: PROTOCOL_VERSION,
    type: "SUCCESS",
    name: record.name,
    version: record.version,
    sha256: record.sha256,
    size: record.size,
    holders: record.holders,
  };
}

/** The answer to a commit id the record names: its own, or one of the earlier commits it remembers. */
export function recordedCommit(record: CatalogRecord, commit: string): Success | undefined {
  if (record.commit === commit) return successOf(record);
  const earlier = record.earlier?.find((e) => e.commit === commit);
  if (earlier === undefined) return undefined;
  // The holders may have dropped that version since.
  return { ...successOf(record), ...earlier, holders: [] };
}

/** The commits a new record remembers: the one it replaces, then those it remembered. */
export function earlierCommits(previous: CatalogRecord | undefined): CatalogRecord["earlier"] {
  if (previous === undefined) return undefined;
  const { commit, version, sha256, size } = previous;
  return [{ commit, version, sha256, size }, ...(previous.earlier ?? [])].slice(0, RECENT_COMMITS);
}
