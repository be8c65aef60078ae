// The registry role (SPEC 7, seed 002's DNS) alone: the machine runs with spies
// for its four effects (answer, write, read, ping), time arrives in the events'
// `at`, and the store's answers are events the test delivers by hand.
// Lease 400 ms throughout: a record is live until 400 ms after it was first seen.
import { describe, expect, it } from "vitest";
import { createActor } from "xstate";
import { NotProvidedError } from "../../machines/notProvided.js";
import {
  expired,
  initialRegistry,
  liveCoordinator,
  type RegistryContext,
  type RegistryEvent,
  type RegistryInput,
  type RegistryOutput,
  type RegistryRecord,
  registryMachine,
  registryStep,
  registryTickDue,
  registryView,
} from "../../machines/registry.js";
import { decode, encode } from "../../protocol/codec.js";
import type { NodeId } from "../../protocol/messages.js";

const input: RegistryInput = { self: 1, leaseMs: 400, at: 0 };

/** A registry actor whose effects are recorded; `send` returns what it did for those events, in order. */
function registry(given: RegistryInput = input) {
  const outputs: RegistryOutput[] = [];
  const machine = registryMachine.provide({
    actions: {
      answer: (_, { ref, answer }) => {
        outputs.push({ type: "answer", ref, answer });
      },
      write: (_, write) => {
        outputs.push({ type: "write", write });
      },
      read: () => {
        outputs.push({ type: "read" });
      },
      ping: (_, { coordinator, epoch, ref }) => {
        outputs.push({ type: "ping", coordinator, epoch, ref });
      },
    },
  });
  const actor = createActor(machine, { input: given }).start();
  return {
    send(...events: RegistryEvent[]): RegistryOutput[] {
      outputs.length = 0;
      for (const event of events) actor.send(event);
      return [...outputs];
    },
    get context(): RegistryContext {
      return actor.getSnapshot().context;
    },
  };
}

// ---- events ----
const record = (coordinator: NodeId | null, epoch: number, revision = epoch): RegistryRecord => ({
  coordinator,
  epoch,
  revision,
});
const entry = (at: number, r: RegistryRecord | null): RegistryEvent => ({
  type: "store.entry",
  record: r,
  at,
});
const written = (op: string, at: number, r: RegistryRecord): RegistryEvent => ({
  type: "store.written",
  op,
  record: r,
  at,
});
const who = (at: number): RegistryEvent => ({ type: "WHO", ref: "who", at });
/** SERVER or ELECTED from `from`; the answer comes back under the ref `"<TYPE>:<from>"`. */
const ask = (type: "SERVER" | "ELECTED", from: NodeId, at: number): RegistryEvent => ({
  type,
  from,
  ref: `${type}:${from}`,
  at,
});
const failed = (coordinator: NodeId, epoch: number, at: number): RegistryEvent => ({
  type: "FAILED",
  coordinator,
  epoch,
  ref: "failed",
  at,
});
const pinged = (outcome: "answered" | "failed", epoch: number, at: number): RegistryEvent => ({
  type: `ping.${outcome}`,
  epoch,
  ref: "failed",
  at,
});
const tick = (at: number): RegistryEvent => ({ type: "clock.tick", at });

// ---- what the registry does ----
const nothing = (ref: string): RegistryOutput => ({ type: "answer", ref, answer: { type: "NOTHING" } });
const ok = (ref: string, coordinator: NodeId, epoch: number): RegistryOutput => ({
  type: "answer",
  ref,
  answer: { type: "OK", coordinator, epoch },
});
const coord = (ref: string, epoch: number, revision: number): RegistryOutput => ({
  type: "answer",
  ref,
  answer: { type: "COORD", epoch, revision },
});
const write = (
  op: string,
  expected: number | null,
  coordinator: NodeId | null,
  epoch: number | null,
): RegistryOutput => ({ type: "write", write: { op, expected, coordinator, epoch } });
const READ: RegistryOutput = { type: "read" };
const writes = (outputs: RegistryOutput[]) => outputs.filter((o) => o.type === "write");

/** A registry that read, at 0, coordinator 2 in epoch 5 at store revision 8. */
function withCoordinator() {
  const r = registry();
  r.send(entry(0, record(2, 5, 8)));
  return r;
}

