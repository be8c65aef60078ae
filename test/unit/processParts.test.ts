// The small parts of the process runtime, each alone: the reorder mailbox, the
// location table, the machine registry and what only the file snapshot store
// does (the store contract is in test/contracts/processSnapshotStore/).
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { MachineRegistrationError } from "../../actors/errors.js";
import { defaultRegistry, MachineRegistry } from "../../actors/machineRegistry.js";
import { LocationTable, supersedes } from "../../actors/processes/locations.js";
import { Mailbox } from "../../actors/processes/mailbox.js";
import { FileSnapshotStore } from "../../actors/processes/processStore.js";
import { counterMachine } from "../../machines/examples/counter.js";
import type { Envelope, Location } from "../../protocol/processes.js";
import { record } from "../contracts/processSnapshotStore/contract.js";

const from = (key: string) => ({ kind: "client" as const, key, node: 1, src: key });
const m = (key: string, seq: number): Envelope => ({
  sender: from(key),
  seq,
  dcid: 1,
  endpoint: 5,
  body: seq,
  hops: 0,
});
const seqs = (list: Envelope[]) => list.map((e) => `${e.sender.key}${e.seq}`);

describe("mailbox", () => {
  it("delivers in order per sender, holding what comes early", () => {
    const box = new Mailbox();
    expect(seqs(box.accept(m("a", 2), 0).ready)).toEqual([]);
    expect(seqs(box.accept(m("b", 1), 0).ready)).toEqual(["b1"]);
    expect(seqs(box.accept(m("a", 3), 0).ready)).toEqual([]);
    expect(box.pendingCount).toBe(2);
    expect(seqs(box.accept(m("a", 1), 0).ready)).toEqual(["a1", "a2", "a3"]);
    expect(box.pendingCount).toBe(0);
    expect(box.deliveredFrom("a")).toBe(3);
  });

  it("drops duplicates, delivered or waiting", () => {
    const box = new Mailbox();
    box.accept(m("a", 1), 0);
    box.accept(m("a", 3), 0);
    expect(box.accept(m("a", 1), 0)).toEqual({ ready: [], duplicate: true });
    expect(box.accept(m("a", 3), 0)).toEqual({ ready: [], duplicate: true });
  });

  it("skips a gap that stays open for the timeout, with every gap below a message that waited as long", () => {
    const box = new Mailbox();
    box.accept(m("a", 3), 100);
    box.accept(m("a", 6), 150);
    expect(box.nextExpiry(1_000)).toBe(1_100);
    expect(box.expire(1_099, 1_000)).toEqual({ ready: [], skipped: 0 });
    const both = box.expire(1_150, 1_000);
    expect(seqs(both.ready)).toEqual(["a3", "a6"]);
    expect(both.skipped).toBe(4);
    expect(box.accept(m("a", 5), 1_200).duplicate).toBe(true);
  });

  it("gives a later gap the time since its own later message arrived", () => {
    const box = new Mailbox();
    box.accept(m("a", 3), 100);
    box.accept(m("a", 6), 900);
    const first = box.expire(1_100, 1_000);
    expect(seqs(first.ready)).toEqual(["a3"]);
    expect(first.skipped).toBe(2);
    expect(box.nextExpiry(1_000)).toBe(1_900);
    expect(seqs(box.accept(m("a", 4), 1_500).ready)).toEqual(["a4"]);
    const second = box.expire(1_900, 1_000);
    expect(seqs(second.ready)).toEqual(["a6"]);
    expect(second.skipped).toBe(1);
  });

  it("moves as plain data: a restored mailbox goes on where the old one was", () => {
    const box = new Mailbox();
    box.accept(m("a", 1), 0);
    box.accept(m("a", 3), 0);
    const moved = new Mailbox(JSON.parse(JSON.stringify(box.state())), 500);
    expect(moved.nextExpiry(100)).toBe(600);
    expect(moved.accept(m("a", 1), 0).duplicate).toBe(true);
    expect(seqs(moved.accept(m("a", 2), 0).ready)).toEqual(["a2", "a3"]);
  });
});

const loc = (node: number, epoch: number, ended = false): Location => ({
  dcid: 1,
  endpoint: 5,
  node,
  epoch,
  ended,
  machine: "counter",
  name: "c",
});

describe("location table", () => {
  it("keeps the highest epoch, then an end, then the lower node id", () => {
    expect(supersedes(loc(2, 2), loc(1, 1))).toBe(true);
    expect(supersedes(loc(1, 1), loc(2, 2))).toBe(false);
    expect(supersedes(loc(2, 2, true), loc(2, 2))).toBe(true);
    expect(supersedes(loc(2, 2), loc(2, 2, true))).toBe(false);
    expect(supersedes(loc(1, 1), loc(3, 1))).toBe(true);
    const table = new LocationTable();
    expect(table.apply(loc(3, 2))).toBe(true);
    expect(table.apply(loc(1, 1))).toBe(false);
    expect(table.get(1, 5)?.node).toBe(3);
    expect(table.taken(1, 5)).toBe(true);
    table.apply(loc(3, 3, true));
    expect(table.taken(1, 5)).toBe(false);
    expect(table.of(3)).toHaveLength(1);
  });
});

describe("machine registry", () => {
  it("registers by name once, looks up and lists; the default one holds the examples", () => {
    const registry = defaultRegistry();
    expect(registry.list()).toEqual(["counter", "kvCell"]);
    expect(registry.get("counter")).toBe(counterMachine);
    expect(registry.get("nope")).toBeUndefined();
    expect(() => registry.register("counter", counterMachine)).toThrow(MachineRegistrationError);
    expect(() => new MachineRegistry().register("", counterMachine)).toThrow(MachineRegistrationError);
    // Each registry is its own: registering in one does not show in another.
    registry.register("other", counterMachine);
    expect(defaultRegistry().has("other")).toBe(false);
  });
});

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "dvsd-procs-"));
  dirs.push(dir);
  return dir;
};

describe("file snapshot store", () => {
  it("skips unreadable records and leaves no temp files behind", async () => {
    const dir = tempDir();
    const store = new FileSnapshotStore(dir);
    await store.save(record(5, 1));
    writeFileSync(join(dir, "1.6.cbor"), "garbage");
    writeFileSync(join(dir, "notes.txt"), "ignored");
    const loaded = await store.load();
    expect(loaded.processes.map((p) => p.endpoint)).toEqual([5]);
    expect(loaded.skipped.map((s) => s.name)).toEqual(["1.6.cbor"]);
    expect(readdirSync(dir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  });
});
