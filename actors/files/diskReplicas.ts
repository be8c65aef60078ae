// Replicas as files on the server's disk (SPEC 8): one directory per file name
// (base64url, so any name is one safe path segment) holding one file per version,
// `<version>.<sha256>`. A write goes to a `.part-<hex>` file beside it that
// `finish` checks, fsyncs and renames into place, so after a crash there is
// either the whole replica or a `.part-` file that the next `open()` removes.
// A replica some catalog recorded carries a mark beside it,
// `<version>.<sha256>.committed`, a small JSON restating its identity.
import { createHash } from "node:crypto";
import type { Dirent } from "node:fs";
import { type FileHandle, mkdir, open, readdir, rename, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import {
  type FileErrorName,
  type FileIdentity,
  FileStoreError,
  fileIdentitySchema,
} from "../../protocol/files.js";
import { type Random, randomInt, systemRandom } from "../../transport/clock.js";
import type { Logger } from "../logger.js";
import { MARK_SUFFIX, MAX_MARK_BYTES, markBytes, markedBy, restates } from "./committedMark.js";
import { ReplicaIntegrityError, ReplicaNotFoundError } from "./errors.js";
import {
  checkRange,
  identityOf,
  keyOf,
  type ReplicaRef,
  type ReplicaStore,
  type ReplicaWriter,
  ReplicaWriterBase,
} from "./replicaStore.js";

const FINISHED = /^([1-9][0-9]*)\.([0-9a-f]{64})$/;
const UNFINISHED = /\.part-[0-9a-f]+$/;
const CORRUPT_SUFFIX = ".corrupt";
/** Bytes read at a time when hashing a replica. */
const HASH_BUFFER_BYTES = 256 * 1024;

interface Entry {
  readonly identity: FileIdentity;
  readonly path: string;
}

const noop = (): void => undefined;

function errnoCode(err: unknown): string | undefined {
  return typeof err === "object" && err !== null && "code" in err && typeof err.code === "string"
    ? err.code
    : undefined;
}

/** An fs failure as the store's named error, with the errno kept as `cause`. */
function diskError(doing: string, path: string, err: unknown): FileStoreError {
  const errno = errnoCode(err);
  const code: FileErrorName =
    errno === "ENOSPC" || errno === "EDQUOT" ? "ENOSPC" : errno === "ENAMETOOLONG" ? "EINVAL" : "EIO";
  const reason = err instanceof Error ? err.message : String(err);
  return new FileStoreError(code, `could not ${doing} ${path}: ${reason}`, { cause: err });
}

const encodeName = (name: string): string => Buffer.from(name, "utf8").toString("base64url");

/** The file name a directory entry stands for, or undefined when it is not one this store wrote. */
function decodeName(segment: string): string | undefined {
  const name = Buffer.from(segment, "base64url").toString("utf8");
  return encodeName(name) === segment ? name : undefined;
}

function randomHex(random: Random, digits: number): string {
  let out = "";
  for (let i = 0; i < digits; i++) out += randomInt(random, 16).toString(16);
  return out;
}

async function digest(file: FileHandle, path: string): Promise<{ size: number; sha256: string }> {
  const hash = createHash("sha256");
  const buffer = new Uint8Array(HASH_BUFFER_BYTES);
  let size = 0;
  try {
    for (;;) {
      const { bytesRead } = await file.read(buffer, 0, buffer.length, size);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
      size += bytesRead;
    }
  } catch (err) {
    throw diskError("read", path, err);
  }
  return { size, sha256: hash.digest("hex") };
}

/** Makes a directory's entries (a rename, a new file) durable, where the platform can. */
async function syncDirectory(path: string): Promise<void> {
  let dir: FileHandle | undefined;
  try {
    dir = await open(path, "r");
    await dir.sync();
  } catch (err) {
    // Windows cannot open a directory, and some file systems refuse fsync on one.
    const errno = errnoCode(err);
    if (errno === "EISDIR" || errno === "EINVAL" || errno === "ENOTSUP" || errno === "EPERM") return;
    throw diskError("flush the directory", path, err);
  } finally {
    await dir?.close().catch(() => undefined);
  }
}

/** Whether the mark at `path` restates `ref` (committedMark.ts); anything else is no mark. */
async function readMark(path: string, ref: ReplicaRef): Promise<boolean> {
  let file: FileHandle | undefined;
  try {
    file = await open(path, "r");
    const buffer = new Uint8Array(MAX_MARK_BYTES + 1);
    const { bytesRead } = await file.read(buffer, 0, buffer.length, 0);
    return restates(buffer.subarray(0, bytesRead), ref);
  } catch (err) {
    throw diskError("read", path, err);
  } finally {
    await file?.close().catch(noop);
  }
}

async function listDirectory(path: string): Promise<Dirent[]> {
  try {
    return await readdir(path, { withFileTypes: true });
  } catch (err) {
    throw diskError("list", path, err);
  }
}

/** What a writer needs from its store. */
interface WriterHost {
  readonly logger: Logger;
  holds(ref: ReplicaRef): boolean;
  /** Lists a replica just renamed into place, once its directory entry is durable. */
  commit(identity: FileIdentity, path: string, nameDir: string): Promise<void>;
  release(writer: DiskWriter): void;
}

class DiskWriter extends ReplicaWriterBase {
  readonly #file: FileHandle;
  readonly #host: WriterHost;
  readonly #writes = new Set<Promise<void>>();
  #fileClosed = false;

  constructor(
    meta: FileIdentity,
    readonly tempPath: string,
    readonly finalPath: string,
    readonly nameDir: string,
    file: FileHandle,
    host: WriterHost,
  ) {
    super(meta);
    this.#file = file;
    this.#host = host;
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    this.checkWrite(offset, data.byteLength);
    const done = this.#writeAll(offset, data);
    this.#writes.add(done);
    try {
      await done;
    } finally {
      this.#writes.delete(done);
    }
  }

  async #writeAll(offset: number, data: Uint8Array): Promise<void> {
    let written = 0;
    try {
      while (written < data.byteLength) {
        const { bytesWritten } = await this.#file.write(
          data,
          written,
          data.byteLength - written,
          offset + written,
        );
        written += bytesWritten;
      }
    } catch (err) {
      throw diskError("write", this.tempPath, err);
    }
  }

  protected async complete(): Promise<void> {
    await Promise.allSettled(this.#writes);
    let listed = false;
    try {
      const actual = await digest(this.#file, this.tempPath);
      if (actual.size !== this.meta.size || actual.sha256 !== this.meta.sha256) {
        throw new ReplicaIntegrityError(
          this.meta,
          { size: this.meta.size, sha256: this.meta.sha256 },
          actual,
        );
      }
      if (this.#host.holds(this.meta)) return;
      try {
        await this.#file.sync();
      } catch (err) {
        throw diskError("flush", this.tempPath, err);
      }
      await this.#closeFile();
      try {
        await rename(this.tempPath, this.finalPath);
      } catch (err) {
        throw diskError("rename into place", this.tempPath, err);
      }
      listed = true;
      await this.#host.commit(this.meta, this.finalPath, this.nameDir);
    } finally {
      if (!listed) await this.#discard();
      this.#host.release(this);
    }
  }

  protected async discard(): Promise<void> {
    await Promise.allSettled(this.#writes);
    await this.#discard();
    this.#host.release(this);
  }

  async #closeFile(): Promise<void> {
    if (this.#fileClosed) return;
    this.#fileClosed = true;
    try {
      await this.#file.close();
    } catch (err) {
      throw diskError("close", this.tempPath, err);
    }
  }

  /** Closes and deletes the temp file; a failure is logged, as the next `open()` removes what is left. */
  async #discard(): Promise<void> {
    try {
      await this.#closeFile();
    } catch (err) {
      this.#host.logger.warn({ err, path: this.tempPath }, "could not close an unfinished replica");
    }
    try {
      await rm(this.tempPath, { force: true });
    } catch (err) {
      this.#host.logger.warn(
        { err, path: this.tempPath },
        "could not remove an unfinished replica; the next open removes it",
      );
    }
  }
}

export class DiskReplicas implements ReplicaStore {
  readonly #dir: string;
  readonly #logger: Logger;
  readonly #random: Random;
  #index = new Map<string, Entry>();
  /** The keys of the held replicas whose committed mark is on disk. */
  #marked = new Set<string>();
  /** Name directories whose own entry in `dir` is known to be durable. */
  #durableDirs = new Set<string>();
  readonly #writers = new Set<DiskWriter>();
  #closed = false;
  readonly #host: WriterHost;

  constructor(options: { dir: string; logger: Logger; random?: Random }) {
    this.#dir = options.dir;
    this.#logger = options.logger;
    this.#random = options.random ?? systemRandom;
    this.#host = {
      logger: this.#logger,
      holds: (ref) => this.#index.has(keyOf(ref)),
      commit: async (identity, path, nameDir) => {
        await syncDirectory(nameDir);
        if (!this.#durableDirs.has(nameDir)) {
          await syncDirectory(this.#dir);
          this.#durableDirs.add(nameDir);
        }
        this.#index.set(keyOf(identity), { identity, path });
      },
      release: (writer) => this.#writers.delete(writer),
    };
  }

  async open(): Promise<void> {
    try {
      await mkdir(this.#dir, { recursive: true });
    } catch (err) {
      throw diskError("create the directory", this.#dir, err);
    }
    const ownTemps = new Set([...this.#writers].map((w) => w.tempPath));
    const index = new Map<string, Entry>();
    const marks: { path: string; ref: ReplicaRef }[] = [];
    const dirs = new Set<string>();
    let removed = 0;
    for (const entry of await listDirectory(this.#dir)) {
      if (!entry.isDirectory()) continue;
      const name = decodeName(entry.name);
      if (name === undefined) {
        this.#logger.warn({ dir: this.#dir, entry: entry.name }, "ignoring a directory that names no file");
        continue;
      }
      const nameDir = join(this.#dir, entry.name);
      dirs.add(nameDir);
      for (const file of await listDirectory(nameDir)) {
        const path = join(nameDir, file.name);
        if (UNFINISHED.test(file.name)) {
          if (ownTemps.has(path)) continue;
          try {
            await rm(path, { force: true });
            removed++;
          } catch (err) {
            this.#logger.warn({ err, path }, "could not remove an unfinished replica");
          }
          continue;
        }
        const marked = markedBy(name, file.name);
        if (marked && file.isFile()) {
          marks.push({ path, ref: marked });
          continue;
        }
        const match = FINISHED.exec(file.name);
        if (!match || !file.isFile()) continue;
        const size = await this.#sizeOf(path);
        if (size === undefined) continue;
        const parsed = fileIdentitySchema.safeParse({
          name,
          version: Number(match[1]),
          sha256: match[2],
          size,
        });
        if (!parsed.success) {
          this.#logger.warn({ path }, "ignoring a file that is not a valid replica");
          continue;
        }
        const identity = Object.freeze(parsed.data);
        index.set(keyOf(identity), { identity, path });
      }
    }
    const marked = await this.#readMarks(marks, index);
    this.#index = index;
    this.#marked = marked;
    this.#durableDirs = dirs;
    this.#closed = false;
    this.#logger.info(
      { dir: this.#dir, replicas: index.size, committed: marked.size, removedUnfinished: removed },
      "replicas opened",
    );
  }

  /**
   * The keys of the replicas whose mark checks out. A mark whose replica is
   * gone (a removal cut short) is removed; one that does not restate its
   * replica is logged and left for the operator, and counts for nothing.
   */
  async #readMarks(
    marks: readonly { path: string; ref: ReplicaRef }[],
    index: ReadonlyMap<string, Entry>,
  ): Promise<Set<string>> {
    const marked = new Set<string>();
    for (const { path, ref } of marks) {
      const key = keyOf(ref);
      if (!index.has(key)) {
        await rm(path, { force: true }).catch((err: unknown) =>
          this.#logger.warn({ err, path }, "could not remove the committed mark of a replica no longer held"),
        );
        continue;
      }
      const valid = await readMark(path, ref).catch((err: unknown) => {
        this.#logger.warn({ err, path }, "could not read a committed mark");
        return undefined;
      });
      if (valid) marked.add(key);
      else if (valid === false) this.#logger.warn({ path }, "ignoring a committed mark that is not valid");
    }
    return marked;
  }

  held(): FileIdentity[] {
    return [...this.#index.values()].map((e) => e.identity);
  }

  get(ref: ReplicaRef): FileIdentity | undefined {
    return this.#index.get(keyOf(ref))?.identity;
  }

  async create(meta: FileIdentity): Promise<ReplicaWriter> {
    const identity = identityOf(meta);
    this.#checkOpen();
    const nameDir = join(this.#dir, encodeName(identity.name));
    try {
      await mkdir(nameDir, { recursive: true });
    } catch (err) {
      throw diskError("create the directory", nameDir, err);
    }
    const finalPath = join(nameDir, `${identity.version}.${identity.sha256}`);
    for (let attempt = 1; ; attempt++) {
      const tempPath = `${finalPath}.part-${randomHex(this.#random, 16)}`;
      let file: FileHandle;
      try {
        file = await open(tempPath, "wx+");
      } catch (err) {
        if (errnoCode(err) === "EEXIST" && attempt < 4) continue;
        throw diskError("create", tempPath, err);
      }
      const writer = new DiskWriter(identity, tempPath, finalPath, nameDir, file, this.#host);
      this.#writers.add(writer);
      if (this.#closed) {
        // closed while the file was being created
        await writer.abort();
        this.#checkOpen();
      }
      return writer;
    }
  }

  async read(ref: ReplicaRef, offset: number, length: number): Promise<Uint8Array> {
    checkRange("read", offset, length);
    const entry = this.#index.get(keyOf(ref));
    if (!entry) throw new ReplicaNotFoundError(ref);
    const wanted = Math.min(length, Math.max(0, entry.identity.size - offset));
    if (wanted === 0) return new Uint8Array(0);
    const file = await this.#openHeld(entry, ref);
    const out = new Uint8Array(wanted);
    let filled = 0;
    try {
      while (filled < wanted) {
        const { bytesRead } = await file.read(out, filled, wanted - filled, offset + filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
    } catch (err) {
      throw diskError("read", entry.path, err);
    } finally {
      await file.close().catch(noop);
    }
    return filled === wanted ? out : out.subarray(0, filled);
  }

  async verify(ref: ReplicaRef): Promise<boolean> {
    const entry = this.#index.get(keyOf(ref));
    if (!entry) throw new ReplicaNotFoundError(ref);
    let file: FileHandle;
    try {
      file = await this.#openHeld(entry, ref);
    } catch (err) {
      if (!(err instanceof ReplicaNotFoundError)) throw err;
      this.#logger.warn({ path: entry.path, ...ref }, "replica vanished from disk");
      return false;
    }
    let actual: { size: number; sha256: string };
    try {
      actual = await digest(file, entry.path);
    } finally {
      await file.close().catch(noop);
    }
    if (actual.size === entry.identity.size && actual.sha256 === entry.identity.sha256) return true;
    this.#index.delete(keyOf(ref));
    await this.#unmark(ref, entry);
    const keptAs = `${entry.path}${CORRUPT_SUFFIX}`;
    try {
      await rename(entry.path, keptAs);
    } catch (err) {
      this.#logger.warn({ err, path: entry.path }, "could not set a corrupt replica aside");
    }
    this.#logger.warn(
      {
        name: ref.name,
        version: ref.version,
        expected: { size: entry.identity.size, sha256: entry.identity.sha256 },
        actual,
        keptAs,
      },
      "replica failed verification and was set aside",
    );
    return false;
  }

  async remove(ref: ReplicaRef): Promise<void> {
    const entry = this.#index.get(keyOf(ref));
    if (!entry) return;
    try {
      await rm(entry.path, { force: true });
    } catch (err) {
      throw diskError("remove", entry.path, err);
    }
    this.#index.delete(keyOf(ref));
    await this.#unmark(ref, entry);
  }

  async markCommitted(ref: ReplicaRef): Promise<boolean> {
    const key = keyOf(ref);
    const entry = this.#index.get(key);
    if (!entry) return false;
    if (this.#marked.has(key)) return true;
    const path = `${entry.path}${MARK_SUFFIX}`;
    const temp = `${path}.part-${randomHex(this.#random, 16)}`;
    const body = markBytes(entry.identity);
    let file: FileHandle | undefined;
    try {
      file = await open(temp, "wx");
      await file.writeFile(body);
      await file.sync();
      await file.close();
      file = undefined;
      await rename(temp, path);
    } catch (err) {
      await file?.close().catch(noop);
      await rm(temp, { force: true }).catch(noop);
      throw diskError("write the committed mark", path, err);
    }
    await syncDirectory(dirname(path));
    // Removed while the mark was written: the mark goes too.
    if (this.#index.get(key) !== entry) {
      await rm(path, { force: true }).catch(noop);
      return false;
    }
    this.#marked.add(key);
    return true;
  }

  committed(ref: ReplicaRef): boolean {
    const key = keyOf(ref);
    return this.#index.has(key) && this.#marked.has(key);
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#writers].map((w) => w.abort()));
  }

  /** Drops the mark of a replica that is no longer held; one left behind is removed by the next `open()`. */
  async #unmark(ref: ReplicaRef, entry: Entry): Promise<void> {
    this.#marked.delete(keyOf(ref));
    const path = `${entry.path}${MARK_SUFFIX}`;
    try {
      await rm(path, { force: true });
    } catch (err) {
      this.#logger.warn({ err, path }, "could not remove a committed mark; the next open removes it");
    }
  }

  #checkOpen(): void {
    if (this.#closed) throw new FileStoreError("EINVAL", `the replica store in ${this.#dir} is closed`);
  }

  /** Opens a listed replica; one gone from disk is dropped from the index and not found. */
  async #openHeld(entry: Entry, ref: ReplicaRef): Promise<FileHandle> {
    try {
      return await open(entry.path, "r");
    } catch (err) {
      if (errnoCode(err) !== "ENOENT") throw diskError("open", entry.path, err);
      if (this.#index.get(keyOf(ref)) === entry) this.#index.delete(keyOf(ref));
      throw new ReplicaNotFoundError(ref);
    }
  }

  async #sizeOf(path: string): Promise<number | undefined> {
    try {
      return (await stat(path)).size;
    } catch (err) {
      if (errnoCode(err) === "ENOENT") return undefined;
      throw diskError("stat", path, err);
    }
  }
}
