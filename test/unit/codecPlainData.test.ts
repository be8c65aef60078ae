// A request holds plain data only: whatever cbor-x can build from tags (cycles,
// shared references, Sets, Maps, typed arrays, Dates, RegExps, Errors) is
// answered EBADMSG, at once and without throwing.
import { Encoder } from "cbor-x";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MAX_PLAIN_DEPTH, notPlainData, parseRqst } from "../../protocol/codec.js";
import { cborBeyondPlainData } from "../../protocol/plainCbor.js";

// structuredClone makes cbor-x write tags 28/29 for repeated and cyclic references.
const tagged = new Encoder({ useRecords: false, mapsAsObjects: true, structuredClone: true });
const plain = new Encoder({ useRecords: false, mapsAsObjects: true });
const asCbor = (v: unknown, encoder = tagged) => ({
  data: encoder.encode(v) as Uint8Array,
  headers: undefined,
});
const asJson = (text: string) => ({
  data: new TextEncoder().encode(text),
  headers: { "Content-Type": "application/json" },
});
const spawn = (input: unknown) => ({
  v: 1,
  type: "SPAWN",
  src: "tool-1",
  dst: 1,
  seq: 9,
  params: { dcid: 1, machine: "counter", input },
});

function refusal(parsed: ReturnType<typeof parseRqst>) {
  return parsed.ok ? "accepted" : { error: parsed.error, partial: parsed.partial };
}

describe("plain data in requests", () => {
  it("a SPAWN whose CBOR input is cyclic (tags 28/29) is answered EBADMSG, naming the request", () => {
    const input: Record<string, unknown> = { n: 1 };
    input.self = input;
    const cyclicArray: unknown[] = [];
    cyclicArray.push(cyclicArray);
    for (const value of [input, cyclicArray]) {
      expect(refusal(parseRqst(asCbor(spawn(value))))).toEqual({
        error: "EBADMSG",
        partial: { type: "SPAWN", src: "tool-1", seq: 9 },
      });
    }
  });

  it("a shared reference is refused too: it lets a small message unfold exponentially", () => {
    let node: unknown = 1;
    for (let i = 0; i < 40; i++) node = [node, node];
    const bytes = tagged.encode(spawn(node)) as Uint8Array;
    expect(bytes.byteLength).toBeLessThan(2_000);
    expect(refusal(parseRqst({ data: bytes, headers: undefined }))).toMatchObject({ error: "EBADMSG" });
  });

  it("Sets, Maps, typed arrays, Buffers, Dates, RegExps and Errors anywhere in a request are EBADMSG", () => {
    const values = [
      new Set([1, 2]),
      new Map([["a", 1]]),
      new Uint8Array([1, 2, 3]),
      new Float64Array([1.5]),
      Buffer.from("secret"),
      new Date(0),
      /x+/g,
      new Error("boom"),
    ];
    for (const value of values) {
      expect(refusal(parseRqst(asCbor(spawn({ deep: [{ value }] }))))).toMatchObject({ error: "EBADMSG" });
      expect(refusal(parseRqst(asCbor({ ...spawn(1), extra: value }, plain)))).toMatchObject({
        error: "EBADMSG",
      });
    }
  });

  it("nesting deeper than the limit is EBADMSG in CBOR and in JSON; the limit itself passes", () => {
    const nest = (depth: number) => {
      let v: unknown = 0;
      for (let i = 0; i < depth; i++) v = [v];
      return v;
    };
    // The envelope and params take two of the levels.
    const fits = MAX_PLAIN_DEPTH - 2;
    expect(parseRqst(asCbor(spawn(nest(fits)), plain)).ok).toBe(true);
    expect(refusal(parseRqst(asCbor(spawn(nest(fits + 1)), plain)))).toMatchObject({ error: "EBADMSG" });
    const deepJson = `${"[".repeat(10_000)}${"]".repeat(10_000)}`;
    const r = parseRqst(
      asJson(
        `{"v":1,"type":"SPAWN","src":"t","dst":1,"seq":1,"params":{"dcid":1,"machine":"counter","input":${deepJson}}}`,
      ),
    );
    expect(r.ok ? "accepted" : [r.error, r.encoding]).toEqual(["EBADMSG", "json"]);
  });

  it("plain objects, arrays and scalars of every kind pass, in CBOR and in JSON", () => {
    const input = { a: [1, "x", null, true, { b: -2.5 }], c: {}, d: [], big: 2n ** 70n };
    expect(parseRqst(asCbor(spawn(input), plain)).ok).toBe(true);
    expect(notPlainData(Object.assign(Object.create(null), { a: 1 }))).toBeUndefined();
    expect(
      parseRqst(asJson(JSON.stringify(spawn({ a: [1, "x", null, true, { b: -2.5 }], __proto__x: {} })))).ok,
    ).toBe(true);
  });

  it("the walk names what it refused and never throws, whatever it is given", () => {
    expect(notPlainData(new Map())).toBe("Map");
    expect(notPlainData([new Set()])).toBe("Set");
    expect(notPlainData({ f: () => 1 })).toBe("function");
    class Point {
      x = 1;
    }
    expect(notPlainData({ p: new Point() })).toBe("object with a class");
    const loop: unknown[] = [];
    loop.push(loop);
    expect(notPlainData({ loop })).toBe("shared or cyclic reference");
  });
});

