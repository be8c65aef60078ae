// The file store with a client that speaks JSON alone, over the simulated
// network: a COMMIT sent in JSON makes every holder READ the client's bytes in
// JSON (base64 chunks), and what the client answers is read strictly. The
// CBOR client's own source answers a malformed READ EBADMSG, in its encoding.
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { bytesSource, FileClient, type FileSource, memorySink } from "../../client/fileClient.js";
import { decode, encode, JSON_HEADERS } from "../../protocol/codec.js";
import { CHUNK_BYTES } from "../../protocol/files.js";
import { subjects } from "../../protocol/subjects.js";
import { SimCluster } from "../../sim/cluster.js";
import type { Message, Transport } from "../../transport/transport.js";

const S = subjects("dvs");
const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
const parse = (msg: Message) => JSON.parse(new TextDecoder().decode(msg.data)) as Record<string, unknown>;

function setup(seed: number) {
  const cluster = new SimCluster({ seed, election: {}, files: {} });
  for (const id of [1, 2, 3]) cluster.start(id);
  const transport = cluster.network.connect("json-tool", { server: 0 });
  return { cluster, transport };
}

type Serve = (read: Record<string, unknown>, bytes: Uint8Array) => Uint8Array;

/** The JSON tool's commit: serves `bytes` on its source with `serve`, sends COMMIT in JSON; the READs it got, and the answer. */
async function commitInJson(
  cluster: SimCluster,
  transport: Transport,
  commit: string,
  bytes: Uint8Array,
  serve: Serve,
): Promise<{ answer: Record<string, unknown>; reads: Message[] }> {
  const reads: Message[] = [];
  const sub = transport.subscribe(S.fileSource(commit), (msg) => {
    reads.push(msg);
    if (msg.reply) transport.publish(msg.reply, serve(parse(msg), bytes), { headers: JSON_HEADERS });
  });
  try {
    const request = {
      type: "COMMIT",
      commit,
      name: "tool/data.bin",
      size: bytes.byteLength,
      sha256: sha256(bytes),
    };
    const msg = await cluster.settle(
      transport.request(S.fileCommit, json(request), { timeoutMs: 20_000, headers: JSON_HEADERS }),
    );
    return { answer: parse(msg), reads };
  } finally {
    sub.unsubscribe();
  }
}

const base64Data: Serve = (read, bytes) => {
  const offset = read.offset as number;
  const chunk = bytes.subarray(offset, offset + (read.length as number));
  return json({ v: 1, type: "DATA", offset, data: Buffer.from(chunk).toString("base64") });
};

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
/** The same bytes with the unused low bit of the last character set: Buffer still decodes them alike. */
function strayBits(base64: string): string {
  const last = base64.replace(/=+$/, "").length - 1;
  const value = ALPHABET.indexOf(base64[last] as string) | 1;
  const changed = `${base64.slice(0, last)}${ALPHABET[value]}${base64.slice(last + 1)}`;
  if (changed === base64 || Buffer.from(changed, "base64").toString("base64") !== base64)
    throw new Error("no stray bit to set, or not the same bytes");
  return changed;
}

const bytesOf = (size: number) => Uint8Array.from({ length: size }, (_, i) => (i * 7 + 3) % 251);

