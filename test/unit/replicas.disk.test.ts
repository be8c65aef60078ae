// Replicas as files on disk run the replica store contract; then what only the
// disk has: the file layout, leftovers from a crash, corrupt files set aside, fs failures.
import { access, mkdir, mkdtemp, open, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { DiskReplicas } from "../../actors/files/diskReplicas.js";
import type { ReplicaRef } from "../../actors/files/replicaStore.js";
import { silentLogger } from "../../actors/logger.js";
import { FileStoreError } from "../../protocol/files.js";
import { seededRandom } from "../../transport/clock.js";
import {
  bytesOf,
  identityOf,
  put,
  replicaStoreContract,
  writeChunks,
} from "../contracts/replicaStore/contract.js";

const encoded = (name: string) => Buffer.from(name, "utf8").toString("base64url");
const replicaPath = (dir: string, ref: ReplicaRef) =>
  join(dir, encoded(ref.name), `${ref.version}.${ref.sha256}`);

/** A temp dir and the stores opened over it, all closed and removed by `cleanup`. */
async function diskFixture() {
  const dir = await mkdtemp(join(tmpdir(), "dvsd-replicas-"));
  const stores: DiskReplicas[] = [];
  const openStore = async () => {
    const store = new DiskReplicas({ dir, logger: silentLogger, random: seededRandom(stores.length + 1) });
    stores.push(store);
    await store.open();
    return store;
  };
  return {
    dir,
    store: await openStore(),
    reopen: openStore,
    async corrupt(ref: ReplicaRef) {
      const file = await open(replicaPath(dir, ref), "r+");
      try {
        const byte = new Uint8Array(1);
        await file.read(byte, 0, 1, 0);
        byte[0] = (byte[0] ?? 0) ^ 0xff;
        await file.write(byte, 0, 1, 0);
      } finally {
        await file.close();
      }
    },
    async cleanup() {
      for (const store of stores) await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

replicaStoreContract("disk", diskFixture);

describe("disk replicas", () => {
  const live: { cleanup: () => Promise<void> }[] = [];
  const setup = async () => {
    const f = await diskFixture();
    live.push(f);
    return f;
  };
  afterEach(async () => {
    for (const f of live.splice(0)) await f.cleanup();
  });

  it("keep a finished replica at <dir>/<base64url name>/<version>.<sha256>, with no .part- file left", async () => {
    const { dir, store } = await setup();
    const bytes = bytesOf(1000);
    const meta = identityOf("dir/sub/file.txt", 4, bytes);
    await put(store, meta, bytes);
    await access(replicaPath(dir, meta));
    expect(await readdir(join(dir, encoded(meta.name)))).toEqual([`4.${meta.sha256}`]);
  });

  it("write an unfinished replica to a .part- file beside where it will go", async () => {
    const { dir, store } = await setup();
    const bytes = bytesOf(1000);
    const meta = identityOf("pending.txt", 1, bytes);
    const writer = await writeChunks(store, meta, bytes);
    const [part] = await readdir(join(dir, encoded(meta.name)));
    expect(part).toMatch(new RegExp(`^1\\.${meta.sha256}\\.part-[0-9a-f]+$`));
    await writer.abort();
    expect(await readdir(join(dir, encoded(meta.name)))).toEqual([]);
  });

  it("remove a .part- file left by a crash when opened, and do not list it", async () => {
    const { dir, reopen } = await setup();
    const bytes = bytesOf(1000);
    const meta = identityOf("crash.bin", 1, bytes);
    const nameDir = join(dir, encoded(meta.name));
    await mkdir(nameDir, { recursive: true });
    await writeFile(join(nameDir, `1.${meta.sha256}.part-0123abcd`), bytes);
    const reopened = await reopen();
    expect(reopened.held()).toEqual([]);
    expect(await readdir(nameDir)).toEqual([]);
  });

  it("set a replica that fails verify aside as <final>.corrupt, and leave it there on open", async () => {
    const { dir, store, corrupt, reopen } = await setup();
    const bytes = bytesOf(1000);
    const meta = identityOf("rotten.bin", 1, bytes);
    await put(store, meta, bytes);
    await corrupt(meta);
    expect(await store.verify(meta)).toBe(false);
    expect(await readdir(join(dir, encoded(meta.name)))).toEqual([`1.${meta.sha256}.corrupt`]);
    expect((await reopen()).held()).toEqual([]);
    expect(await readdir(join(dir, encoded(meta.name)))).toEqual([`1.${meta.sha256}.corrupt`]);
  });

  it("leave files and directories they did not write alone, and do not list them", async () => {
    const { dir, reopen } = await setup();
    await writeFile(join(dir, "README"), "not a replica");
    await mkdir(join(dir, "not base64!"));
    await mkdir(join(dir, encoded("x.txt")));
    await writeFile(join(dir, encoded("x.txt"), "notes"), "");
    expect((await reopen()).held()).toEqual([]);
    expect(await readdir(join(dir, encoded("x.txt")))).toEqual(["notes"]);
  });

  it("fail to open over a path that is a file with a FileStoreError naming it", async () => {
    const { dir } = await setup();
    const file = join(dir, "plain-file");
    await writeFile(file, "");
    const store = new DiskReplicas({ dir: join(file, "replicas"), logger: silentLogger });
    await expect(store.open()).rejects.toBeInstanceOf(FileStoreError);
    await expect(store.open()).rejects.toThrow(file);
  });

  it("refuse a name whose encoding is too long for one directory entry with a FileStoreError", async () => {
    const { store } = await setup();
    // 200 characters is a valid file name, but its base64url is 267 > 255 bytes (NAME_MAX)
    const meta = identityOf("n".repeat(200), 1, new Uint8Array(0));
    await expect(store.create(meta)).rejects.toMatchObject({ name: "FileStoreError", code: "EINVAL" });
  });

  it("keep a committed mark beside the replica, as <final>.committed restating its identity in JSON", async () => {
    const { dir, store } = await setup();
    const bytes = bytesOf(1000);
    const meta = identityOf("conf/app.yaml", 3, bytes);
    await put(store, meta, bytes);
    await store.markCommitted(meta);
    expect((await readdir(join(dir, encoded(meta.name)))).sort()).toEqual([
      `3.${meta.sha256}`,
      `3.${meta.sha256}.committed`,
    ]);
    const mark = JSON.parse(await readFile(`${replicaPath(dir, meta)}.committed`, "utf8"));
    expect(mark).toEqual({ v: 1, name: "conf/app.yaml", version: 3, sha256: meta.sha256 });
    await store.remove(meta);
    expect(await readdir(join(dir, encoded(meta.name)))).toEqual([]);
  });

  it("count no mark that does not restate its replica, log it, and leave it for the operator", async () => {
    const { dir, store } = await setup();
    const bytes = bytesOf(1000);
    const metas = [1, 2, 3, 4, 5].map((version) => identityOf("forged.bin", version, bytes));
    for (const meta of metas) await put(store, meta, bytes);
    const [junk, other, extra, huge, good] = metas.map((m) => `${replicaPath(dir, m)}.committed`) as [
      string,
      string,
      string,
      string,
      string,
    ];
    const { sha256 } = metas[0] as { sha256: string };
    await writeFile(junk, "{ not json");
    await writeFile(other, JSON.stringify({ v: 1, name: "forged.bin", version: 1, sha256 }));
    await writeFile(extra, JSON.stringify({ v: 1, name: "forged.bin", version: 3, sha256, more: true }));
    await writeFile(
      huge,
      JSON.stringify({ v: 1, name: "forged.bin", version: 4, sha256, pad: "x".repeat(2000) }),
    );
    await writeFile(good, JSON.stringify({ v: 1, name: "forged.bin", version: 5, sha256 }));
    const logs: { msg: string; path?: string }[] = [];
    const logger = pino({ level: "warn" }, { write: (line: string) => void logs.push(JSON.parse(line)) });
    const reopened = new DiskReplicas({ dir, logger });
    await reopened.open();
    expect(metas.map((m) => reopened.committed(m))).toEqual([false, false, false, false, true]);
    expect(
      logs.filter((l) => l.msg === "ignoring a committed mark that is not valid").map((l) => l.path),
    ).toEqual(expect.arrayContaining([junk, other, extra, huge]));
    await access(junk);
    await reopened.close();
  });

  it("remove, when opened, a mark whose replica is gone and a mark left half written", async () => {
    const { dir, store, reopen } = await setup();
    const bytes = bytesOf(1000);
    const meta = identityOf("orphan.bin", 1, bytes);
    await put(store, meta, bytes);
    await store.markCommitted(meta);
    const nameDir = join(dir, encoded(meta.name));
    // A crash between removing the replica and its mark, and one while a mark was written.
    await rm(replicaPath(dir, meta));
    await writeFile(join(nameDir, `2.${meta.sha256}.committed.part-0123abcd`), "{");
    const reopened = await reopen();
    expect(reopened.held()).toEqual([]);
    expect(await readdir(nameDir)).toEqual([]);
    await put(reopened, meta, bytes);
    expect(reopened.committed(meta)).toBe(false);
  });
});
