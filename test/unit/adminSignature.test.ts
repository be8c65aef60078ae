// Admin signatures on requests (protocol/adminSignature.ts): what a signature
// covers, what a node refuses, and that a relayed, re-encoded request still verifies.
import { createAccount, createUser, fromPublic, fromSeed } from "@nats-io/nkeys";
import { describe, expect, it } from "vitest";
import {
  ADMIN_SIGNATURE_WINDOW_MS,
  type AdminSigner,
  adminSignerFromSeed,
  canonicalJson,
  InvalidAdminKeyError,
  InvalidAdminSeedError,
  isAdminPublicKey,
  NonPlainDataError,
  ReplayGuard,
  refusalError,
  signedBytes,
  signRqst,
  TrustedAdminKeys,
  UnsignableRqstError,
  verifyRqstAuth,
} from "../../protocol/adminSignature.js";
import { encode, parseRqst } from "../../protocol/codec.js";
import { ALL, PROTOCOL_VERSION, type Rqst, rqstEnvelopeSchema } from "../../protocol/messages.js";

const NOW = 1_750_000_000_000;
const NONCE = "n0nce-0123456789abcd";

function newSigner(): { signer: AdminSigner; seed: string } {
  const seed = new TextDecoder().decode(createUser().getSeed());
  return { signer: adminSignerFromSeed(seed), seed };
}

const admin = newSigner();
const trusted = new TrustedAdminKeys([admin.signer.key]);

const base = {
  v: PROTOCOL_VERSION,
  type: "KILL",
  src: "dvsctl.42",
  dst: 2,
  seq: 7,
  action: "01JACTION0000000000000000",
  params: { pid: 1234, signal: "TERM" },
} as const;

function signed(rqst: typeof base | Record<string, unknown> = base, at = NOW, nonce = NONCE) {
  return signRqst(rqst as typeof base, { cluster: "dvs", signer: admin.signer, now: at, nonce });
}

function check(
  rqst: Parameters<typeof verifyRqstAuth>[0],
  over: Partial<Parameters<typeof verifyRqstAuth>[1]> = {},
) {
  return verifyRqstAuth(rqst, {
    cluster: "dvs",
    node: 2,
    trustedKeys: trusted,
    now: NOW,
    replay: new ReplayGuard(),
    ...over,
  });
}

