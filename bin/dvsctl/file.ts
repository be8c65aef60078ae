// dvsctl's commands for the replicated file store (SPEC 8): `file commit`
// sends a file from disk as a new version, `file update` fetches the newest
// version (to stdout or a file, written whole and checked before it appears),
// `file ls` lists the catalog. Large transfers draw a progress bar on stderr.
import { createHash, randomBytes } from "node:crypto";
import { type FileHandle, mkdtemp, open, rename, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { type Command, InvalidArgumentError } from "commander";
import { systemClock } from "../../client/connection.js";
import type { FileClient, FileSink, FileSource, Progress } from "../../client/fileClient.js";
import { FileSession, type FileSessionOptions } from "../../client/fileSession.js";
import { formatTable } from "../../client/table.js";
import { commitIdSchema, type FileListing, FileStoreError, fileNameSchema } from "../../client/wire.js";
import { CommandError } from "./errors.js";
import { bytes, instant } from "./host.js";
import { ProgressBar, wantsProgress } from "./progress.js";
import { EXIT, type GlobalOptions, withConnection } from "./session.js";

/** Bytes read at a time when hashing a file. */
const HASH_BUFFER_BYTES = 1024 * 1024;

// ---- arguments ----

function fileName(value: string): string {
  const parsed = fileNameSchema.safeParse(value);
  if (!parsed.success)
    throw new InvalidArgumentError(
      `expected a file name of 1-180 characters: letters, digits, '.', '_', '-' and '/', not starting with '.' or '/', no empty, '.' or '..' segment`,
    );
  return parsed.data;
}

function commitId(value: string): string {
  if (!commitIdSchema.safeParse(value).success)
    throw new InvalidArgumentError("expected a commit id: 1-64 letters, digits, '_' and '-'");
  return value;
}

// ---- the bytes on disk ----

/** Reads exactly `length` bytes at `offset` (fewer only at the end of the file). */
async function readAt(handle: FileHandle, offset: number, length: number): Promise<Uint8Array> {
  const buffer = Buffer.allocUnsafe(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await handle.read(buffer, filled, length - filled, offset + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return buffer.subarray(0, filled);
}

/** The SHA-256 of the first `size` bytes of an open file, read a chunk at a time. */
async function sha256Of(handle: FileHandle, size: number): Promise<string> {
  const hash = createHash("sha256");
  for (let offset = 0; offset < size; ) {
    const chunk = await readAt(handle, offset, Math.min(HASH_BUFFER_BYTES, size - offset));
    if (chunk.byteLength === 0) break;
    hash.update(chunk);
    offset += chunk.byteLength;
  }
  return hash.digest("hex");
}

/** A file on disk to commit: hashed once up front, then read in chunks as the holders ask for them. */
async function openSource(path: string): Promise<FileSource & { close(): Promise<void> }> {
  let handle: FileHandle;
  try {
    handle = await open(path, "r");
  } catch (error) {
    throw new CommandError(`file commit: cannot read ${path}: ${(error as Error).message}`, EXIT.usage, {
      cause: error,
    });
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new CommandError(`file commit: ${path} is not a regular file`, EXIT.usage);
    const size = stat.size;
    const sha256 = await sha256Of(handle, size);
    return {
      size,
      sha256,
      read: (offset, length) => readAt(handle, offset, length),
      close: () => handle.close(),
    };
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/**
 * Where `file update` writes: a temporary file that each read attempt starts
 * afresh (chunks arrive in any order and are written where they belong), and
 * that only becomes the target once its SHA-256 was read back and matched.
 */
class TemporaryFile {
  #attempt = 0;

  private constructor(
    readonly path: string,
    readonly handle: FileHandle,
    /** A private directory made for it, removed with it. */
    readonly scratch: string | undefined,
  ) {}

  /**
   * The temporary file for `target`: beside it, so that the rename stays on one
   * filesystem; for stdout (no target), in a private directory. Created with
   * `wx+`: nobody else has it open, and it is read back for the hash.
   */
  static async for(target: string | undefined): Promise<TemporaryFile> {
    let scratch: string | undefined;
    let path = "";
    try {
      if (target === undefined) {
        scratch = await mkdtemp(join(tmpdir(), "dvsctl-"));
        path = join(scratch, "update");
      } else path = join(dirname(target), `.${basename(target)}.${randomBytes(6).toString("hex")}.part`);
      return new TemporaryFile(path, await open(path, "wx+"), scratch);
    } catch (error) {
      if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
      throw new CommandError(`file update: cannot write ${path}: ${(error as Error).message}`, EXIT.usage, {
        cause: error,
      });
    }
  }

  /** A sink for one read attempt; the chunks of an abandoned attempt that arrive late are dropped. */
  sink(): FileSink {
    const attempt = ++this.#attempt;
    const ready = this.handle.truncate(0);
    const current = () => attempt === this.#attempt;
    return {
      write: async (offset, data) => {
        await ready;
        if (current()) await this.handle.write(data, 0, data.byteLength, offset);
      },
      sha256: async () => {
        await ready;
        const { size } = await this.handle.stat();
        return sha256Of(this.handle, size);
      },
    };
  }

  /** Makes the bytes durable and puts the file in place of `target`. */
  async moveTo(target: string): Promise<void> {
    await this.handle.sync();
    await this.handle.close();
    await rename(this.path, target);
  }

  /** Removes whatever is left of it (nothing after `moveTo`). */
  async discard(): Promise<void> {
    await this.handle.close().catch(() => {});
    if (this.scratch !== undefined) await rm(this.scratch, { recursive: true, force: true });
    else await rm(this.path, { force: true });
  }
}

/**
 * Copies a file to stdout, waiting for the pipe to drain. When the reader goes
 * away (EPIPE, as with `| head`), it stops quietly, as `cat` would.
 */
async function copyToStdout(handle: FileHandle, size: number): Promise<void> {
  const out = process.stdout;
  let failed: NodeJS.ErrnoException | undefined;
  // Kept for the rest of the run: a write still queued may fail after the copy stopped.
  out.on("error", (error: NodeJS.ErrnoException) => {
    failed ??= error;
  });
  const drained = () =>
    new Promise<void>((resolve) => {
      const done = () => {
        out.off("drain", done);
        out.off("error", done);
        resolve();
      };
      out.on("drain", done);
      out.on("error", done);
    });
  for (let offset = 0; offset < size && failed === undefined; ) {
    const chunk = await readAt(handle, offset, Math.min(HASH_BUFFER_BYTES, size - offset));
    if (chunk.byteLength === 0) break;
    offset += chunk.byteLength;
    if (!out.write(chunk)) await drained();
  }
  if (failed !== undefined && failed.code !== "EPIPE") throw failed;
}

/**
 * The error a command ends with: the file store's (exit status 1), the NATS
 * server's refusal (4), or as it is; `then` is a line for stderr after it.
 */
function failure(command: string, error: unknown, then?: string): unknown {
  if (error instanceof FileStoreError)
    return new CommandError(
      `file ${command}: ${error.code}: ${error.message}${then === undefined ? "" : `\n${then}`}`,
      EXIT.replyError,
      { cause: error },
    );
  if (error instanceof Error && error.name === "PermissionDeniedError")
    return new CommandError(`file ${command}: EPERM: ${error.message}`, EXIT.denied, { cause: error });
  // A local file that could not be read or written (the message names it).
  if (error instanceof Error && typeof (error as NodeJS.ErrnoException).code === "string")
    return new CommandError(`file ${command}: ${error.message}`, EXIT.replyError, { cause: error });
  return error;
}

/** A progress callback drawing a bar on stderr when it is wanted; the bar is made once the size is known. */
function progressOn(option: boolean | undefined): { onProgress: Progress; bar(): ProgressBar | undefined } {
  let bar: ProgressBar | undefined;
  let decided = false;
  return {
    onProgress: (done, total) => {
      if (!decided) {
        decided = true;
        if (wantsProgress(option, process.stderr.isTTY === true, total))
          bar = new ProgressBar({ stream: process.stderr, clock: systemClock });
      }
      bar?.update(done, total);
    },
    bar: () => bar,
  };
}

/** Whether `--timeout` was given (it is the deadline of the file commands, else FileClient's own). */
/** The file session of a command: --timeout, when given, is the whole run's deadline. */
const sessionOptions = (g: GlobalOptions, cmd: Command): FileSessionOptions =>
  cmd.getOptionValueSourceWithGlobals("timeout") !== "default"
    ? { cluster: g.cluster, deadlineMs: g.timeout }
    : { cluster: g.cluster };

const hex12 = (sha256: string) => sha256.slice(0, 12);

// ---- commands ----

export function addFileCommands(program: Command): void {
  const file = program
    .command("file")
    .description("the replicated file store: commit a file, fetch its newest version, list the catalog");

  file
    .command("commit")
    .description("store the file at PATH as the newest version of NAME, on replication-factor servers")
    .argument("<name>", "the file's name in the store (e.g. conf/app.yaml)", fileName)
    .argument("<path>", "the file on this machine")
    .option(
      "--commit <id>",
      "the commit id (default: a new ULID); the id of a failed commit retries it",
      commitId,
    )
    .option(
      "--progress",
      "draw a progress bar on stderr (default: when stderr is a terminal and PATH > 1 MiB)",
    )
    .option("--no-progress", "never draw a progress bar")
    .addHelpText(
      "after",
      [
        "",
        "Hashes PATH (SHA-256), then serves its bytes to the servers that store them until the",
        "coordinator answers. On success prints",
        "  committed NAME version V (SIZE bytes, sha256 <first 12 hex digits>) on nodes 1, 4, 5",
        "or, with --json, the SUCCESS answer with the commit id. A commit that fails can be retried",
        "with the --commit id printed on stderr: if it was recorded after all, the answer is its version.",
        "The global --timeout is how long to keep retrying (coordinator changes, busy servers) beyond",
        "what the size needs (default 30000 ms).",
        "",
        "Exit status: 0 committed, 1 the file store refused or failed (dvsctl: file commit: CODE: why),",
        "2 bad usage or PATH unreadable, 3 NATS unreachable, 4 this user may not commit.",
        "",
        "Examples:",
        "  $ dvsctl file commit conf/app.yaml ./app.yaml",
        "  $ dvsctl file commit images/disk.img ./disk.img --commit 01JD3V6Q8W4X5Y6Z7A8B9C0D1E",
      ].join("\n"),
    )
    .action(
      async (name: string, path: string, opts: { commit?: string; progress?: boolean }, cmd: Command) => {
        const source = await openSource(path);
        try {
          await withConnection(cmd, async (t, g) => {
            const session = new FileSession(t, sessionOptions(g, cmd));
            const id = opts.commit ?? session.newCommitId();
            const progress = progressOn(opts.progress);
            let answer: Awaited<ReturnType<FileClient["commit"]>>;
            try {
              answer = await session.run((client) =>
                client.commit(name, source, { commit: id, onProgress: progress.onProgress }),
              );
            } catch (error) {
              progress.bar()?.clear();
              // Said after the error: the same id finds the commit if it was recorded after all.
              const retry = `dvsctl: to retry this commit: dvsctl file commit ${name} ${path} --commit ${id}`;
              // Only where the commit may yet be recorded, or a retry may find it: not after EINVAL or ENOSPC.
              const retryable =
                error instanceof FileStoreError &&
                ["EAGAIN", "EBUSY", "ETIMEDOUT", "ESTALE", "EIO"].includes(error.code);
              throw failure("commit", error, retryable ? retry : undefined);
            }
            progress.bar()?.finish();
            if (g.json) process.stdout.write(`${JSON.stringify({ ...answer, commit: id })}\n`);
            else
              process.stdout.write(
                `committed ${answer.name} version ${answer.version} (${answer.size} bytes, sha256 ${hex12(answer.sha256)}) on nodes ${answer.holders.join(", ")}\n`,
              );
          });
        } finally {
          await source.close();
        }
      },
    );

  file
    .command("update")
    .description("fetch the newest version of NAME: to stdout, or to a file with -o")
    .argument("<name>", "the file's name in the store", fileName)
    .option(
      "-o, --output <path>",
      "write to this file (replaced only once the whole version is there and checked)",
    )
    .option(
      "--progress",
      "draw a progress bar on stderr (default: when stderr is a terminal and the file > 1 MiB)",
    )
    .option("--no-progress", "never draw a progress bar")
    .addHelpText(
      "after",
      [
        "",
        "Asks the coordinator for the newest version, reads it from the server that holds it and",
        "checks its SHA-256. Without -o the bytes go to stdout and nothing else does; with -o they",
        "go to a temporary file beside PATH that is checked, fsynced and renamed onto PATH (removed",
        "on failure). Either way nothing is written until the whole version was read and checked.",
        "Prints `NAME version V, SIZE bytes from node N` on stderr; with --json and -o, that as JSON",
        "on stdout.",
        "",
        "Exit status: 0 fetched, 1 the file store failed (dvsctl: file update: ENOENT: … when there is",
        "no such file), 2 bad usage, 3 NATS unreachable, 4 this user may not read files.",
        "",
        "Examples:",
        "  $ dvsctl file update conf/app.yaml > app.yaml",
        "  $ dvsctl file update images/disk.img -o ./disk.img",
      ].join("\n"),
    )
    .action(async (name: string, opts: { output?: string; progress?: boolean }, cmd: Command) => {
      await withConnection(cmd, async (t, g) => {
        const session = new FileSession(t, sessionOptions(g, cmd));
        const target = opts.output;
        const temp = await TemporaryFile.for(target);
        const progress = progressOn(opts.progress);
        try {
          const got = await session.run((client) =>
            client.update(name, () => temp.sink(), { onProgress: progress.onProgress }),
          );
          progress.bar()?.finish();
          if (target === undefined) await copyToStdout(temp.handle, got.size);
          else await temp.moveTo(target);
          if (g.json && target !== undefined)
            process.stdout.write(`${JSON.stringify({ ...got, path: target })}\n`);
          else
            process.stderr.write(
              `${got.name} version ${got.version}, ${got.size} bytes from node ${got.source}\n`,
            );
        } catch (error) {
          progress.bar()?.clear();
          throw failure("update", error);
        } finally {
          await temp.discard();
        }
      });
    });

  file
    .command("ls")
    .description("list the files in the store: newest version, size and live holders")
    .argument("[prefix]", "only names that start with this")
    .addHelpText(
      "after",
      [
        "",
        "One row per file: name, version, size, the servers that hold that version now (heard from",
        "within three STATUS periods), and when it was recorded (UTC). With --json, the listing as",
        'one JSON array: [{"name","version","sha256","size","holders","at"}, …].',
        "",
        "Exit status: 0 listed (also when empty), 1 the file store failed, 3 NATS unreachable,",
        "4 this user may not list files.",
        "",
        "Examples:",
        "  $ dvsctl file ls",
        "  $ dvsctl file ls conf/ --json",
      ].join("\n"),
    )
    .action(async (prefix: string | undefined, _opts: unknown, cmd: Command) => {
      await withConnection(cmd, async (t, g) => {
        const session = new FileSession(t, sessionOptions(g, cmd));
        let files: FileListing[];
        try {
          files = await session.run((client) => client.ls(prefix));
        } catch (error) {
          throw failure("ls", error);
        }
        if (g.json) process.stdout.write(`${JSON.stringify(files)}\n`);
        else process.stdout.write(`${formatListing(files)}\n`);
      });
    });
}

/** The table of `file ls`. */
export function formatListing(files: readonly FileListing[]): string {
  return formatTable(
    ["name", "version", "size", "holders", "at"],
    files.map((f) => [f.name, f.version, bytes(f.size), f.holders.join(",") || "-", instant(f.at)]),
  );
}
