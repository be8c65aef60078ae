// The CasStore contract: one suite that every store runs unchanged (JetStream KV
// against a real nats-server, test/transport/kv.nats.test.ts, and the simulated
// store of the sim network, test/transport/kv.sim.test.ts). Time is only ever
// waited through the fixture's sleep, so the sim runs it on its clock.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CasConflictError, StoreUnavailableError } from "../../../transport/errors.js";
import type { CasStore, KvEntry } from "../../../transport/kv.js";

export interface CasStoreFixture {
  /** The store as seen from `host`; every host of one fixture shares one bucket. */
  open(host: string): Promise<CasStore>;
  /** The stores' operation timeout: how long a caller may wait for StoreUnavailableError. */
  readonly timeoutMs: number;
  sleep(ms: number): Promise<void>;
  close(): Promise<void>;
  /** Makes the store unreachable from `host` (its link to the server breaks) until restore. */
  cut(host: string): Promise<void>;
  restore(host: string): Promise<void>;
}

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

export function casStoreContract(name: string, setup: () => Promise<CasStoreFixture>): void {
  describe(`CasStore contract: ${name}`, () => {
    let fixture: CasStoreFixture;
    let keys = 0;
    /** A key no other test (nor an earlier run against the same bucket) has written. */
    const fresh = (label: string) => `${label}-${++keys}`;

    beforeEach(async () => {
      fixture = await setup();
    });
    afterEach(async () => {
      await fixture.close();
    });

    /** Polls `check` until it returns true or `timeoutMs` of fixture time has passed. */
    async function eventually(check: () => boolean, timeoutMs = 5_000, stepMs = 10): Promise<void> {
      for (let waited = 0; waited <= timeoutMs; waited += stepMs) {
        if (check()) return;
        await fixture.sleep(stepMs);
      }
      expect(check(), `condition not met within ${timeoutMs} ms`).toBe(true);
    }

    /** How a promise settles, or "late" if it has not within `ms` of fixture time. */
    async function settledWithin<T>(
      promise: Promise<T>,
      ms: number,
    ): Promise<{ ok: true; value: T } | { ok: false; error: unknown } | "late"> {
      return Promise.race([
        promise.then(
          (value) => ({ ok: true as const, value }),
          (error: unknown) => ({ ok: false as const, error }),
        ),
        fixture.sleep(ms).then(() => "late" as const),
      ]);
    }

    const summary = (e: KvEntry | undefined) =>
      e && { key: e.key, value: text(e.value), revision: e.revision };

    it("reads a never-written key as undefined", async () => {
      const a = await fixture.open("a");
      expect(await a.get(fresh("never"))).toBeUndefined();
    });

    it("reads back a created key with its value and the revision the create returned", async () => {
      const a = await fixture.open("a");
      const b = await fixture.open("b");
      const key = fresh("created");
      const revision = await a.create(key, bytes("one"));
      expect(revision).toBeGreaterThan(0);
      expect(summary(await a.get(key))).toEqual({ key, value: "one", revision });
      expect(summary(await b.get(key))).toEqual({ key, value: "one", revision });
    });

    it("refuses a second create of the same key with CasConflictError and keeps the first value", async () => {
      const a = await fixture.open("a");
      const b = await fixture.open("b");
      const key = fresh("twice");
      const revision = await a.create(key, bytes("first"));
      const error = await b.create(key, bytes("second")).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CasConflictError);
      expect(error).toMatchObject({ key, expected: "absent" });
      expect(summary(await a.get(key))).toEqual({ key, value: "first", revision });
    });

    it("accepts an update at the current revision and returns a larger revision", async () => {
      const a = await fixture.open("a");
      const key = fresh("update");
      const first = await a.create(key, bytes("one"));
      const second = await a.update(key, bytes("two"), first);
      expect(second).toBeGreaterThan(first);
      expect(summary(await a.get(key))).toEqual({ key, value: "two", revision: second });
    });

    it("refuses an update at a stale revision with CasConflictError and keeps the current value", async () => {
      const a = await fixture.open("a");
      const b = await fixture.open("b");
      const key = fresh("stale");
      const first = await a.create(key, bytes("one"));
      const second = await a.update(key, bytes("two"), first);
      const error = await b.update(key, bytes("three"), first).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CasConflictError);
      expect(error).toMatchObject({ key, expected: first });
      expect(summary(await b.get(key))).toEqual({ key, value: "two", revision: second });
    });

    it("says which revision the key holds when an update expected another, also one it never held", async () => {
      const a = await fixture.open("a");
      const key = fresh("current");
      const first = await a.create(key, bytes("one"));
      const second = await a.update(key, bytes("two"), first);
      // A revision beyond the key's own: what a registry remembers from a replica the store lost.
      for (const expected of [first, second + 5]) {
        const error = await a.update(key, bytes("three"), expected).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(CasConflictError);
        expect(error).toMatchObject({ expected, current: second });
      }
    });

    it("refuses an update of a never-written key with CasConflictError", async () => {
      const a = await fixture.open("a");
      const key = fresh("absent");
      for (const expected of [0, 1, 12_345]) {
        await expect(a.update(key, bytes("x"), expected)).rejects.toBeInstanceOf(CasConflictError);
      }
      expect(await a.get(key)).toBeUndefined();
    });

    it("lists the keys under a prefix, sorted, and only those", async () => {
      const a = await fixture.open("a");
      const b = await fixture.open("b");
      const prefix = `${fresh("list")}.`;
      await a.create(`${prefix}b`, bytes("2"));
      await b.create(`${prefix}a`, bytes("1"));
      await a.create(`${fresh("other")}`, bytes("3"));
      expect(await b.keys(prefix)).toEqual([`${prefix}a`, `${prefix}b`]);
      expect(await a.keys(`${fresh("none")}.`)).toEqual([]);
    });

    it("lets exactly one of two concurrent updates from two hosts at the same revision win", async () => {
      const a = await fixture.open("a");
      const b = await fixture.open("b");
      for (let round = 0; round < 20; round++) {
        const key = fresh("race");
        const base = await a.create(key, bytes("base"));
        const results = await Promise.allSettled([
          a.update(key, bytes("from-a"), base),
          b.update(key, bytes("from-b"), base),
        ]);
        const won = results.flatMap((r, i) =>
          r.status === "fulfilled" ? [{ host: i, revision: r.value }] : [],
        );
        const lost = results.flatMap((r) => (r.status === "rejected" ? [r.reason as unknown] : []));
        expect(won, `round ${round}`).toHaveLength(1);
        expect(lost[0], `round ${round}`).toBeInstanceOf(CasConflictError);
        const winner = won[0]!;
        expect(summary(await a.get(key))).toEqual({
          key,
          value: winner.host === 0 ? "from-a" : "from-b",
          revision: winner.revision,
        });
      }
    });

    it("gives every write a larger revision than the one before, across keys and hosts", async () => {
      const a = await fixture.open("a");
      const b = await fixture.open("b");
      const x = fresh("grow-x");
      const y = fresh("grow-y");
      const revisions: number[] = [];
      let rx = await a.create(x, bytes("x0"));
      revisions.push(rx);
      let ry = await b.create(y, bytes("y0"));
      revisions.push(ry);
      for (let n = 1; n <= 5; n++) {
        rx = await b.update(x, bytes(`x${n}`), rx);
        revisions.push(rx);
        ry = await a.update(y, bytes(`y${n}`), ry);
        revisions.push(ry);
      }
      for (let i = 1; i < revisions.length; i++) expect(revisions[i]).toBeGreaterThan(revisions[i - 1]!);
      expect((await a.get(x))?.revision).toBe(rx);
      expect((await b.get(y))?.revision).toBe(ry);
    });

    it("watches a key: the current entry first, then later writes in order of revision up to the latest", async () => {
      const a = await fixture.open("a");
      const b = await fixture.open("b");
      const key = fresh("watch");
      const first = await b.create(key, bytes("v0"));
      const got: KvEntry[] = [];
      const stop = a.watch(key, (e) => got.push(e));
      try {
        await eventually(() => got.length >= 1);
        expect(summary(got[0])).toEqual({ key, value: "v0", revision: first });
        let revision = first;
        for (let n = 1; n <= 5; n++) revision = await b.update(key, bytes(`v${n}`), revision);
        await eventually(() => got.at(-1)?.revision === revision);
        expect(summary(got.at(-1))).toEqual({ key, value: "v5", revision });
        const seen = got.map((e) => e.revision);
        expect(seen).toEqual([...seen].sort((p, q) => p - q));
        expect(new Set(seen).size).toBe(seen.length);
      } finally {
        stop();
      }
    });

    it("watches a never-written key and delivers its first write", async () => {
      const a = await fixture.open("a");
      const b = await fixture.open("b");
      const key = fresh("watch-new");
      const got: KvEntry[] = [];
      const stop = a.watch(key, (e) => got.push(e));
      try {
        // Nothing to deliver yet: a key that was never written has no current entry.
        await fixture.sleep(200);
        expect(got).toEqual([]);
        const revision = await b.create(key, bytes("born"));
        await eventually(() => got.length >= 1);
        expect(got.map(summary)).toEqual([{ key, value: "born", revision }]);
      } finally {
        stop();
      }
    });

    it("delivers nothing more to a stopped watch", async () => {
      const a = await fixture.open("a");
      const b = await fixture.open("b");
      const key = fresh("stopped");
      let revision = await b.create(key, bytes("v0"));
      const got: KvEntry[] = [];
      const stop = a.watch(key, (e) => got.push(e));
      await eventually(() => got.length >= 1);
      stop();
      stop();
      const before = got.length;
      for (let n = 1; n <= 3; n++) revision = await b.update(key, bytes(`v${n}`), revision);
      await fixture.sleep(300);
      expect(got).toHaveLength(before);
    });

    it("stops its watches and refuses operations once closed, and closes twice without harm", async () => {
      const a = await fixture.open("a");
      const b = await fixture.open("b");
      const key = fresh("closed");
      let revision = await b.create(key, bytes("v0"));
      const got: KvEntry[] = [];
      a.watch(key, (e) => got.push(e));
      await eventually(() => got.length >= 1);
      await a.close();
      await a.close();
      revision = await b.update(key, bytes("v1"), revision);
      await expect(a.get(key)).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(a.update(key, bytes("v2"), revision)).rejects.toBeInstanceOf(StoreUnavailableError);
      await fixture.sleep(300);
      expect(got).toHaveLength(1);
      expect(summary(await b.get(key))).toEqual({ key, value: "v1", revision });
    });

    it("rejects an operation from a cut host with StoreUnavailableError within the timeout while other hosts work", async () => {
      const a = await fixture.open("a");
      const b = await fixture.open("b");
      const key = fresh("cut");
      const revision = await a.create(key, bytes("v0"));
      await fixture.cut("a");
      const operations: (() => Promise<unknown>)[] = [
        () => a.get(key),
        () => a.create(fresh("cut-new"), bytes("x")),
        () => a.update(key, bytes("from-a"), revision),
      ];
      for (const operation of operations) {
        const outcome = await settledWithin(operation(), fixture.timeoutMs + 500);
        expect(outcome).not.toBe("late");
        expect(outcome).toMatchObject({ ok: false });
        if (outcome !== "late" && !outcome.ok) expect(outcome.error).toBeInstanceOf(StoreUnavailableError);
      }
      // The update may or may not have happened; the store still answers b with one consistent value.
      const seen = await b.get(key);
      expect(["v0", "from-a"]).toContain(text(seen!.value));
      const next = await b.update(key, bytes("from-b"), seen!.revision);
      expect(next).toBeGreaterThan(seen!.revision);
    });

    it("works again from a host whose cut link is restored", async () => {
      const a = await fixture.open("a");
      const b = await fixture.open("b");
      const key = fresh("restored");
      const revision = await b.create(key, bytes("v0"));
      await fixture.cut("a");
      await expect(a.get(key)).rejects.toBeInstanceOf(StoreUnavailableError);
      await fixture.restore("a");
      let seen: KvEntry | undefined;
      for (let attempt = 0; attempt < 50 && seen === undefined; attempt++) {
        seen = await a.get(key).catch(async (error: unknown) => {
          expect(error).toBeInstanceOf(StoreUnavailableError);
          await fixture.sleep(100);
          return undefined;
        });
      }
      expect(summary(seen)).toEqual({ key, value: "v0", revision });
      const next = await a.update(key, bytes("v1"), revision);
      expect(summary(await b.get(key))).toEqual({ key, value: "v1", revision: next });
    });

    it("keeps a watch across a cut link: writes made after the link is restored reach it", async () => {
      const a = await fixture.open("a");
      const b = await fixture.open("b");
      const key = fresh("watch-cut");
      let revision = await b.create(key, bytes("v0"));
      const got: KvEntry[] = [];
      const stop = a.watch(key, (e) => got.push(e));
      try {
        await eventually(() => got.length >= 1);
        await fixture.cut("a");
        for (let n = 1; n <= 3; n++) revision = await b.update(key, bytes(`v${n}`), revision);
        await fixture.restore("a");
        // Writes made while a was cut may be missed, and so may those before its
        // session is back: b keeps writing until one arrives.
        for (let n = 4; n < 60 && got.at(-1)?.revision !== revision; n++) {
          revision = await b.update(key, bytes(`v${n}`), revision);
          await fixture.sleep(100);
        }
        expect(got.at(-1)?.revision).toBe(revision);
        const seen = got.map((e) => e.revision);
        expect(seen).toEqual([...seen].sort((p, q) => p - q));
      } finally {
        stop();
      }
    });
  });
}
