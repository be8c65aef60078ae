// The contract every ReplicaStore keeps (SPEC 8), run unchanged against the
// files on disk (test/unit/replicas.disk.test.ts) and the simulated disk of the
// `sim` network (test/unit/replicas.sim.test.ts).
import { createHash } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { ReplicaIntegrityError, ReplicaNotFoundError } from "../../../actors/files/errors.js";
import type { ReplicaRef, ReplicaStore } from "../../../actors/files/replicaStore.js";
import { CHUNK_BYTES, type FileIdentity, FileStoreError } from "../../../protocol/files.js";
import { seededRandom } from "../../../transport/clock.js";

export interface ReplicaStoreFixture {
  /** An opened store over fresh, empty storage. */
  readonly store: ReplicaStore;
  /** A new store over the same storage, opened, as after a restart; earlier stores are left as they are. */
  readonly reopen: () => Promise<ReplicaStore>;
  /** Damages a held replica behind the store's back. */
  readonly corrupt: (ref: ReplicaRef) => Promise<void>;
  /** Closes every store the fixture made and frees the storage. */
  readonly cleanup: () => Promise<void>;
}

/** `size` bytes that differ from seed to seed. */
export function bytesOf(size: number, seed = 1): Uint8Array {
  const random = seededRandom(seed);
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = Math.floor(random.next() * 256);
  return bytes;
}

export function identityOf(name: string, version: number, bytes: Uint8Array): FileIdentity {
  return { name, version, sha256: createHash("sha256").update(bytes).digest("hex"), size: bytes.length };
}

/** Writes `bytes` in chunks of `chunk` bytes (last chunk first when `backwards`), without finishing. */
export async function writeChunks(
  store: ReplicaStore,
  meta: FileIdentity,
  bytes: Uint8Array,
  options: { chunk?: number; backwards?: boolean } = {},
) {
  const chunk = options.chunk ?? CHUNK_BYTES;
  const offsets: number[] = [];
  for (let offset = 0; offset < bytes.length; offset += chunk) offsets.push(offset);
  if (options.backwards) offsets.reverse();
  const writer = await store.create(meta);
  for (const offset of offsets) await writer.write(offset, bytes.subarray(offset, offset + chunk));
  return writer;
}

/** Writes and finishes a replica of `bytes`. */
export async function put(store: ReplicaStore, meta: FileIdentity, bytes: Uint8Array): Promise<void> {
  await (await writeChunks(store, meta, bytes)).finish();
}

/** Reads a whole replica back in chunks of `chunk` bytes. */
export async function readAll(
  store: ReplicaStore,
  ref: ReplicaRef,
  chunk = CHUNK_BYTES,
): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for (let offset = 0; ; offset += chunk) {
    const part = await store.read(ref, offset, chunk);
    if (part.length === 0) break;
    parts.push(part);
    if (part.length < chunk) break;
  }
  return new Uint8Array(Buffer.concat(parts));
}

/**
 * Size and SHA-256 of some bytes: compares large buffers quickly (vitest's
 * toEqual walks them element by element) and reports a difference readably.
 */
export function fingerprint(bytes: Uint8Array): { size: number; sha256: string } {
  return { size: bytes.length, sha256: createHash("sha256").update(bytes).digest("hex") };
}

const byKey = (a: FileIdentity, b: FileIdentity) =>
  a.name.localeCompare(b.name) || a.version - b.version || a.sha256.localeCompare(b.sha256);

