import { Encoder } from "cbor-x";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  decode,
  encode,
  encodingOf,
  errorRply,
  makeRply,
  parseRqst,
  rplyError,
} from "../../protocol/codec.js";
import { ERRORS, MAX_MESSAGE_BYTES, rcode, rplySchema } from "../../protocol/messages.js";

const cbor = new Encoder({ useRecords: false, mapsAsObjects: true });
const json = (v: unknown) => ({
  data: new TextEncoder().encode(JSON.stringify(v)),
  headers: { "Content-Type": "application/json" },
});
const asCbor = (v: unknown) => ({ data: cbor.encode(v) as Uint8Array, headers: undefined });
const good = { v: 1, type: "GETDVSINFO", src: "tool-1", dst: 1, seq: 7, params: {} };

describe("codec", () => {
  it("reads CBOR by default and JSON when the Content-Type header says so", () => {
    expect(encodingOf({ headers: undefined })).toBe("cbor");
    expect(encodingOf({ headers: { "content-type": "application/json; charset=utf-8" } })).toBe("json");
    expect(encodingOf({ headers: { "Content-Type": "text/plain" } })).toBe("cbor");
  });

  it("round-trips a value through both encodings", () => {
    const value = { a: 1, b: [1, "x", null], c: { d: true } };
    for (const enc of ["cbor", "json"] as const) {
      const back = decode(encode(value, enc), enc);
      expect(back).toEqual({ ok: true, value });
    }
  });

  it("writes plain CBOR maps that a generic decoder reads as objects", () => {
    const bytes = encode({ v: 1, type: "PS" });
    expect(new Encoder({ useRecords: false }).decode(bytes)).toEqual({ v: 1, type: "PS" });
    // A CBOR map (major type 5), not a record-extension tag.
    expect((bytes[0] ?? 0) >> 5).toBe(5);
  });

  it("accepts a valid RQST in CBOR and in JSON, and strips the seed's RQST_ prefix", () => {
    const a = parseRqst(asCbor(good));
    expect(a.ok && a.rqst.type).toBe("GETDVSINFO");
    const b = parseRqst(json({ ...good, type: "RQST_GETDVSINFO" }));
    expect(b.ok && b.encoding).toBe("json");
    expect(b.ok && b.rqst.type).toBe("GETDVSINFO");
  });

  it("answers malformed bytes with EBADMSG", () => {
    const r = parseRqst({ data: new Uint8Array([0xff, 0x00, 0x13]), headers: undefined });
    expect(r.ok ? "ok" : r.error).toBe("EBADMSG");
    const j = parseRqst({
      data: new TextEncoder().encode("{not json"),
      headers: { "Content-Type": "application/json" },
    });
    expect(j.ok ? "ok" : [j.error, j.encoding]).toEqual(["EBADMSG", "json"]);
  });

  it("answers a message of the wrong shape with EBADMSG and the failing paths", () => {
    const r = parseRqst(json({ ...good, seq: "seven", extra: 1 }));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error).toBe("EBADMSG");
    expect(r.issues?.map((i) => i.path)).toEqual(expect.arrayContaining(["seq"]));
    expect(r.partial).toEqual({ type: "GETDVSINFO", src: "tool-1", seq: 0 });
  });

  it("answers an unknown request type with ENOSYS, keeping the requester's seq", () => {
    const r = parseRqst(json({ ...good, type: "FROBNICATE" }));
    expect(r.ok ? "ok" : [r.error, r.partial.seq]).toEqual(["ENOSYS", 7]);
  });

  it("answers params that are not of the type's shape with EBADMSG naming params paths", () => {
    const r = parseRqst(json({ ...good, type: "DCINIT", params: { dcid: "x", bogus: 1 } }));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error).toBe("EBADMSG");
    expect(r.issues?.map((i) => i.path)).toEqual(expect.arrayContaining(["params.dcid"]));
    const notObject = parseRqst(json({ ...good, params: 42 }));
    expect(notObject.ok ? "ok" : notObject.error).toBe("EBADMSG");
  });

  it("refuses a message over the size limit with EMSGSIZE before decoding it", () => {
    const big = { data: new Uint8Array(MAX_MESSAGE_BYTES + 1), headers: undefined };
    const r = parseRqst(big);
    expect(r.ok ? "ok" : r.error).toBe("EMSGSIZE");
  });

  it("refuses a wrong protocol version", () => {
    const r = parseRqst(json({ ...good, v: 2 }));
    expect(r.ok ? "ok" : r.error).toBe("EBADMSG");
  });

  it("never throws, whatever the bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), fc.boolean(), (bytes, asJson) => {
        const r = parseRqst({
          data: bytes,
          headers: asJson ? { "Content-Type": "application/json" } : undefined,
        });
        expect(typeof r.ok).toBe("boolean");
      }),
      { numRuns: 2_000, seed: 20261122 },
    );
  });

  it("never throws on mutated valid messages, and accepts only well-shaped ones", () => {
    const valid = cbor.encode(good) as Uint8Array;
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
        (edits) => {
          const bytes = Uint8Array.from(valid);
          for (const [at, value] of edits) bytes[at] = value;
          const r = parseRqst({ data: bytes, headers: undefined });
          if (r.ok) expect(r.rqst.v).toBe(1);
        },
      ),
      { numRuns: 2_000, seed: 7 },
    );
  });

  it("survives deeply nested JSON without crashing", () => {
    const deep = `${"[".repeat(100_000)}${"]".repeat(100_000)}`;
    const r = parseRqst({
      data: new TextEncoder().encode(deep),
      headers: { "Content-Type": "application/json" },
    });
    expect(r.ok).toBe(false);
  });

  it("builds replies whose count follows data and whose rcode names the error", () => {
    const ok = makeRply(good, 1, 0, [1, 2, 3]);
    expect(rplySchema.parse(ok)).toEqual(ok);
    expect(ok.count).toBe(3);
    expect(ok.dst).toBe("tool-1");
    const err = errorRply(good, 1, "ENOSYS", "nope");
    expect(err.rcode).toBe(rcode("ENOSYS"));
    expect(rplyError(err)).toBe("ENOSYS");
    expect(rplyError(ok)).toBeUndefined();
  });
});

describe("error table", () => {
  it("gives every named error a distinct negative code", () => {
    const codes = Object.values(ERRORS).map((e) => e.code);
    expect(new Set(codes).size).toBe(codes.length);
    expect(codes.every((c) => c < 0)).toBe(true);
    for (const name of [
      "EBADMSG",
      "ENOSYS",
      "EPERM",
      "ENOENT",
      "EEXIST",
      "EBUSY",
      "ETIMEDOUT",
      "EHOSTDOWN",
      "EINVAL",
      "EAGAIN",
      "ENOTINIT",
    ]) {
      expect(Object.keys(ERRORS)).toContain(name);
    }
  });
});