describe("plain CBOR bytes", () => {
  const hex = (h: string) => Uint8Array.from(Buffer.from(h, "hex"));

  it("names any tag but a bignum, and any map key that is not a text string", () => {
    expect(cborBeyondPlainData(hex("d90102820102"))).toBe("CBOR tag 258");
    expect(cborBeyondPlainData(hex("d90103a10102"))).toBe("CBOR tag 259");
    expect(cborBeyondPlainData(hex("c11a5f5e1000"))).toBe("CBOR tag 1");
    expect(cborBeyondPlainData(hex("d9d9f7a0"))).toBe("CBOR tag 55799");
    for (const key of ["a10102", "a1800102", "a1a0a0", "a1f600", "a1c2410100"])
      expect(cborBeyondPlainData(hex(key)), key).toBe("a CBOR map key that is not a text string");
    expect(cborBeyondPlainData(hex("a2616101c24101"))).toBe("a CBOR map key that is not a text string");
  });

  it("passes what this codec writes, bignums and indefinite-length arrays and maps", () => {
    const value = spawn({
      a: [1, "x", null, true, { b: -2.5 }],
      big: 2n ** 70n,
      neg: -(2n ** 70n),
      u: undefined,
    });
    expect(cborBeyondPlainData(plain.encode(value) as Uint8Array)).toBeUndefined();
    expect(cborBeyondPlainData(hex("9f01bf6161f6ff80ff"))).toBeUndefined();
  });

  it("names simple values, indefinite strings, stray breaks, truncation and trailing bytes", () => {
    expect(cborBeyondPlainData(hex("f0"))).toBe("the CBOR simple value 16");
    expect(cborBeyondPlainData(hex("7f6161ff"))).toMatch(/indefinite-length/);
    expect(cborBeyondPlainData(hex("bf6161ff"))).toBe("a stray CBOR break");
    expect(cborBeyondPlainData(hex("9bffffffffffffffff"))).toBe("a CBOR item cut short");
    expect(cborBeyondPlainData(hex("0101"))).toBe("bytes after the CBOR item");
  });

  it("names a byte string (it decodes to a Uint8Array) but the one under a bignum's tag", () => {
    expect(cborBeyondPlainData(hex("43010203"))).toBe("a CBOR byte string");
    expect(cborBeyondPlainData(hex("a1616140"))).toBe("a CBOR byte string");
    expect(cborBeyondPlainData(hex("82c2410140"))).toBe("a CBOR byte string");
    expect(cborBeyondPlainData(hex("82c24101c34100"))).toBeUndefined();
  });

  it("names nesting deeper than the limit, of definite and indefinite length, empty or not", () => {
    const arrays = (depth: number, inner: string, open = "81") => hex(open.repeat(depth - 1) + inner);
    expect(cborBeyondPlainData(arrays(MAX_PLAIN_DEPTH, "80"))).toBeUndefined();
    expect(cborBeyondPlainData(arrays(MAX_PLAIN_DEPTH + 1, "80"))).toBe(
      `nesting deeper than ${MAX_PLAIN_DEPTH}`,
    );
    expect(cborBeyondPlainData(arrays(MAX_PLAIN_DEPTH + 1, "a0"))).toBe(
      `nesting deeper than ${MAX_PLAIN_DEPTH}`,
    );
    expect(
      cborBeyondPlainData(hex(`${"9f".repeat(MAX_PLAIN_DEPTH)}${"ff".repeat(MAX_PLAIN_DEPTH)}`)),
    ).toBeUndefined();
    expect(
      cborBeyondPlainData(hex(`${"9f".repeat(MAX_PLAIN_DEPTH + 1)}${"ff".repeat(MAX_PLAIN_DEPTH + 1)}`)),
    ).toBe(`nesting deeper than ${MAX_PLAIN_DEPTH}`);
  });

  it("bytes it passes decode to a value the walk passes: CBOR messages are walked once", () => {
    // Values of every kind cbor-x writes, with and without shared references, then damaged at random.
    const anything = fc.anything({
      withBigInt: true,
      withBoxedValues: true,
      withDate: true,
      withMap: true,
      withSet: true,
      withTypedArray: true,
      withSparseArray: true,
      withNullPrototype: true,
      withObjectString: true,
      maxDepth: 4,
    });
    fc.assert(
      fc.property(
        anything,
        fc.boolean(),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }),
        (value, shared, damage) => {
          let bytes: Uint8Array;
          try {
            bytes = Uint8Array.from((shared ? tagged : plain).encode(value) as Uint8Array);
          } catch {
            return true;
          }
          for (const [at, byte] of damage) if (bytes.byteLength > 0) bytes[at % bytes.byteLength] = byte;
          if (cborBeyondPlainData(bytes) !== undefined) return true;
          let decoded: unknown;
          try {
            decoded = plain.decode(bytes);
          } catch {
            return true;
          }
          return notPlainData(decoded) === undefined;
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it("never throws, whatever bytes it is given", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const found = cborBeyondPlainData(bytes);
        return found === undefined || typeof found === "string";
      }),
    );
  });

  it("a tagged Set anywhere in a request, JSON null params and a CBOR map with integer keys are EBADMSG", () => {
    const withSet = asCbor({ ...spawn(1), params: new Set([1]) }, plain);
    expect(refusal(parseRqst(withSet))).toMatchObject({ error: "EBADMSG", partial: { type: "SPAWN" } });
    expect(refusal(parseRqst(asJson(JSON.stringify({ ...spawn(1), params: null }))))).toMatchObject({
      error: "EBADMSG",
    });
    const intKeys = plain.encode(spawn({ x: 1 })) as Uint8Array;
    // {"x": 1} is a1 61 78 01 at the end: make its key the integer 7.
    const bytes = Uint8Array.from([...intKeys.slice(0, -3), 0x07, 0x01]);
    expect(refusal(parseRqst({ data: bytes, headers: undefined }))).toMatchObject({ error: "EBADMSG" });
  });
});