describe("admin request signatures", () => {
  it("a request signed by a trusted admin key verifies, naming the key", () => {
    const rqst = signed();
    expect(rqst.auth).toMatchObject({ key: admin.signer.key, at: NOW, nonce: NONCE, dst: 2 });
    expect(rqst.auth.sig).toMatch(/^[A-Za-z0-9_-]{86}$/);
    expect(check(rqst)).toEqual({ ok: true, key: admin.signer.key });
  });

  it("signs exactly as nkeys does, and nkeys verifies it", () => {
    const seed = new TextEncoder().encode(admin.seed);
    const pair = fromSeed(seed);
    const rqst = signed();
    const bytes = signedBytes(rqst, "dvs", rqst.auth);
    const sig = Buffer.from(rqst.auth.sig, "base64url");
    expect(Buffer.from(pair.sign(bytes)).equals(sig)).toBe(true);
    expect(fromPublic(admin.signer.key).verify(bytes, sig)).toBe(true);
  });

  it("what relays change (envelope dst, seq, src, role, timeout) leaves the signature valid", () => {
    const relayed = { ...signed(), dst: ALL, seq: 99_000, src: 1, role: "admin", timeout: 1_500 } as const;
    expect(check(relayed).ok).toBe(true);
  });

  it.each([
    ["params", { params: { pid: 1235, signal: "TERM" } }],
    ["an added param", { params: { pid: 1234, signal: "TERM", extra: 1 } }],
    ["type", { type: "PROCEND" }],
    ["action", { action: "01JOTHER00000000000000000" }],
    ["no action", { action: undefined }],
  ])("a request whose %s changed after signing is refused as a bad signature", (_what, change) => {
    const verdict = check({ ...signed(), ...change });
    expect(verdict).toMatchObject({ ok: false, reason: "bad-signature" });
  });

  it("a signature's dst cannot be rewritten: to ALL it no longer matches, to this node neither", () => {
    const rqst = signed({ ...base, dst: 3 });
    expect(check(rqst, { node: 2 })).toMatchObject({ ok: false, reason: "wrong-node" });
    expect(check({ ...rqst, auth: { ...rqst.auth, dst: ALL } })).toMatchObject({
      ok: false,
      reason: "bad-signature",
    });
    expect(check({ ...rqst, auth: { ...rqst.auth, dst: 2 } })).toMatchObject({
      ok: false,
      reason: "bad-signature",
    });
  });

  it("a signature for one node holds on another only when the node asks for anyNode", () => {
    const rqst = signed({ ...base, type: "PROCEND", dst: 1, params: { dcid: 1, endpoint: 3 } });
    expect(check(rqst, { node: 3 })).toMatchObject({ ok: false, reason: "wrong-node" });
    expect(check(rqst, { node: 3, anyNode: true }).ok).toBe(true);
  });

  it("a request signed for ALL verifies on every node", () => {
    const rqst = signed({ ...base, type: "DVSINIT", dst: ALL, params: { name: "lab" } });
    for (const node of [0, 1, 2, 65_535]) expect(check(rqst, { node }).ok).toBe(true);
  });

  it("a request signed for another cluster is refused", () => {
    expect(check(signed(), { cluster: "other" })).toMatchObject({ ok: false, reason: "bad-signature" });
  });

  it("a signature older or further in the future than the window is refused as expired", () => {
    const w = ADMIN_SIGNATURE_WINDOW_MS;
    expect(check(signed(base, NOW - w)).ok).toBe(true);
    expect(check(signed(base, NOW + w)).ok).toBe(true);
    expect(check(signed(base, NOW - w - 1))).toMatchObject({ ok: false, reason: "expired" });
    expect(check(signed(base, NOW + w + 1))).toMatchObject({ ok: false, reason: "expired" });
    expect(check(signed(base, NOW - 10), { notBefore: NOW - 5 })).toMatchObject({
      ok: false,
      reason: "expired",
    });
  });

  it("the same signed request is served once: a replay is refused", () => {
    const replay = new ReplayGuard();
    const rqst = signed();
    expect(check(rqst, { replay }).ok).toBe(true);
    const resent = { ...rqst, seq: 8 };
    expect(check(resent, { replay })).toMatchObject({ ok: false, reason: "replayed" });
    expect(check(rqst, { replay, now: NOW + ADMIN_SIGNATURE_WINDOW_MS })).toMatchObject({
      ok: false,
      reason: "replayed",
    });
    // Once the signature has expired the nonce is forgotten; the request is refused as expired instead.
    expect(check(rqst, { replay, now: NOW + ADMIN_SIGNATURE_WINDOW_MS + 1 })).toMatchObject({
      ok: false,
      reason: "expired",
    });
    expect(check(signed(base, NOW, "another-nonce-000001"), { replay }).ok).toBe(true);
  });

  it("a key the node does not trust is refused, however valid its signature", () => {
    const stranger = newSigner().signer;
    const rqst = signRqst(base, { cluster: "dvs", signer: stranger, now: NOW, nonce: NONCE });
    expect(check(rqst)).toMatchObject({ ok: false, reason: "untrusted-key" });
    // Swapping in a trusted key does not help: the signature is the stranger's.
    expect(check({ ...rqst, auth: { ...rqst.auth, key: admin.signer.key } })).toMatchObject({
      ok: false,
      reason: "bad-signature",
    });
  });

  it("an unsigned request is refused as unsigned, a malformed auth as malformed", () => {
    expect(check(base)).toMatchObject({ ok: false, reason: "unsigned" });
    const rqst = signed();
    expect(check({ ...rqst, auth: { ...rqst.auth, sig: "short" } })).toMatchObject({
      ok: false,
      reason: "malformed",
    });
  });

  it("refusals are EPERM, a full replay memory EBUSY", () => {
    expect(refusalError("unsigned")).toBe("EPERM");
    expect(refusalError("bad-signature")).toBe("EPERM");
    expect(refusalError("busy")).toBe("EBUSY");
  });

  it("the RQST_ prefix of a type is signed as nodes read it", () => {
    const rqst = signed({ ...base, type: "RQST_KILL" });
    expect(check({ ...rqst, type: "KILL" }).ok).toBe(true);
  });
});