describe("registry: reading the record", () => {
  it("starts unread, with no record, no suspicion and no write under way", () => {
    expect(registry().context).toEqual(initialRegistry(input));
    expect(initialRegistry(input)).toMatchObject({ loaded: false, record: null, suspect: null, writes: {} });
  });

  it("an unread registry answers WHO with NOTHING and asks the store for the record", () => {
    expect(registry().send(who(0))).toEqual([nothing("who"), READ]);
  });

  it("an unread registry answers SERVER and ELECTED with NOTHING and reads the store once", () => {
    const r = registry();
    expect(r.send(ask("SERVER", 3, 0))).toEqual([nothing("SERVER:3"), READ]);
    expect(r.send(ask("ELECTED", 4, 1))).toEqual([nothing("ELECTED:4")]);
    expect(r.context.reading).toBe(true);
  });

  it("WHO answers OK with the live coordinator and its epoch", () => {
    expect(withCoordinator().send(who(10))).toEqual([ok("who", 2, 5)]);
  });

  it("a record is live only for leaseMs after this node first saw its revision", () => {
    const r = registry();
    r.send(entry(100, record(2, 5, 8)));
    // A re-read of the same revision does not extend the lease.
    r.send(entry(300, record(2, 5, 8)));
    expect(liveCoordinator(r.context, 499)).toEqual(record(2, 5, 8));
    expect(expired(r.context, 499)).toBe(false);
    expect(liveCoordinator(r.context, 500)).toBeNull();
    expect(expired(r.context, 500)).toBe(true);
    expect(r.send(who(500))).toEqual([nothing("who")]);
    // A newer revision (a renewal) does, from when it is seen.
    r.send(entry(520, record(2, 5, 9)));
    expect(liveCoordinator(r.context, 919)).toEqual(record(2, 5, 9));
    expect(liveCoordinator(r.context, 920)).toBeNull();
  });

  it("a record that names no coordinator is neither live nor expired", () => {
    const r = registry();
    r.send(entry(0, record(null, 5, 9)));
    expect(liveCoordinator(r.context, 10)).toBeNull();
    expect(expired(r.context, 1_000)).toBe(false);
  });

  it("an older revision delivered after a newer one is ignored", () => {
    const r = registry();
    r.send(entry(0, record(4, 7, 7)), entry(10, record(2, 5, 6)));
    expect(r.context).toMatchObject({ record: record(4, 7, 7), seenAt: 0, heardAt: 10 });
    expect(r.send(who(20))).toEqual([ok("who", 4, 7)]);
  });

  it("a tick re-reads when the store has been quiet for half a lease", () => {
    const r = registry();
    r.send(entry(100, record(2, 5, 8)));
    expect(r.send(tick(299))).toEqual([]);
    expect(r.send(tick(300))).toEqual([READ]);
    // One read at a time.
    expect(r.send(tick(520))).toEqual([]);
    r.send(entry(530, record(2, 5, 8)));
    expect(r.send(tick(729))).toEqual([]);
    expect(r.send(tick(730))).toEqual([READ]);
    // A read that could not reach the store lets the next quiet tick try again.
    r.send({ type: "store.unavailable", at: 740 });
    expect(r.send(tick(929))).toEqual([]);
    expect(r.send(tick(930))).toEqual([READ]);
  });
});

describe("registry: when time alone changes it", () => {
  it("is due when a quiet store is re-read, and not while a read is under way", () => {
    const r = registry();
    r.send(entry(100, record(null, 5, 8)));
    expect(registryTickDue(r.context, 100)).toBe(300);
    expect(r.send(tick(300))).toEqual([READ]);
    expect(registryTickDue(r.context, 300)).toBeUndefined();
    r.send(entry(310, record(null, 5, 8)));
    expect(registryTickDue(r.context, 310)).toBe(510);
  });

  it("is due when the coordinator it vouches for runs out its lease, and no more once it has", () => {
    const r = registry();
    r.send(entry(100, record(2, 5, 8)));
    // Heard from the store at 450: the re-read (650) comes after the lease's end (500).
    r.send(entry(450, record(2, 5, 8)));
    expect(registryTickDue(r.context, 450)).toBe(500);
    expect(registryView(r.context, 499)).toEqual({ coordinator: 2, epoch: 5, live: true });
    expect(registryView(r.context, 500)).toEqual({ coordinator: 2, epoch: 5, live: false });
    expect(registryTickDue(r.context, 500)).toBe(650);
  });

  it("has nothing to say before it has read the store", () => {
    expect(registryView(registry().context, 0)).toBeNull();
  });

  it("is due when an unreadable record's lease ends, as for a coordinator's: an election may replace it then", () => {
    const r = registry();
    const junk: RegistryRecord = { coordinator: null, epoch: 9, revision: 9, malformed: true };
    r.send(entry(0, junk), entry(300, junk));
    expect(registryTickDue(r.context, 300)).toBe(400);
    expect(registryTickDue(r.context, 400)).toBe(500);
  });

  it("a tick at the instant due does something, and one just before it nothing", () => {
    const r = registry();
    r.send(entry(100, record(2, 5, 8)), entry(250, record(2, 5, 8)));
    const due = registryTickDue(r.context, 250) ?? Number.NaN;
    expect(due).toBe(450);
    expect(r.send(tick(due - 1))).toEqual([]);
    expect(r.send(tick(due))).toEqual([READ]);
  });
});

