// Where the processes hosted by a node persist, so a restarted node runs them
// on (ProcessRuntime.start). One record per process, CBOR: a directory of
// durable files in production, a map in tests; both go through the codec so
// tests see what the disk sees.
import { readdirSync, readFileSync, unlinkSync } from "node:fs";
import { mkdir, open, rename } from "node:fs/promises";
import { join } from "node:path";
import { decode, encode } from "../../protocol/codec.js";
import { type ProcessRecord, processRecordSchema } from "../../protocol/processes.js";

export interface LoadedProcesses {
  readonly processes: ProcessRecord[];
  /** Records that could not be read (name and reason), skipped. */
  readonly skipped: { readonly name: string; readonly reason: string }[];
}

export interface ProcessSnapshotStore {
  save(record: ProcessRecord): Promise<void>;
  remove(dcid: number, endpoint: number): Promise<void>;
  load(): Promise<LoadedProcesses>;
}

const fileName = (dcid: number, endpoint: number) => `${dcid}.${endpoint}.cbor`;
const FILE = /^\d+\.-?\d+\.cbor$/;

function read(name: string, bytes: Uint8Array, into: LoadedProcesses): void {
  const decoded = decode(bytes, "cbor", Number.MAX_SAFE_INTEGER);
  if (!decoded.ok) {
    into.skipped.push({ name, reason: decoded.message });
    return;
  }
  const parsed = processRecordSchema.safeParse(decoded.value);
  if (!parsed.success) into.skipped.push({ name, reason: parsed.error.message.slice(0, 300) });
  else into.processes.push(parsed.data);
}

/**
 * Files `<dcid>.<endpoint>.cbor` under `dir`, each written durably (temp
 * file, fsync, rename, fsync of the directory) without blocking the event
 * loop: a message is acknowledged only after its process's record is saved,
 * so saves are frequent. One save at a time per store (Persistence flushes
 * one record after another).
 */
export class FileSnapshotStore implements ProcessSnapshotStore {
  constructor(readonly dir: string) {}

  async save(record: ProcessRecord): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const path = join(this.dir, fileName(record.dcid, record.endpoint));
    const tmp = `${path}.tmp`;
    const file = await open(tmp, "w");
    try {
      await file.writeFile(encode(record));
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(tmp, path);
    const dir = await open(this.dir, "r");
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }

  async remove(dcid: number, endpoint: number): Promise<void> {
    try {
      unlinkSync(join(this.dir, fileName(dcid, endpoint)));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
  }

  async load(): Promise<LoadedProcesses> {
    const out: LoadedProcesses = { processes: [], skipped: [] };
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return out;
      throw error;
    }
    for (const name of names.filter((n) => FILE.test(n)).sort()) {
      read(name, readFileSync(join(this.dir, name)), out);
    }
    return out;
  }
}

/** The same contract in memory; records are kept encoded, as on disk. */
export class MemorySnapshotStore implements ProcessSnapshotStore {
  readonly #records = new Map<string, Uint8Array>();

  async save(record: ProcessRecord): Promise<void> {
    this.#records.set(fileName(record.dcid, record.endpoint), encode(record));
  }

  async remove(dcid: number, endpoint: number): Promise<void> {
    this.#records.delete(fileName(dcid, endpoint));
  }

  async load(): Promise<LoadedProcesses> {
    const out: LoadedProcesses = { processes: [], skipped: [] };
    for (const [name, bytes] of [...this.#records].sort(([a], [b]) => a.localeCompare(b))) {
      read(name, bytes, out);
    }
    return out;
  }

  /** How many records are stored. */
  get size(): number {
    return this.#records.size;
  }
}