describe("the canonical form", () => {
  it("does not depend on the order of object keys, at any depth", () => {
    const a = { pid: 1, nested: { x: [1, { b: 2, a: 1 }], y: "z" } };
    const b = { nested: { y: "z", x: [1, { a: 1, b: 2 }] }, pid: 1 };
    expect(canonicalJson(a)).toBe(canonicalJson(b));
    expect(canonicalJson(a)).toBe('{"nested":{"x":[1,{"a":1,"b":2}],"y":"z"},"pid":1}');
    const rqst = signed({ ...base, type: "SEND", params: { dcid: 1, endpoint: 2, body: a } });
    expect(check({ ...rqst, params: { body: b, endpoint: 2, dcid: 1 } }).ok).toBe(true);
  });

  it("leaves out object keys whose value is undefined, as JSON does; absent params are {}", () => {
    expect(canonicalJson({ a: 1, b: undefined })).toBe('{"a":1}');
    const rqst = signed({ ...base, type: "DVSEND", params: {} });
    const { params: _params, ...noParams } = rqst;
    expect(check(noParams).ok).toBe(true);
  });

  it.each([
    ["a Map", new Map([["a", 1]])],
    ["a Set", new Set([1])],
    ["a typed array", new Uint8Array([1])],
    ["a Date", new Date(0)],
    ["NaN", Number.NaN],
    ["Infinity", Number.POSITIVE_INFINITY],
    ["a bigint", 10n],
    ["undefined in an array", [1, undefined]],
  ])("refuses %s: it is not plain data", (_what, value) => {
    expect(() => canonicalJson({ body: value })).toThrow(NonPlainDataError);
    expect(() => signed({ ...base, type: "SEND", params: { dcid: 1, endpoint: 2, body: value } })).toThrow(
      UnsignableRqstError,
    );
  });

  it("refuses cyclic and too deeply nested values", () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => canonicalJson(cyclic)).toThrow(/cyclic/);
    let deep: unknown = 1;
    for (let i = 0; i < 100; i++) deep = [deep];
    expect(() => canonicalJson(deep)).toThrow(/deeper/);
  });

  it("a request whose params have no canonical form is refused as malformed, not crashed on", () => {
    const rqst = signed({ ...base, type: "SEND", params: { dcid: 1, endpoint: 2, body: 1 } });
    const verdict = check({ ...rqst, params: { dcid: 1, endpoint: 2, body: new Map() } });
    expect(verdict).toMatchObject({ ok: false, reason: "malformed" });
  });
});

