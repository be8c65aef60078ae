// The Files page's API: the catalog (LS, pushed to the page when it changes),
// UPDATE to download a file's newest version, and COMMIT of an upload for an
// admin console, with its progress as NDJSON. Files pass through the
// console's memory, so both ways are capped (--max-file-bytes); larger files
// are dvsctl's (`dvsctl file commit|update`), which streams from disk.
import type { Clock, TimerHandle } from "../client/connection.js";
import { bytesSource, type FileClient, memorySink } from "../client/fileClient.js";
import { type FileListing, FileStoreError, fileNameSchema, type Role } from "../client/wire.js";
import {
  BadInputError,
  ClusterUnreachableError,
  NotFoundError,
  NotPermittedError,
  TooLargeError,
} from "./errors.js";
import type { NdjsonStream } from "./http.js";

export const VIEWER_CANNOT_COMMIT =
  "this console runs as viewer: only the admin user may COMMIT (nats.conf). Start it with --admin to upload.";

/** How often the catalog is asked while a page watches it (there is no public event for a commit). */
const CATALOG_EVERY_MS = 5_000;

export function checkedName(name: string | null): string {
  const parsed = fileNameSchema.safeParse(name ?? "");
  if (!parsed.success)
    throw new BadInputError(`bad file name ${JSON.stringify(name)}: ${parsed.error.issues[0]?.message}`);
  return parsed.data;
}

function unreachable(what: string, error: unknown): Error {
  if (error instanceof FileStoreError && error.code === "ENOENT") return new NotFoundError(error.message);
  return new ClusterUnreachableError(`${what}: ${(error as Error).message}`, { cause: error });
}

export class FilesApi {
  readonly #watchers = new Set<(files: readonly FileListing[]) => void>();
  #last = "";
  #timer: TimerHandle | undefined;

  constructor(
    readonly role: Role,
    readonly files: FileClient,
    readonly clock: Clock,
    readonly maxFileBytes: number,
  ) {}

  async list(): Promise<FileListing[]> {
    try {
      return await this.files.ls();
    } catch (error) {
      throw unreachable("cannot list the files", error);
    }
  }

  /** The newest version's bytes, checked against its SHA-256 by the client. */
  async download(name: string): Promise<{ listing: FileListing; bytes: Uint8Array }> {
    const listing = (await this.list()).find((f) => f.name === name);
    if (listing === undefined) throw new NotFoundError(`no file ${name} in the catalog`);
    if (listing.size > this.maxFileBytes) {
      throw new TooLargeError(
        `${name} is ${listing.size} bytes, over the console's --max-file-bytes ${this.maxFileBytes}: use dvsctl file update`,
      );
    }
    const sink = memorySink(listing.size);
    try {
      const got = await this.files.update(name, () => sink);
      return {
        listing: { ...listing, version: got.version, sha256: got.sha256, size: got.size },
        bytes: sink.bytes().subarray(0, got.size),
      };
    } catch (error) {
      throw unreachable(`cannot read ${name}`, error);
    }
  }

  /** Throws unless this console may commit (checked before the upload is read). */
  checkCommit(): void {
    if (this.role !== "admin") throw new NotPermittedError(VIEWER_CANNOT_COMMIT);
  }

  /** Commits the uploaded bytes, streaming progress (bytes the holders read) and the outcome. */
  async commit(name: string, bytes: Uint8Array, out: NdjsonStream): Promise<void> {
    const source = bytesSource(bytes);
    out.write({ kind: "received", name, size: source.size, sha256: source.sha256 });
    let reported = -1;
    try {
      const answer = await this.files.commit(name, source, {
        onProgress: (done, total) => {
          const percent = total === 0 ? 100 : Math.floor((done * 100) / total);
          if (percent === reported) return;
          reported = percent;
          out.write({ kind: "progress", done, total, percent });
        },
      });
      out.end({
        kind: "committed",
        name: answer.name,
        version: answer.version,
        size: answer.size,
        sha256: answer.sha256,
        holders: answer.holders,
      });
      this.#poll(0);
    } catch (error) {
      const code = error instanceof FileStoreError ? error.code : (error as Error).name;
      out.end({ kind: "error", error: code, message: (error as Error).message });
    }
  }

  /** Calls `listener` with the catalog now and whenever it changes; the catalog is asked only while someone watches. */
  watch(listener: (files: readonly FileListing[]) => void): () => void {
    this.#watchers.add(listener);
    this.#last = "";
    this.#poll(0);
    return () => {
      this.#watchers.delete(listener);
      if (this.#watchers.size === 0 && this.#timer !== undefined) {
        this.clock.clearTimeout(this.#timer);
        this.#timer = undefined;
      }
    };
  }

  stop(): void {
    this.#watchers.clear();
    if (this.#timer !== undefined) this.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #poll(ms: number): void {
    if (this.#watchers.size === 0) return;
    if (this.#timer !== undefined) this.clock.clearTimeout(this.#timer);
    this.#timer = this.clock.setTimeout(async () => {
      this.#timer = undefined;
      try {
        const files = await this.files.ls();
        const text = JSON.stringify(files);
        if (text !== this.#last) {
          this.#last = text;
          for (const w of this.#watchers) w(files);
        }
      } catch {
        // No coordinator just now: the page keeps the last catalog, asked again below.
      }
      if (this.#timer === undefined) this.#poll(CATALOG_EVERY_MS);
    }, ms);
  }
}
