// Every public subject reads plain data only (SPEC 3.2): a RQST's params must
// be an object when present, and CBOR tags (a Set is tag 258) or map keys that
// are not strings are EBADMSG on the request, registry (dns.*) and file store
// (file.*) subjects alike. A well-formed question with a value the store
// refuses stays EINVAL.
import { Encoder } from "cbor-x";
import { describe, expect, it } from "vitest";
import { decode, type Encoding, encode, headersFor } from "../../protocol/codec.js";
import { fileAnswerSchema } from "../../protocol/files.js";
import { rcode, registryAnswerSchema, rplySchema } from "../../protocol/messages.js";
import { subjects } from "../../protocol/subjects.js";
import { SimCluster } from "../../sim/cluster.js";

const s = subjects("dvs");
/** A generic CBOR writer, as another language's client would use: it tags Sets and Maps. */
const tagging = new Encoder({ useRecords: false, mapsAsObjects: true });
const hex = (h: string) => Uint8Array.from(Buffer.from(h, "hex"));
const json = (text: string) => new TextEncoder().encode(text);

async function started(seed: number) {
  const cluster = new SimCluster({ seed, election: {}, files: {} });
  for (const id of [1, 2, 3]) cluster.start(id);
  await cluster.advance(2_000);
  const transport = cluster.network.connect("tool", { server: 0 });
  /** Sends `data` on `subject` and resolves with the decoded answer. */
  const ask = async (subject: string, data: Uint8Array, encoding: Encoding = "cbor"): Promise<unknown> => {
    const headers = headersFor(encoding);
    const answer = transport.request(subject, data, { timeoutMs: 2_000, ...(headers ? { headers } : {}) });
    let settled = false;
    void answer.finally(() => {
      settled = true;
    });
    await cluster.clock.runUntil(() => settled, 3_000);
    const decoded = decode((await answer).data, encoding);
    if (!decoded.ok) throw new Error(decoded.message);
    return decoded.value;
  };
  return { cluster, ask };
}

const rqst = (params: unknown) => ({ v: 1, type: "GETDVSINFO", src: "tool", dst: 1, seq: 4, params });

describe("strict decoding on the public subjects", () => {
  it("a RQST whose params are null, a tagged Set, a Map or a map with integer keys is EBADMSG", async () => {
    const { ask } = await started(31);
    const cases: [string, Uint8Array, Encoding][] = [
      ["json null", json(JSON.stringify(rqst(null))), "json"],
      ["cbor null", encode(rqst(null)), "cbor"],
      ["a tagged Set (258)", tagging.encode(rqst(new Set([1, 2]))), "cbor"],
      ["a tagged Map (259)", tagging.encode(rqst(new Map([["a", 1]]))), "cbor"],
      // {"v":1,...,"params":{1: 2}}: a plain CBOR map, but its key is an integer.
      ["a map with an integer key", concat(encode(rqst({})).slice(0, -1), hex("a10102")), "cbor"],
    ];
    for (const [name, data, encoding] of cases) {
      const rply = rplySchema.parse(await ask(s.nodeRqst(1), data, encoding));
      expect(rply.rcode, name).toBe(rcode("EBADMSG"));
    }
    // Absent params still mean {}: the node answers (ENOTINIT before DVSINIT, not EBADMSG).
    const { params: _, ...bare } = rqst({});
    const answered = rplySchema.parse(await ask(s.nodeRqst(1), encode(bare)));
    expect(answered.rcode).toBe(rcode("ENOTINIT"));
  });

  it("WHO and FAILED that cannot be read are answered ERROR EBADMSG; a good WHO is still OK", async () => {
    const { ask } = await started(32);
    const malformed: [string, string, Uint8Array, Encoding][] = [
      ["undecodable", s.dnsWho, hex("ff0013"), "cbor"],
      ["not WHO", s.dnsWho, json('{"type":"WHAT"}'), "json"],
      ["a tagged Set", s.dnsWho, tagging.encode({ type: "WHO", v: new Set([1]) }), "cbor"],
      ["a CBOR tag around WHO", s.dnsWho, concat(hex("d9d9f7"), encode({ type: "WHO" })), "cbor"],
      ["FAILED without epoch", s.dnsFailed, json('{"type":"FAILED","coordinator":1}'), "json"],
      [
        "FAILED with a bignum epoch",
        s.dnsFailed,
        tagging.encode({ type: "FAILED", coordinator: 1, epoch: 2n ** 70n }),
        "cbor",
      ],
    ];
    for (const [name, subject, data, encoding] of malformed) {
      const answer = registryAnswerSchema.parse(await ask(subject, data, encoding));
      expect(answer, name).toEqual({ v: 1, type: "ERROR", error: "EBADMSG" });
    }
    const ok = registryAnswerSchema.parse(await ask(s.dnsWho, json('{"type":"WHO"}'), "json"));
    expect(ok.type).toBe("OK");
    expect(registryAnswerSchema.parse(await ask(s.dnsWho, new Uint8Array())).type).toBe("OK");
  });

  it("malformed file store requests are ERROR EBADMSG; a COMMIT over the size limit stays EINVAL", async () => {
    const { ask } = await started(33);
    const malformed: [string, string, Uint8Array, Encoding][] = [
      ["undecodable LS", s.fileLs, json("{not json"), "json"],
      ["LS with an unknown key", s.fileLs, json('{"type":"LS","extra":1}'), "json"],
      ["LS as a tagged Set", s.fileLs, tagging.encode({ type: "LS", prefix: new Set(["a"]) }), "cbor"],
      ["UPDATE without a name", s.fileUpdate, json('{"type":"UPDATE"}'), "json"],
      [
        "COMMIT with a null size",
        s.fileCommit,
        json('{"type":"COMMIT","commit":"c1","name":"a","size":null}'),
        "json",
      ],
      ["READ of nothing", s.fileRead(1), json('{"type":"READ"}'), "json"],
      ["READ with a Map", s.fileRead(2), tagging.encode(new Map([["type", "READ"]])), "cbor"],
    ];
    for (const [name, subject, data, encoding] of malformed) {
      const answer = fileAnswerSchema.parse(await ask(subject, data, encoding));
      expect(answer, name).toMatchObject({ type: "ERROR", error: "EBADMSG" });
    }
    const tooLarge = {
      type: "COMMIT",
      commit: "c-big",
      name: "big.bin",
      size: 2 * 1024 ** 3,
      sha256: "0".repeat(64),
    };
    const refused = fileAnswerSchema.parse(await ask(s.fileCommit, json(JSON.stringify(tooLarge)), "json"));
    expect(refused).toMatchObject({ type: "ERROR", error: "EINVAL" });
  });
});

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a);
  out.set(b, a.byteLength);
  return out;
}