export function replicaStoreContract(name: string, fixture: () => Promise<ReplicaStoreFixture>): void {
  describe(`${name} replica store contract`, () => {
    const live: ReplicaStoreFixture[] = [];
    const setup = async () => {
      const f = await fixture();
      live.push(f);
      return f;
    };
    afterEach(async () => {
      for (const f of live.splice(0)) await f.cleanup();
    });

    it("holds a finished replica of several chunks and reads it back byte for byte, chunk by chunk", async () => {
      const { store } = await setup();
      const bytes = bytesOf(600 * 1024);
      const meta = identityOf("big.bin", 1, bytes);
      await put(store, meta, bytes);
      expect(store.held()).toEqual([meta]);
      expect(store.get(meta)).toEqual(meta);
      const first = await store.read(meta, 0, CHUNK_BYTES);
      expect(first.length).toBe(CHUNK_BYTES);
      const last = await store.read(meta, 3 * CHUNK_BYTES, CHUNK_BYTES);
      expect(last.length).toBe(600 * 1024 - 3 * CHUNK_BYTES);
      expect(fingerprint(await readAll(store, meta))).toEqual(fingerprint(bytes));
    });

    it("makes the same replica from chunks written out of order", async () => {
      const { store } = await setup();
      const bytes = bytesOf(600 * 1024, 2);
      const meta = identityOf("backwards.bin", 1, bytes);
      await (await writeChunks(store, meta, bytes, { backwards: true })).finish();
      expect(fingerprint(await readAll(store, meta))).toEqual(fingerprint(bytes));
    });

    it("holds a 0-byte file, which reads back empty", async () => {
      const { store, reopen } = await setup();
      const meta = identityOf("empty", 1, new Uint8Array(0));
      await (await store.create(meta)).finish();
      expect(store.get(meta)).toEqual(meta);
      expect(await store.read(meta, 0, CHUNK_BYTES)).toEqual(new Uint8Array(0));
      expect((await reopen()).get(meta)).toEqual(meta);
    });

    it("reads fewer bytes near the end and none from the end on", async () => {
      const { store } = await setup();
      const bytes = bytesOf(1000, 3);
      const meta = identityOf("short.txt", 1, bytes);
      await put(store, meta, bytes);
      expect(await store.read(meta, 990, 100)).toEqual(bytes.subarray(990));
      expect(await store.read(meta, 1000, 100)).toEqual(new Uint8Array(0));
      expect(await store.read(meta, 5000, 100)).toEqual(new Uint8Array(0));
      expect(await store.read(meta, 10, 0)).toEqual(new Uint8Array(0));
      await expect(store.read(meta, -1, 10)).rejects.toBeInstanceOf(RangeError);
    });

    it("holds nothing before finish", async () => {
      const { store } = await setup();
      const bytes = bytesOf(300 * 1024, 4);
      const meta = identityOf("pending.bin", 1, bytes);
      const writer = await writeChunks(store, meta, bytes);
      expect(store.held()).toEqual([]);
      expect(store.get(meta)).toBeUndefined();
      await expect(store.read(meta, 0, 10)).rejects.toBeInstanceOf(ReplicaNotFoundError);
      await writer.finish();
      expect(store.get(meta)).toEqual(meta);
    });

    it("refuses bytes that do not match the SHA-256 with ReplicaIntegrityError, and keeps nothing", async () => {
      const { store, reopen } = await setup();
      const bytes = bytesOf(4096, 5);
      const meta = { ...identityOf("bad-hash.bin", 1, bytes), sha256: "0".repeat(64) };
      const writer = await writeChunks(store, meta, bytes, { chunk: 1000 });
      const failure = writer.finish();
      await expect(failure).rejects.toBeInstanceOf(ReplicaIntegrityError);
      await expect(failure).rejects.toMatchObject({
        name: "ReplicaIntegrityError",
        expected: { size: 4096, sha256: meta.sha256 },
        actual: { size: 4096, sha256: identityOf("x", 1, bytes).sha256 },
      });
      expect(store.held()).toEqual([]);
      expect((await reopen()).held()).toEqual([]);
    });

    it("refuses bytes of the wrong size with ReplicaIntegrityError, and keeps nothing", async () => {
      const { store, reopen } = await setup();
      const bytes = bytesOf(4096, 6);
      const meta = { ...identityOf("bad-size.bin", 1, bytes), size: 4097 };
      const writer = await writeChunks(store, meta, bytes);
      await expect(writer.finish()).rejects.toMatchObject({
        name: "ReplicaIntegrityError",
        actual: { size: 4096, sha256: meta.sha256 },
      });
      expect(store.held()).toEqual([]);
      expect((await reopen()).held()).toEqual([]);
    });

    it("rejects a write past the declared size or before its start with RangeError, and goes on", async () => {
      const { store } = await setup();
      const bytes = bytesOf(100, 7);
      const meta = identityOf("range.bin", 1, bytes);
      const writer = await store.create(meta);
      await expect(writer.write(50, new Uint8Array(51))).rejects.toBeInstanceOf(RangeError);
      await expect(writer.write(101, new Uint8Array(0))).rejects.toBeInstanceOf(RangeError);
      await expect(writer.write(-1, new Uint8Array(1))).rejects.toBeInstanceOf(RangeError);
      await writer.write(0, bytes);
      await writer.finish();
      expect(fingerprint(await readAll(store, meta))).toEqual(fingerprint(bytes));
    });

    it("drops an aborted replica; abort can be repeated and the replica written again", async () => {
      const { store } = await setup();
      const bytes = bytesOf(1000, 8);
      const meta = identityOf("aborted.bin", 1, bytes);
      const writer = await writeChunks(store, meta, bytes);
      await writer.abort();
      await writer.abort();
      expect(store.held()).toEqual([]);
      await expect(writer.finish()).rejects.toBeInstanceOf(FileStoreError);
      await expect(writer.write(0, bytes)).rejects.toBeInstanceOf(FileStoreError);
      await put(store, meta, bytes);
      expect(store.get(meta)).toEqual(meta);
    });

    it("takes no more writes once finished, and abort after finish keeps the replica", async () => {
      const { store } = await setup();
      const bytes = bytesOf(1000, 9);
      const meta = identityOf("done.bin", 1, bytes);
      const writer = await writeChunks(store, meta, bytes);
      await writer.finish();
      await expect(writer.write(0, bytes)).rejects.toBeInstanceOf(FileStoreError);
      await writer.abort();
      expect(fingerprint(await readAll(store, meta))).toEqual(fingerprint(bytes));
    });

    it("still holds a finished replica after the store is reopened", async () => {
      const { store, reopen } = await setup();
      const bytes = bytesOf(300 * 1024, 10);
      const meta = identityOf("durable.bin", 3, bytes);
      await put(store, meta, bytes);
      const reopened = await reopen();
      expect(reopened.held()).toEqual([meta]);
      expect(fingerprint(await readAll(reopened, meta))).toEqual(fingerprint(bytes));
    });

    it("loses an unfinished write when the store is reopened, and can write it again", async () => {
      const { store, reopen } = await setup();
      const bytes = bytesOf(300 * 1024, 11);
      const meta = identityOf("crashed.bin", 1, bytes);
      const writer = await store.create(meta);
      await writer.write(0, bytes.subarray(0, CHUNK_BYTES));
      const reopened = await reopen();
      expect(reopened.held()).toEqual([]);
      await put(reopened, meta, bytes);
      expect(fingerprint(await readAll(reopened, meta))).toEqual(fingerprint(bytes));
    });

    it("aborts the writes under way when closed, and then takes no new ones", async () => {
      const { store, reopen } = await setup();
      const bytes = bytesOf(1000, 12);
      const meta = identityOf("closing.bin", 1, bytes);
      const writer = await writeChunks(store, meta, bytes);
      await store.close();
      await expect(writer.finish()).rejects.toBeInstanceOf(FileStoreError);
      await expect(store.create(meta)).rejects.toBeInstanceOf(FileStoreError);
      expect((await reopen()).held()).toEqual([]);
    });

    it("verifies a good replica", async () => {
      const { store } = await setup();
      const bytes = bytesOf(600 * 1024, 13);
      const meta = identityOf("good.bin", 1, bytes);
      await put(store, meta, bytes);
      expect(await store.verify(meta)).toBe(true);
      expect(store.get(meta)).toEqual(meta);
    });

    it("fails verify for a corrupted replica, which is then no longer held, even after a reopen", async () => {
      const { store, reopen, corrupt } = await setup();
      const bytes = bytesOf(1000, 14);
      const meta = identityOf("rotten.bin", 1, bytes);
      await put(store, meta, bytes);
      await corrupt(meta);
      expect(await store.verify(meta)).toBe(false);
      expect(store.held()).toEqual([]);
      await expect(store.read(meta, 0, 10)).rejects.toBeInstanceOf(ReplicaNotFoundError);
      expect((await reopen()).held()).toEqual([]);
    });

    it("answers ReplicaNotFoundError for a replica it does not hold", async () => {
      const { store } = await setup();
      const bytes = bytesOf(10, 15);
      const meta = identityOf("here.txt", 1, bytes);
      await put(store, meta, bytes);
      const unknown = [
        { ...meta, name: "elsewhere.txt" },
        { ...meta, version: 2 },
        { ...meta, sha256: "f".repeat(64) },
      ];
      for (const ref of unknown) {
        await expect(store.read(ref, 0, 10)).rejects.toBeInstanceOf(ReplicaNotFoundError);
        await expect(store.read(ref, 0, 10)).rejects.toMatchObject({
          name: "ReplicaNotFoundError",
          code: "ENOENT",
        });
        await expect(store.verify(ref)).rejects.toBeInstanceOf(ReplicaNotFoundError);
        expect(store.get(ref)).toBeUndefined();
      }
    });

    it("frees a removed replica, and removing one not held does nothing", async () => {
      const { store, reopen } = await setup();
      const bytes = bytesOf(1000, 16);
      const meta = identityOf("gone.bin", 1, bytes);
      await put(store, meta, bytes);
      await store.remove(meta);
      expect(store.held()).toEqual([]);
      await expect(store.read(meta, 0, 10)).rejects.toBeInstanceOf(ReplicaNotFoundError);
      await store.remove(meta);
      await store.remove({ ...meta, name: "never.bin" });
      expect((await reopen()).held()).toEqual([]);
    });

    it("holds two versions of one name side by side", async () => {
      const { store, reopen } = await setup();
      const one = bytesOf(1000, 17);
      const two = bytesOf(2000, 18);
      const v1 = identityOf("notes.txt", 1, one);
      const v2 = identityOf("notes.txt", 2, two);
      await put(store, v1, one);
      await put(store, v2, two);
      expect(store.held().sort(byKey)).toEqual([v1, v2]);
      expect(fingerprint(await readAll(store, v1))).toEqual(fingerprint(one));
      expect(fingerprint(await readAll(store, v2))).toEqual(fingerprint(two));
      await store.remove(v1);
      const reopened = await reopen();
      expect(reopened.held()).toEqual([v2]);
      expect(fingerprint(await readAll(reopened, v2))).toEqual(fingerprint(two));
    });

    it("stores names with slashes apart from the names they start with", async () => {
      const { store, reopen } = await setup();
      const deep = bytesOf(1000, 19);
      const top = bytesOf(500, 20);
      const a = identityOf("dir/sub/file.txt", 1, deep);
      const b = identityOf("dir", 1, top);
      await put(store, a, deep);
      await put(store, b, top);
      const reopened = await reopen();
      expect(reopened.held().sort(byKey)).toEqual([b, a]);
      expect(fingerprint(await readAll(reopened, a))).toEqual(fingerprint(deep));
      expect(fingerprint(await readAll(reopened, b))).toEqual(fingerprint(top));
    });

    it("keeps one replica when the same one is finished twice, in turn or at once", async () => {
      const { store, reopen } = await setup();
      const bytes = bytesOf(300 * 1024, 21);
      const meta = identityOf("twice.bin", 1, bytes);
      await put(store, meta, bytes);
      await put(store, meta, bytes);
      expect(store.held()).toEqual([meta]);
      const [x, y] = [await writeChunks(store, meta, bytes), await writeChunks(store, meta, bytes)];
      await Promise.all([x.finish(), y.finish()]);
      expect(store.held()).toEqual([meta]);
      const reopened = await reopen();
      expect(reopened.held()).toEqual([meta]);
      expect(fingerprint(await readAll(reopened, meta))).toEqual(fingerprint(bytes));
    });

    it("is not changed by the caller reusing the buffers it wrote or was given", async () => {
      const { store } = await setup();
      const bytes = bytesOf(1000, 22);
      const meta = identityOf("owned.bin", 1, bytes);
      const buffer = bytes.slice();
      const writer = await store.create(meta);
      await writer.write(0, buffer);
      buffer.fill(0);
      await writer.finish();
      const read = await store.read(meta, 0, 1000);
      read.fill(0);
      expect(await store.read(meta, 0, 1000)).toEqual(bytes);
    });

    it("refuses a malformed identity (a bad hash, version, size or name) with FileStoreError EINVAL", async () => {
      const { store } = await setup();
      const meta = identityOf("ok.txt", 1, new Uint8Array(0));
      for (const bad of [
        { ...meta, sha256: "../../escape" },
        { ...meta, version: 0 },
        { ...meta, size: -1 },
        { ...meta, name: "../up" },
      ]) {
        await expect(store.create(bad)).rejects.toMatchObject({ name: "FileStoreError", code: "EINVAL" });
      }
      expect(store.held()).toEqual([]);
    });

    it("holds a replica unmarked until it is marked committed, and keeps the mark across a reopen", async () => {
      const { store, reopen } = await setup();
      const bytes = bytesOf(1000, 23);
      const meta = identityOf("marked.bin", 2, bytes);
      await put(store, meta, bytes);
      expect(store.committed(meta)).toBe(false);
      expect(await store.markCommitted(meta)).toBe(true);
      expect(await store.markCommitted(meta)).toBe(true);
      expect(store.committed(meta)).toBe(true);
      const reopened = await reopen();
      expect(reopened.held()).toEqual([meta]);
      expect(reopened.committed(meta)).toBe(true);
    });

    it("marks only the replica named: other versions and other bytes of the name stay unmarked", async () => {
      const { store, reopen } = await setup();
      const [one, two, other] = [bytesOf(100, 24), bytesOf(200, 25), bytesOf(300, 26)];
      const v1 = identityOf("notes.txt", 1, one);
      const v2 = identityOf("notes.txt", 2, two);
      const v2other = identityOf("notes.txt", 2, other);
      await put(store, v1, one);
      await put(store, v2, two);
      await put(store, v2other, other);
      await store.markCommitted(v2);
      const reopened = await reopen();
      for (const s of [store, reopened]) {
        expect([v1, v2, v2other].map((r) => s.committed(r))).toEqual([false, true, false]);
      }
    });

    it("marks nothing it does not hold, and a replica finished later starts unmarked", async () => {
      const { store, reopen } = await setup();
      const bytes = bytesOf(1000, 27);
      const meta = identityOf("later.bin", 1, bytes);
      expect(await store.markCommitted(meta)).toBe(false);
      expect(store.committed(meta)).toBe(false);
      await put(store, meta, bytes);
      expect(store.committed(meta)).toBe(false);
      expect((await reopen()).committed(meta)).toBe(false);
    });

    it("drops the mark with the replica: one removed and written again is unmarked, even after a reopen", async () => {
      const { store, reopen } = await setup();
      const bytes = bytesOf(1000, 28);
      const meta = identityOf("again.bin", 1, bytes);
      await put(store, meta, bytes);
      await store.markCommitted(meta);
      await store.remove(meta);
      expect(store.committed(meta)).toBe(false);
      expect((await reopen()).held()).toEqual([]);
      await put(store, meta, bytes);
      expect(store.committed(meta)).toBe(false);
      expect((await reopen()).committed(meta)).toBe(false);
    });

    it("drops the mark of a replica that fails verify", async () => {
      const { store, reopen, corrupt } = await setup();
      const bytes = bytesOf(1000, 29);
      const meta = identityOf("rotten-marked.bin", 1, bytes);
      await put(store, meta, bytes);
      await store.markCommitted(meta);
      await corrupt(meta);
      expect(await store.verify(meta)).toBe(false);
      expect(store.committed(meta)).toBe(false);
      const reopened = await reopen();
      await put(reopened, meta, bytes);
      expect(reopened.committed(meta)).toBe(false);
    });
  });
}
