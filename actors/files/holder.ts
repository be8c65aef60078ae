// The holder role of the file store (SPEC 8, seed 002), on every server: it
// pulls a REPLICA's bytes with READ, checks the hash and writes them to disk
// with fsync before DONE, serves READ, and drops copies the catalog no longer
// names (COMMITTED, DISCARD) — but never a copy some catalog recorded that is
// newer than the catalog it reads now (restored from a backup): it marks a copy
// committed when it learns it was recorded, and keeps and reports it. Whether
// the server has stopped lives in the file server machine
// (machines/fileServer.ts); when each replica was last checked is this
// holder's cache.
import type { Actor } from "xstate";
import { discardVerdict, obsoleteBy } from "../../machines/filePlacement.js";
import { checkDue, type FileServerMachine } from "../../machines/fileServer.js";
import { decode, decodePlain, encodingOf } from "../../protocol/codec.js";
import {
  type CatalogRecord,
  committedSchema,
  type FileIdentity,
  type PeerFileAnswer,
  type PeerFileMessage,
  readRequestSchema,
} from "../../protocol/files.js";
import { PROTOCOL_VERSION } from "../../protocol/messages.js";
import type { Message } from "../../transport/transport.js";
import type { Catalog } from "./catalog.js";
import { type FilePeers, fileError } from "./peers.js";
import { pullReplica } from "./pull.js";
import { keyOf, type ReplicaRef } from "./replicaStore.js";

export class Holder {
  /** When each held replica's hash was last checked (this node's clock), by replica key. */
  readonly #verifiedAt = new Map<string, number>();

  constructor(
    readonly peers: FilePeers,
    readonly catalog: Catalog,
    readonly server: Actor<FileServerMachine>,
  ) {}