describe("signed requests on the wire", () => {
  it.each(["cbor", "json"] as const)(
    "a signed RQST encoded as %s, decoded and parsed still verifies",
    (enc) => {
      const rqst = signed({
        ...base,
        type: "SPAWN",
        params: {
          dcid: 1,
          machine: "counter",
          input: { start: 3, tags: ["a", "b"], deep: { z: 1, a: null } },
        },
      });
      const parsed = parseRqst({
        data: encode(rqst, enc),
        headers: enc === "json" ? { "Content-Type": "application/json" } : undefined,
      });
      expect(parsed.ok).toBe(true);
      if (!parsed.ok) return;
      expect(parsed.rqst.auth).toEqual(rqst.auth);
      expect(check(parsed.rqst).ok).toBe(true);
      // A node relays it re-encoded with its own dst and seq: it still verifies.
      const relayed = parseRqst({
        data: encode({ ...parsed.rqst, dst: 2, seq: 5, src: 1 }),
        headers: undefined,
      });
      expect(relayed.ok && check(relayed.rqst).ok).toBe(true);
    },
  );

  it("the envelope accepts auth only of its documented shape", () => {
    const rqst = signed() as unknown as Rqst;
    expect(rqstEnvelopeSchema.safeParse(rqst).success).toBe(true);
    const bad = (auth: Record<string, unknown>) =>
      rqstEnvelopeSchema.safeParse({ ...rqst, auth: { ...rqst.auth, ...auth } }).success;
    expect(bad({ extra: 1 })).toBe(false);
    expect(bad({ sig: "abc" })).toBe(false);
    expect(bad({ nonce: "short" })).toBe(false);
    expect(bad({ key: "SUAF55NKXHBNPLZS37TR3EBR7ZJ25NUPBN24CXPWJNHBYST5RW7AQGRUS4" })).toBe(false);
    expect(bad({ dst: "all" })).toBe(false);
  });
});

describe("admin keys", () => {
  it("a trust list holds user public keys only", () => {
    expect(new TrustedAdminKeys([admin.signer.key]).size).toBe(1);
    expect(() => new TrustedAdminKeys(["UNOTAKEY"])).toThrow(InvalidAdminKeyError);
    expect(() => new TrustedAdminKeys([admin.seed])).toThrow(InvalidAdminKeyError);
    expect(() => new TrustedAdminKeys([createAccount().getPublicKey()])).toThrow(InvalidAdminKeyError);
    // One wrong character breaks the checksum.
    const flipped = admin.signer.key.slice(0, -1) + (admin.signer.key.endsWith("A") ? "B" : "A");
    expect(isAdminPublicKey(flipped)).toBe(false);
  });

  it("a signer comes from a user seed only", () => {
    expect(adminSignerFromSeed(`  ${admin.seed}\n`).key).toBe(admin.signer.key);
    expect(() => adminSignerFromSeed("not a seed")).toThrow(InvalidAdminSeedError);
    expect(() => adminSignerFromSeed(admin.signer.key)).toThrow(InvalidAdminSeedError);
    const accountSeed = new TextDecoder().decode(createAccount().getSeed());
    expect(() => adminSignerFromSeed(accountSeed)).toThrow(InvalidAdminSeedError);
  });

  it("a nonce that is not 16 to 32 url-safe characters cannot be signed with", () => {
    expect(() => signed(base, NOW, "short")).toThrow(UnsignableRqstError);
    expect(() => signed(base, NOW, "has spaces in it, sixteen+")).toThrow(UnsignableRqstError);
  });
});

describe("the replay memory", () => {
  it("refuses new entries when full of live ones, and takes them again once some expire", () => {
    const guard = new ReplayGuard({ capacity: 3 });
    expect(guard.admit("a", 100, 0)).toBe("admitted");
    expect(guard.admit("b", 200, 0)).toBe("admitted");
    expect(guard.admit("c", 300, 0)).toBe("admitted");
    expect(guard.admit("d", 300, 50)).toBe("busy");
    expect(guard.size).toBe(3);
    expect(guard.admit("a", 100, 60)).toBe("replayed");
    expect(guard.admit("d", 300, 101)).toBe("admitted");
    expect(guard.size).toBe(3);
  });

  it("forgets entries whose signatures have expired, even out of insertion order", () => {
    const guard = new ReplayGuard({ capacity: 2 });
    expect(guard.admit("late", 1_000, 0)).toBe("admitted");
    expect(guard.admit("early", 10, 0)).toBe("admitted");
    // "late" is first in line and still live; "early" behind it has expired and is swept when needed.
    expect(guard.admit("new", 1_000, 11)).toBe("admitted");
    expect(guard.size).toBe(2);
    expect(guard.admit("more", 1_000, 12)).toBe("busy");
    expect(guard.admit("more", 1_100, 1_001)).toBe("admitted");
  });
});
