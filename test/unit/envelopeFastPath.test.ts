// The envelope fast path accepts only what rqstEnvelopeSchema accepts, with the
// same fields, and it does accept the envelopes clients send, so the schema
// only decides the rest.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encode, parseRqst } from "../../protocol/codec.js";
import { envelopeFastPath, FAST_PATH_KEYS } from "../../protocol/envelopeFastPath.js";
import { rqstEnvelopeSchema } from "../../protocol/messages.js";

const good = { v: 1, type: "GETDVSINFO", src: "dvsctl-1", dst: 3, seq: 7, params: {} };

// Each field: mostly values the schema takes, sometimes near misses it refuses.
const mostly = <T, U>(valid: fc.Arbitrary<T>, miss: fc.Arbitrary<U>) =>
  fc.oneof({ arbitrary: valid, weight: 6 }, { arbitrary: miss, weight: 1 });
const field = {
  v: mostly(fc.constant(1), fc.constantFrom(2, 0, "1", 1.5, null)),
  type: mostly(
    fc.constantFrom("GETDVSINFO", "RQST_PING", "", "x".repeat(32)),
    fc.oneof(fc.constant("x".repeat(33)), fc.string({ minLength: 30, maxLength: 40 }), fc.integer()),
  ),
  src: mostly(
    fc.oneof(
      fc.constantFrom(0, 65_535, "a".repeat(64), "t.1:x-_"),
      fc.stringMatching(/^[A-Za-z0-9_.:-]{1,64}$/),
    ),
    fc.oneof(
      fc.constantFrom(65_536, -1, 1.5, Number.NaN, "", "a b", "a".repeat(65), "ALL\n"),
      fc.string({ maxLength: 70 }),
      fc.integer(),
    ),
  ),
  dst: mostly(fc.constantFrom(0, 1, 65_535, "ALL"), fc.constantFrom(65_536, -1, 2.5, "all", "1", null, -0)),
  seq: mostly(
    fc.oneof(fc.constantFrom(0, Number.MAX_SAFE_INTEGER), fc.nat()),
    fc.oneof(
      fc.constantFrom(-0, -1, 1.5, Number.MAX_SAFE_INTEGER + 1, Infinity, "1"),
      fc.integer(),
      fc.double(),
    ),
  ),
  action: mostly(
    fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/),
    fc.constantFrom("", "a".repeat(65), "a.b", "a b", "a\n", 5, null),
  ),
  role: mostly(fc.constantFrom("admin", "viewer", undefined), fc.constantFrom("root", "", null, 1)),
  timeout: mostly(
    fc.oneof(fc.integer({ min: 1, max: 600_000 }), fc.constant(undefined)),
    fc.constantFrom(0, 600_001, 1.5, -5, "100", null),
  ),
  params: fc.oneof(fc.constant({}), fc.anything({ maxDepth: 2 })),
  auth: fc.constantFrom({ key: "U", at: 1, nonce: "n", dst: 1 }, null, "x"),
  extra: fc.anything({ maxDepth: 1 }),
};

const envelope = fc
  .record(field, {
    requiredKeys: ["v", "type", "src", "dst", "seq"],
    // auth and an extra key only now and then, so most envelopes reach the other checks.
  })
  .chain((e) =>
    fc.boolean().map((keep) => {
      if (keep) return e;
      const { auth: _auth, extra: _extra, ...rest } = e;
      return rest;
    }),
  );

describe("the RQST envelope fast path", () => {
  it("accepts nothing the schema refuses, and what it accepts the schema returns unchanged", () => {
    let accepted = 0;
    fc.assert(
      fc.property(envelope, (value) => {
        const fast = envelopeFastPath(value);
        if (fast === undefined) return true;
        accepted++;
        const schema = rqstEnvelopeSchema.safeParse(value);
        expect(schema.success).toBe(true);
        expect(fast).toStrictEqual(schema.data);
        return true;
      }),
      { numRuns: 5_000 },
    );
    // The generator reaches the accepting side often enough to mean something.
    expect(accepted).toBeGreaterThan(20);
  });

  it("accepts the envelopes clients send, with every optional field", () => {
    expect(envelopeFastPath(good)).toBe(good);
    const full = { ...good, dst: "ALL", action: "01HXACTION", role: "viewer", timeout: 5_000, seq: 0 };
    expect(envelopeFastPath(full)).toBe(full);
    expect(envelopeFastPath({ ...good, params: undefined })).toBeDefined();
  });

  it("leaves signed, unknown-keyed and ill-typed envelopes to the schema", () => {
    const auth = { key: `U${"A".repeat(55)}`, at: 1, nonce: "n".repeat(16), dst: 3 };
    for (const doubt of [
      { ...good, auth },
      { ...good, extra: 1 },
      JSON.parse(`{"v":1,"type":"GETDVSINFO","src":"t","dst":1,"seq":1,"__proto__":{}}`),
      { ...good, seq: 2 ** 53 },
      { ...good, src: "a b" },
      [good],
      null,
    ])
      expect(envelopeFastPath(doubt)).toBeUndefined();
  });

  it("knows exactly the schema's keys, so a field added to the schema is not waved through", () => {
    expect([...FAST_PATH_KEYS].sort()).toEqual(Object.keys(rqstEnvelopeSchema.shape).sort());
  });

  it("a request the fast path takes parses as it did through the schema", () => {
    const parsed = parseRqst({
      data: encode({ ...good, type: "RQST_GETDVSINFO", timeout: 100 }),
      headers: undefined,
    });
    expect(parsed).toEqual({
      ok: true,
      encoding: "cbor",
      rqst: { v: 1, src: "dvsctl-1", dst: 3, seq: 7, timeout: 100, type: "GETDVSINFO", params: {} },
    });
  });
});

describe("params of a type that takes none", () => {
  const asked = (params: unknown) => parseRqst({ data: encode({ ...good, params }), headers: undefined });

  it("absent or {} is {} without a parse, a fresh object each time", () => {
    const a = asked(undefined);
    const b = asked({});
    expect(a.ok && a.rqst.params).toEqual({});
    expect(b.ok && b.rqst.params).toEqual({});
    expect(a.ok && b.ok && a.rqst.params !== b.rqst.params).toBe(true);
  });

  it("anything else is the schema's to refuse, as before", () => {
    for (const params of [{ a: 1 }, [], null, 0, "x"]) {
      const parsed = asked(params);
      expect(parsed.ok ? "accepted" : parsed.error, JSON.stringify(params)).toBe("EBADMSG");
    }
  });
});