  get #stopped(): boolean {
    return this.server.getSnapshot().matches("stopped");
  }

  /**
   * REPLICA: pull the bytes from `source` (in JSON when the committing client
   * asked in JSON), check them, write them to disk with fsync, answer DONE.
   * A copy read from another holder is a repair's, of a recorded version: it
   * is marked committed.
   */
  async hold(
    m: FileIdentity & { readonly epoch: number; readonly sourceEncoding?: "json" | undefined },
    source: string,
  ): Promise<PeerFileAnswer> {
    const { options, settings } = this.peers;
    const identity: FileIdentity = { name: m.name, version: m.version, sha256: m.sha256, size: m.size };
    const done = { v: PROTOCOL_VERSION, type: "DONE", holder: options.self } as const;
    const repair = source.startsWith(this.#readPrefix);
    if (options.replicas.get(identity) !== undefined) {
      if (repair) await this.#markCommitted(identity);
      return done;
    }
    if (!this.#isSource(source)) return fileError("EINVAL", `${source} is not a file source subject`);
    await pullReplica({
      transport: options.transport,
      replicas: options.replicas,
      identity,
      source,
      window: settings.readWindow,
      timeoutMs: settings.readTimeoutMs,
      ...(m.sourceEncoding === "json" ? { encoding: "json" as const } : {}),
    });
    this.#verifiedAt.set(keyOf(identity), this.peers.now());
    if (repair) await this.#markCommitted(identity);
    return done;
  }

  /** What every holder's READ subject starts with. */
  get #readPrefix(): string {
    return this.peers.options.subjects.fileRead(0).replace(/0$/, "");
  }

  #isSource(subject: string): boolean {
    return (
      subject.startsWith(this.peers.options.subjects.fileSource("")) || subject.startsWith(this.#readPrefix)
    );
  }

  /**
   * Marks a held copy committed: a catalog recorded it. A failure is logged;
   * the copy is then only as protected as a copy never recorded.
   */
  async #markCommitted(ref: ReplicaRef): Promise<void> {
    const { replicas } = this.peers.options;
    if (replicas.get(ref) === undefined || replicas.committed(ref)) return;
    try {
      await replicas.markCommitted(ref);
    } catch (e) {
      this.peers.warn(
        `mark:${ref.name}`,
        { err: e, name: ref.name, version: ref.version },
        "could not mark a copy committed",
      );
    }
  }

  /** Whether this server holds the version with good bytes (the hash is re-checked when it was not lately). */
  async servable(ref: ReplicaRef): Promise<boolean> {
    const { replicas, logger } = this.peers.options;
    if (replicas.get(ref) === undefined) return false;
    const key = keyOf(ref);
    if (!checkDue(this.#verifiedAt.get(key), this.peers.now(), this.peers.settings.verifyEveryMs))
      return true;
    const good = await replicas.verify(ref);
    if (good) this.#verifiedAt.set(key, this.peers.now());
    else
      logger.error(
        { name: ref.name, version: ref.version },
        "a replica failed its hash check and was set aside",
      );
    return good;
  }

  async onRead(msg: Message): Promise<void> {
    const encoding = encodingOf(msg);
    const decoded = decodePlain(msg.data, encoding);
    if (!decoded.ok) return this.peers.reply(msg, fileError("EBADMSG", `READ: ${decoded.message}`), encoding);
    const parsed = readRequestSchema.safeParse(decoded.value);
    if (!parsed.success) return this.peers.reply(msg, fileError("EBADMSG", "malformed READ"), encoding);
    const { offset, length, ...ref } = parsed.data;
    try {
      const data = await this.peers.options.replicas.read(ref, offset, length);
      this.peers.reply(msg, { v: PROTOCOL_VERSION, type: "DATA", offset, data }, encoding);
    } catch (e) {
      this.peers.reply(msg, this.peers.failure(e), encoding);
    }
  }

  /**
   * What the catalog says of `name` before this holder drops a copy of it: the
   * readable record, "absent" when the key is confirmed absent, or undefined
   * when it cannot tell (the record does not parse, or the store is out of
   * reach): then nothing is dropped, and that is logged (throttled).
   */
  async #catalogSays(name: string): Promise<CatalogRecord | "absent" | undefined> {
    try {
      const found = await this.catalog.lookup(name);
      if (found.kind === "record") return found.entry.record;
      if (found.kind === "absent") return "absent";
      this.peers.warn(
        `unreadable:${found.error.key}`,
        { name, key: found.error.key },
        "kept the copies of a file whose catalog record cannot be read",
      );
    } catch (e) {
      this.peers.warn("keep", { err: e, name }, "kept copies the catalog could not be read to judge");
    }
    return undefined;
  }

  #remove(copy: ReplicaRef, why: string): void {
    const { replicas, logger } = this.peers.options;
    this.#verifiedAt.delete(keyOf(copy));
    replicas.remove(copy).then(
      () => logger.info({ name: copy.name, version: copy.version }, why),
      (e: unknown) => this.peers.warn("remove", { err: e }, "could not discard a copy"),
    );
  }

  /**
   * DISCARD: the coordinator judged the copy garbage. It goes only when the
   * catalog agrees: the key is absent, or its readable record names another
   * version or other bytes. Never the copy the record names, nor a copy marked
   * committed that is newer than the record, or whose file has none: that
   * catalog is older than the copy (restored from a backup), and the copy is
   * kept and reported.
   */
  async discard(copy: Extract<PeerFileMessage, { type: "DISCARD" }>): Promise<void> {
    const record = await this.#catalogSays(copy.name);
    if (record === undefined || this.#stopped) return;
    if (record !== "absent") await this.#markCommitted(record);
    const committed = this.peers.options.replicas.committed(copy);
    const verdict = discardVerdict(copy, record, committed);
    if (verdict === "named")
      this.peers.warn(
        "discard-named",
        { name: copy.name, version: copy.version, from: copy.from },
        "refused to discard the copy the catalog names",
      );
    else if (verdict === "newer")
      this.peers.warn(
        `newer:${keyOf(copy)}`,
        {
          name: copy.name,
          version: copy.version,
          sha256: copy.sha256,
          recorded: record === "absent" ? null : record.version,
          from: copy.from,
        },
        "kept a committed copy the catalog does not name: the catalog is older than this copy (restored from a backup?)",
      );
    else this.#remove(copy, "discarded a copy no record names");
  }

  /**
   * COMMITTED: mark the copy it names committed, then drop older versions of
   * that file and losing bytes under the same version, as the file's readable
   * record says (the message only says when to look).
   */
  async onCommitted(msg: Message): Promise<void> {
    const { replicas, election } = this.peers.options;
    const decoded = decode(msg.data, "cbor");
    const parsed = decoded.ok ? committedSchema.safeParse(decoded.value) : undefined;
    if (!parsed?.success) {
      this.peers.warn("committed", {}, "dropped a malformed COMMITTED");
      return;
    }
    if (parsed.data.epoch < election.state().highestEpoch) return;
    await this.#markCommitted(parsed.data);
    if (obsoleteBy(replicas.held(), parsed.data).length === 0) return;
    const record = await this.#catalogSays(parsed.data.name);
    if (record === undefined || record === "absent" || this.#stopped) return;
    await this.#markCommitted(record);
    // Older versions and other bytes under the recorded one only: never a copy newer than the record.
    for (const old of obsoleteBy(replicas.held(), record)) this.#remove(old, "removed an old version");
  }
}