describe("registry: granting a term (SERVER, ELECTED)", () => {
  it("SERVER with no coordinator in an empty store asks to create and answers COORD once written", () => {
    const r = registry();
    r.send(entry(0, null));
    expect(r.send(ask("SERVER", 3, 10))).toEqual([write("1", null, 3, null)]);
    // The term's epoch is the revision of the write that opened it.
    expect(r.send(written("1", 20, record(3, 1, 1)))).toEqual([coord("SERVER:3", 1, 1)]);
    expect(r.context.writes).toEqual({});
    expect(r.send(who(30))).toEqual([ok("who", 3, 1)]);
  });

  it("SERVER while a coordinator is live answers OK with it and writes nothing", () => {
    expect(withCoordinator().send(ask("SERVER", 3, 10))).toEqual([ok("SERVER:3", 2, 5)]);
  });

  it("ELECTED while the coordinator's lease has not run out answers NOTHING or OK but never writes", () => {
    const r = withCoordinator();
    expect(r.send(ask("ELECTED", 3, 10))).toEqual([ok("ELECTED:3", 2, 5)]);
    // Suspected but not expired: no double election either.
    r.send(failed(2, 5, 20), pinged("failed", 5, 30));
    expect(r.send(ask("ELECTED", 3, 399))).toEqual([nothing("ELECTED:3")]);
    expect(writes(r.send(ask("SERVER", 4, 399)))).toEqual([]);
  });

  it("ELECTED after the lease ran out writes with the expired record's revision as expected", () => {
    const r = withCoordinator();
    expect(r.send(ask("ELECTED", 3, 400))).toEqual([write("1", 8, 3, null)]);
    expect(r.send(written("1", 410, record(3, 9, 9)))).toEqual([coord("ELECTED:3", 9, 9)]);
  });

  it("a record given back (no coordinator) is granted with its revision as expected", () => {
    const r = registry();
    r.send(entry(0, record(null, 5, 9)));
    expect(r.send(ask("SERVER", 3, 1))).toEqual([write("1", 9, 3, null)]);
  });

  it.each(["store.conflict", "store.failed"] as const)(
    "a lost write (%s) answers the asker with NOTHING and re-reads once",
    (type) => {
      const r = withCoordinator();
      r.send(ask("ELECTED", 3, 400), ask("ELECTED", 4, 401));
      expect(r.send({ type, op: "1", at: 410 })).toEqual([nothing("ELECTED:3"), READ]);
      expect(r.send({ type, op: "2", at: 411 })).toEqual([nothing("ELECTED:4")]);
      expect(r.context.writes).toEqual({});
    },
  );

  it("a lost compare-and-set answers OK with the winner when the registry already saw it", () => {
    const r = withCoordinator();
    r.send(ask("ELECTED", 3, 400), entry(405, record(4, 9, 9)));
    expect(r.send({ type: "store.conflict", op: "1", at: 410 })).toEqual([ok("ELECTED:3", 4, 9), READ]);
  });
});

