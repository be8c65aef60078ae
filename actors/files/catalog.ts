// The file catalog (SPEC 8): the newest recorded version of every file, one
// JSON record per file in the coordinator store under `file.<base64url name>`.
// A version exists once its record is written, with a compare-and-set on the
// revision the coordinator read, so versions of a file are totally ordered and
// two coordinators cannot both record the same one. A record that cannot be
// read is never taken for an absent one: nothing is discarded on its account.
import { decode, encode } from "../../protocol/codec.js";
import { type CatalogRecord, catalogRecordSchema } from "../../protocol/files.js";
import type { CasStore } from "../../transport/kv.js";

const PREFIX = "file.";

export const catalogKey = (name: string): string =>
  `${PREFIX}${Buffer.from(name, "utf8").toString("base64url")}`;

/** A record and the store revision it was read at (what the next write must expect). */
export interface CatalogEntry {
  readonly record: CatalogRecord;
  readonly revision: number;
}

/** A record in the store that does not parse: an operator wrote it, or a newer version of dvsd. */
export class MalformedCatalogRecordError extends Error {
  override name = "MalformedCatalogRecordError";
  constructor(readonly key: string) {
    super(`the catalog record under ${key} cannot be read`);
  }
}

/**
 * What the catalog says about one file: a readable record, a key confirmed
 * absent, or a record that is there but cannot be read (unreadable is not absent).
 */
export type CatalogLookup =
  | { readonly kind: "record"; readonly entry: CatalogEntry }
  | { readonly kind: "absent" }
  | { readonly kind: "unreadable"; readonly error: MalformedCatalogRecordError };

/** Every readable record, and the keys of those that could not be read. */
export interface CatalogListing {
  readonly entries: CatalogEntry[];
  readonly unreadable: ReadonlySet<string>;
}

export class Catalog {
  constructor(readonly store: CasStore) {}

  /** The recorded version of `name`, or undefined when it was never committed. */
  async get(name: string): Promise<CatalogEntry | undefined> {
    const key = catalogKey(name);
    const entry = await this.store.get(key);
    if (entry === undefined) return undefined;
    return { record: parse(key, entry.value), revision: entry.revision };
  }

  /** The record of `name`, classified; rejects only when the store cannot be reached. */
  async lookup(name: string): Promise<CatalogLookup> {
    try {
      const entry = await this.get(name);
      return entry === undefined ? { kind: "absent" } : { kind: "record", entry };
    } catch (error) {
      if (error instanceof MalformedCatalogRecordError) return { kind: "unreadable", error };
      throw error;
    }
  }

  /** Writes `record` if the file's record is still at `expected` (undefined: never written); resolves with the revision. */
  record(record: CatalogRecord, expected: number | undefined): Promise<number> {
    const key = catalogKey(record.name);
    const bytes = encode(record, "json");
    return expected === undefined ? this.store.create(key, bytes) : this.store.update(key, bytes, expected);
  }

  /** Every record, by name; records that do not parse are reported to `onMalformed` and skipped. */
  async list(onMalformed: (error: MalformedCatalogRecordError) => void = () => {}): Promise<CatalogEntry[]> {
    return (await this.scan(onMalformed)).entries;
  }

  /**
   * Every readable record, by name, and the keys of the records that could not
   * be read (each also reported to `onMalformed`): whoever judges copies by
   * this listing must keep those of an unreadable key.
   */
  async scan(onMalformed: (error: MalformedCatalogRecordError) => void = () => {}): Promise<CatalogListing> {
    const keys = await this.store.keys(PREFIX);
    const entries: CatalogEntry[] = [];
    const unreadable = new Set<string>();
    for (const key of keys) {
      const entry = await this.store.get(key);
      if (entry === undefined) continue;
      try {
        entries.push({ record: parse(key, entry.value), revision: entry.revision });
      } catch (error) {
        if (!(error instanceof MalformedCatalogRecordError)) throw error;
        unreadable.add(key);
        onMalformed(error);
      }
    }
    entries.sort((a, b) => (a.record.name < b.record.name ? -1 : a.record.name > b.record.name ? 1 : 0));
    return { entries, unreadable };
  }
}

function parse(key: string, value: Uint8Array): CatalogRecord {
  const decoded = decode(value, "json");
  const parsed = decoded.ok ? catalogRecordSchema.safeParse(decoded.value) : undefined;
  if (!parsed?.success || catalogKey(parsed.data.name) !== key) throw new MalformedCatalogRecordError(key);
  return parsed.data;
}