describe("a COMMIT in JSON", () => {
  it("is pulled from the client in JSON, base64 chunk by chunk, and reads back", async () => {
    const { cluster, transport } = setup(11);
    await cluster.advance(2_000);
    const bytes = bytesOf(CHUNK_BYTES + 10);
    const { answer, reads } = await commitInJson(cluster, transport, "j1", bytes, base64Data);
    expect(answer).toMatchObject({ v: 1, type: "SUCCESS", name: "tool/data.bin", version: 1 });
    expect(answer.holders).toHaveLength(3);
    // Three holders, two chunks each, every READ a JSON message.
    expect(reads).toHaveLength(6);
    for (const r of reads) {
      expect(r.headers?.["Content-Type"]).toBe("application/json");
      expect(parse(r)).toMatchObject({ type: "READ", name: "tool/data.bin", version: 1 });
    }
    const client = new FileClient({
      transport,
      subjects: S,
      clock: cluster.network.hostClock("json-tool"),
      newCommitId: () => "unused",
    });
    const sink = memorySink();
    await cluster.settle(client.update("tool/data.bin", () => sink));
    expect(sha256(sink.bytes())).toBe(sha256(bytes));
  });

  const hostile: [string, Serve][] = [
    [
      "data that is not base64",
      (read) => json({ v: 1, type: "DATA", offset: read.offset, data: "not base64!" }),
    ],
    [
      "base64 without its padding",
      (read, bytes) => {
        const data = Buffer.from(bytes.subarray(0, read.length as number))
          .toString("base64")
          .replace(/=+$/, "");
        return json({ v: 1, type: "DATA", offset: read.offset, data });
      },
    ],
    [
      "base64 with stray bits in its last character (the right bytes to a lenient decoder)",
      (read, bytes) => {
        const data = strayBits(Buffer.from(bytes.subarray(0, read.length as number)).toString("base64"));
        return json({ v: 1, type: "DATA", offset: read.offset, data });
      },
    ],
    [
      "more base64 than a chunk holds",
      (read) => json({ v: 1, type: "DATA", offset: read.offset, data: "AAAA".repeat(CHUNK_BYTES / 3 + 1) }),
    ],
    ["another offset", (read, bytes) => base64Data({ ...read, offset: (read.offset as number) + 1 }, bytes)],
    [
      "an extra key",
      (read, bytes) => json({ ...JSON.parse(new TextDecoder().decode(base64Data(read, bytes))), x: 1 }),
    ],
    [
      "bytes as an array of numbers",
      (read) => json({ v: 1, type: "DATA", offset: read.offset, data: [1, 2, 3] }),
    ],
    [
      "CBOR instead of JSON",
      (read, bytes) => encode({ v: 1, type: "DATA", offset: read.offset, data: bytes.subarray(0, 1) }),
    ],
    [
      "a FILE answer",
      () => json({ v: 1, type: "FILE", name: "x", version: 1, sha256: "0".repeat(64), size: 1, source: 1 }),
    ],
  ];

  it.each(hostile)("fails, and records nothing, when the client answers %s", async (_, serve) => {
    const { cluster, transport } = setup(12);
    await cluster.advance(2_000);
    const bytes = bytesOf(5);
    const { answer, reads } = await commitInJson(cluster, transport, "j2", bytes, serve);
    expect(reads.length).toBeGreaterThan(0);
    expect(answer).toMatchObject({ v: 1, type: "ERROR", error: "ENOSPC" });
    expect(String(answer.message)).toMatch(/answered READ/);
    const ls = await cluster.settle(
      transport.request(S.fileLs, json({ type: "LS" }), { timeoutMs: 5_000, headers: JSON_HEADERS }),
    );
    expect(parse(ls)).toEqual({ v: 1, type: "LIST", files: [] });
  });
});

describe("the committing FileClient's source", () => {
  it("answers a malformed READ EBADMSG and another commit's READ EINVAL, in the READ's encoding", async () => {
    const { cluster, transport } = setup(13);
    await cluster.advance(2_000);
    const bytes = new TextEncoder().encode("held back");
    // The holders' READs wait until the test has asked its own questions.
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const plain = bytesSource(bytes);
    const source: FileSource = { ...plain, read: async (o, l) => held.then(() => plain.read(o, l)) };
    const client = new FileClient({
      transport,
      subjects: S,
      clock: cluster.network.hostClock("json-tool"),
      newCommitId: () => "held",
    });
    const committing = client.commit("held.txt", source);
    committing.catch(() => {});
    await cluster.advance(50);
    const prober = cluster.network.connect("prober", { server: 0 });
    const ask = (data: Uint8Array, headers?: typeof JSON_HEADERS) =>
      cluster.settle(
        prober.request(S.fileSource("held"), data, { timeoutMs: 1_000, ...(headers ? { headers } : {}) }),
      );
    const malformedJson = await ask(new TextEncoder().encode("{not json"), JSON_HEADERS);
    expect(malformedJson.headers?.["Content-Type"]).toBe("application/json");
    expect(parse(malformedJson)).toMatchObject({ type: "ERROR", error: "EBADMSG" });
    const malformedCbor = await ask(encode({ type: "READ", name: "held.txt" }));
    const decoded = decode(malformedCbor.data, "cbor");
    expect(decoded.ok && decoded.value).toMatchObject({ type: "ERROR", error: "EBADMSG" });
    const other = {
      type: "READ",
      name: "other.txt",
      version: 1,
      sha256: sha256(bytes),
      offset: 0,
      length: 9,
    };
    expect(parse(await ask(json(other), JSON_HEADERS))).toMatchObject({ type: "ERROR", error: "EINVAL" });
    release();
    const committed = await cluster.settle(committing);
    expect(committed).toMatchObject({ type: "SUCCESS", name: "held.txt", version: 1 });
  });
});