describe("registry: a coordinator that is gone (lease run out, FAILED, PING)", () => {
  it("never writes to end a term whose lease ran out: WHO answers NOTHING and ELECTED writes over it", () => {
    const r = withCoordinator();
    expect(r.send(who(399))).toEqual([ok("who", 2, 5)]);
    // Time alone only re-reads: a write ending the term could land after a rival's grant (nats-server#4320).
    expect(writes(r.send(tick(400), who(400)))).toEqual([]);
    expect(r.send(who(401))).toEqual([nothing("who")]);
    expect(r.send(ask("ELECTED", 3, 402))).toEqual([write("1", 8, 3, null)]);
  });

  it("FAILED for an older epoch, or another coordinator, is obsolete and answered at once", () => {
    const r = registry();
    r.send(entry(0, record(4, 7, 7)));
    expect(r.send(failed(2, 5, 10))).toEqual([ok("failed", 4, 7)]);
    expect(r.send(failed(2, 7, 11))).toEqual([ok("failed", 4, 7)]);
  });

  it("FAILED for the current epoch PINGs the coordinator before answering", () => {
    expect(withCoordinator().send(failed(2, 5, 10))).toEqual([
      { type: "ping", coordinator: 2, epoch: 5, ref: "failed" },
    ]);
  });

  it("a failed PING makes WHO answer NOTHING for that epoch but does not write", () => {
    const r = withCoordinator();
    r.send(failed(2, 5, 10));
    expect(r.send(pinged("failed", 5, 20))).toEqual([nothing("failed")]);
    expect(r.context.suspect).toBe(5);
    expect(r.send(who(30))).toEqual([nothing("who")]);
    expect(expired(r.context, 30)).toBe(false);
    expect(writes(r.send(ask("SERVER", 3, 40)))).toEqual([]);
    // A new term is not suspect.
    r.send(entry(50, record(4, 9, 9)));
    expect(r.context.suspect).toBeNull();
    expect(r.send(who(60))).toEqual([ok("who", 4, 9)]);
  });

  it("an answered PING clears the suspicion", () => {
    const r = withCoordinator();
    r.send(failed(2, 5, 10), pinged("failed", 5, 20), failed(2, 5, 30));
    expect(r.send(pinged("answered", 5, 40))).toEqual([ok("failed", 2, 5)]);
    expect(r.context.suspect).toBeNull();
    expect(r.send(who(50))).toEqual([ok("who", 2, 5)]);
  });
});

describe("registry: the machine and its step function", () => {
  const script: RegistryEvent[] = [
    who(0),
    ask("SERVER", 3, 1),
    entry(5, record(2, 5, 8)),
    failed(2, 5, 10),
    pinged("failed", 5, 20),
    tick(300),
    ask("ELECTED", 3, 406),
    ask("ELECTED", 4, 407),
    { type: "store.conflict", op: "2", at: 410 },
    written("1", 420, record(3, 9, 9)),
  ];

  it("carries out exactly what registryStep returns, in order, and keeps the same context", () => {
    const r = registry();
    const context = initialRegistry(input);
    for (const event of script) expect(r.send(event)).toEqual(registryStep(context, event));
    expect(r.context).toEqual(context);
  });

  it("keeps a context that survives a CBOR round trip", () => {
    const r = registry();
    // A record, a suspicion and two grants under way.
    r.send(...script.slice(0, 8));
    expect(Object.values(r.context.writes).map((w) => w.kind)).toEqual(["acquire", "acquire"]);
    const decoded = decode(encode(r.context), "cbor");
    expect(decoded).toEqual({ ok: true, value: r.context });
  });

  it("fails loudly when the runtime did not provide its effects", () => {
    const actor = createActor(registryMachine, { input });
    const errors: unknown[] = [];
    actor.subscribe({ error: (e) => errors.push(e) });
    actor.start();
    actor.send(who(0));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(NotProvidedError);
  });
});

describe("registry: a record the store no longer holds", () => {
  it("forgets a record the store no longer holds, so the next grant creates it", () => {
    const r = registry();
    r.send(entry(0, record(2, 5, 8)), entry(10, null));
    expect(r.context.record).toBeNull();
    expect(r.send(ask("SERVER", 3, 11))).toEqual([
      { type: "write", write: { op: "1", expected: null, coordinator: 3, epoch: null } },
    ]);
  });
});

describe("registry: a store that went back (a replica lost acknowledged writes)", () => {
  const lost = (op: string, current: number | undefined, at: number): RegistryEvent => ({
    type: "store.conflict",
    op,
    ...(current !== undefined ? { current } : {}),
    at,
  });

  it("takes the record as unreadable at the revision the store holds, and grants on it a lease later", () => {
    const r = withCoordinator();
    expect(r.send(ask("ELECTED", 3, 400))).toEqual([write("1", 8, 3, null)]);
    // The store holds revision 6 of the key: revisions 7 and 8 are gone from the replica leading it.
    expect(r.send(lost("1", 6, 410))).toEqual([nothing("ELECTED:3"), READ]);
    expect(r.context.record).toEqual({ coordinator: null, epoch: 6, revision: 6, malformed: true });
    // A read of what the store holds now changes nothing; its lease counts from the conflict.
    r.send(entry(420, record(2, 5, 6)));
    expect(r.send(ask("ELECTED", 3, 809))).toEqual([nothing("ELECTED:3")]);
    expect(r.send(ask("ELECTED", 3, 810))).toEqual([write("2", 6, 3, null)]);
    expect(r.send(written("2", 815, record(3, 7, 7)))).toEqual([coord("ELECTED:3", 7, 7)]);
  });

  it("a revision newer than the record's, or none said, is an ordinary lost race", () => {
    for (const current of [9, 8, undefined]) {
      const r = withCoordinator();
      r.send(ask("ELECTED", 3, 400));
      r.send(lost("1", current, 410));
      expect(r.context.record).toEqual(record(2, 5, 8));
    }
  });

  it("a key the store no longer holds at all (revision 0) is created by the next grant", () => {
    const r = withCoordinator();
    r.send(ask("ELECTED", 3, 400), lost("1", 0, 410));
    expect(r.context.record).toBeNull();
    expect(r.send(ask("ELECTED", 3, 411))).toEqual([write("2", null, 3, null)]);
  });
});

describe("registry: an unreadable record in the store", () => {
  const junk = (revision: number): RegistryRecord => ({
    coordinator: null,
    epoch: revision,
    revision,
    malformed: true,
  });

  it("is vouched for by nobody: WHO answers NOTHING, and the store counts as read", () => {
    const r = registry();
    expect(r.send(entry(0, junk(12)), who(1))).toEqual([nothing("who")]);
    expect(r.context.loaded).toBe(true);
  });

  it("holds off a grant for one lease after it was first seen, then is replaced by compare-and-set on its revision", () => {
    const r = registry();
    r.send(entry(100, junk(12)));
    // It may have been written over a live coordinator, whose lease runs at most this long.
    expect(r.send(ask("ELECTED", 3, 499))).toEqual([nothing("ELECTED:3")]);
    expect(expired(r.context, 500)).toBe(true);
    expect(r.send(ask("ELECTED", 3, 500))).toEqual([write("1", 12, 3, null)]);
    expect(r.send(written("1", 505, record(3, 13, 13)))).toEqual([coord("ELECTED:3", 13, 13)]);
    expect(r.send(who(506))).toEqual([ok("who", 3, 13)]);
  });

  it("written over a live coordinator ends its term in this registry's eyes and is replaced a lease later", () => {
    const r = withCoordinator();
    r.send(entry(200, junk(9)));
    expect(r.send(who(201))).toEqual([nothing("who")]);
    expect(r.send(ask("SERVER", 4, 599))).toEqual([nothing("SERVER:4")]);
    expect(r.send(ask("SERVER", 4, 600))).toEqual([write("1", 9, 4, null)]);
  });
});

describe("registry: a term confirmed before it is granted (nats-server 2.9's compare-and-set)", () => {
  const confirming = { ...input, confirmMs: 50 };

  it("grants COORD only after a second write, expecting the first one's revision, passes; the lease counts from it", () => {
    const r = registry(confirming);
    r.send(entry(0, null));
    expect(r.send(ask("ELECTED", 2, 10))).toEqual([
      { type: "write", write: { op: "1", expected: null, coordinator: 2, epoch: null } },
    ]);
    // The opening write landed: no answer yet, and the confirmation is due confirmMs later.
    expect(r.send(written("1", 20, record(2, 5)))).toEqual([]);
    expect(registryTickDue(r.context, 20)).toBe(70);
    expect(r.send(tick(69))).toEqual([]);
    expect(r.send(tick(70))).toEqual([
      { type: "write", write: { op: "2", expected: 5, coordinator: 2, epoch: 5 } },
    ]);
    expect(r.send(written("2", 80, record(2, 5, 6)))).toEqual([
      { type: "answer", ref: "ELECTED:2", answer: { type: "COORD", epoch: 5, revision: 6, confirmedAt: 70 } },
    ]);
    expect(r.context.confirms).toEqual([]);
  });

  it("a confirmation that loses its compare-and-set (a rival's write landed after the first) grants nothing", () => {
    const r = registry(confirming);
    r.send(entry(0, null), ask("ELECTED", 2, 10), written("1", 20, record(2, 5)), tick(70));
    // The rival's term, opened by a write that passed the same check, lands: it stands.
    r.send(entry(75, record(3, 6)));
    expect(r.send({ type: "store.conflict", op: "2", at: 80 })).toEqual([
      { type: "answer", ref: "ELECTED:2", answer: { type: "OK", coordinator: 3, epoch: 6 } },
      { type: "read" },
    ]);
  });
});
