// Admin signatures on requests: an admin signs a mutating RQST with its Ed25519
// nkey, and a node serves such a request passed on by another node (multicast,
// forward) only if a key it trusts signed it, recently, for this node and once.
// So a stolen node credential cannot make another node act. Pure: time, nonces
// and the replay memory are passed in.
import { createPrivateKey, createPublicKey, type KeyObject, sign, verify } from "node:crypto";
import { fromPublic, fromSeed } from "@nats-io/nkeys";
import { ALL, type ErrorName, type NodeId, type RqstAuth, rqstAuthSchema } from "./messages.js";

/** How far a signature's `at` may be from a node's clock, either way (ms); also how long a nonce is remembered. */
export const ADMIN_SIGNATURE_WINDOW_MS = 30_000;

/** The most (key, nonce) pairs a ReplayGuard remembers; beyond that it refuses ("busy") rather than grow. */
export const REPLAY_GUARD_CAPACITY = 100_000;

/** Prefixed to the signed bytes, so a signature over a request means nothing anywhere else. */
export const SIGNATURE_DOMAIN = "dvs-rqst-v1\n";

/** Deepest nesting of params the canonical form accepts. */
const MAX_DEPTH = 64;

const NONCE = /^[A-Za-z0-9_-]{16,32}$/;
const utf8 = new TextEncoder();

// ---- errors ----

/** A public key that is not an nkey user key (`U…`, valid checksum). */
export class InvalidAdminKeyError extends Error {
  override name = "InvalidAdminKeyError";
  constructor(
    readonly key: string,
    options?: ErrorOptions,
  ) {
    super(`${JSON.stringify(key.slice(0, 60))} is not an nkey user public key (U…)`, options);
  }
}

/** A seed that is not an nkey user seed (`SU…`, valid checksum). */
export class InvalidAdminSeedError extends Error {
  override name = "InvalidAdminSeedError";
}

/** A request that cannot be signed: params that are not plain data, or a malformed nonce. */
export class UnsignableRqstError extends Error {
  override name = "UnsignableRqstError";
}

/** A value with no canonical form (not plain data), or nested too deep. */
export class NonPlainDataError extends Error {
  override name = "NonPlainDataError";
  constructor(
    message: string,
    /** Where in the value, as a dotted path from its root. */
    readonly path: string,
  ) {
    super(`${path}: ${message}`);
  }
}

// ---- keys ----

/** What signs requests: the admin's public key and its Ed25519 signature over bytes. */
export interface AdminSigner {
  /** The nkey user public key (`U…`) nodes must trust. */
  readonly key: string;
  sign(data: Uint8Array): Uint8Array;
}

/**
 * A signer from an nkey user seed (`SU…`). Signing runs in node:crypto (native
 * Ed25519, identical signatures to nkeys' `kp.sign`, about 100 times faster).
 */
export function adminSignerFromSeed(seed: string): AdminSigner {
  let key: string;
  try {
    key = fromSeed(utf8.encode(seed.trim())).getPublicKey();
  } catch (error) {
    throw new InvalidAdminSeedError("not an nkey seed", { cause: error });
  }
  if (!key.startsWith("U")) throw new InvalidAdminSeedError("not an nkey user seed (SU…)");
  // A user seed is two prefix bytes, the 32-byte Ed25519 seed and a checksum.
  const raw = base32Decode(seed.trim()).subarray(2, 34);
  const publicRaw = rawPublicKey(key);
  const privateKey = createPrivateKey({
    key: { kty: "OKP", crv: "Ed25519", d: base64url(raw), x: base64url(publicRaw) },
    format: "jwk",
  });
  // node:crypto checks nothing about `x`: make sure the seed yields the key nkeys says it does.
  const derived = createPublicKey(privateKey).export({ format: "jwk" }).x;
  if (derived !== base64url(publicRaw)) throw new InvalidAdminSeedError("the seed does not match its key");
  return { key, sign: (data) => new Uint8Array(sign(null, data, privateKey)) };
}

/** True for an nkey user public key (`U…` with a valid checksum). */
export function isAdminPublicKey(key: string): boolean {
  if (!/^U[A-Z2-7]{55}$/.test(key)) return false;
  try {
    fromPublic(key);
    return true;
  } catch {
    return false;
  }
}

/** The admin keys a node trusts, checked once (at start-up) and ready to verify with. */
export class TrustedAdminKeys {
  readonly #keys = new Map<string, KeyObject>();

  /** Throws InvalidAdminKeyError naming the first key that is not an nkey user public key. */
  constructor(keys: Iterable<string>) {
    for (const key of keys) {
      if (!isAdminPublicKey(key)) throw new InvalidAdminKeyError(key);
      const x = base64url(rawPublicKey(key));
      this.#keys.set(key, createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x }, format: "jwk" }));
    }
  }

  get size(): number {
    return this.#keys.size;
  }

  has(key: string): boolean {
    return this.#keys.has(key);
  }

  /** True when `key` is trusted and `sig` is its signature over `data`. */
  verify(key: string, data: Uint8Array, sig: Uint8Array): boolean {
    const publicKey = this.#keys.get(key);
    return publicKey !== undefined && sig.byteLength === 64 && verify(null, data, publicKey, sig);
  }
}

// ---- the signed bytes ----

/** What a signature covers: the fields relays keep as they are (not `src`, `seq`, `role`, `timeout`, envelope `dst`). */
export interface SignableRqst {
  readonly type: string;
  readonly dst: NodeId | typeof ALL;
  readonly action?: string | undefined;
  readonly params?: unknown;
}

/**
 * The bytes an admin signs: the domain tag, then the canonical JSON of
 * `{ c, type, dst, action, params, at, nonce }`. `dst` is the one the admin
 * addressed (`auth.dst`); the `RQST_` prefix of a type is dropped, as nodes do.
 * Throws NonPlainDataError for params with no canonical form.
 */
export function signedBytes(
  rqst: Pick<SignableRqst, "type" | "action" | "params">,
  cluster: string,
  auth: Pick<RqstAuth, "dst" | "at" | "nonce">,
): Uint8Array {
  const type = rqst.type.startsWith("RQST_") ? rqst.type.slice(5) : rqst.type;
  const body = {
    c: cluster,
    type,
    dst: auth.dst,
    action: rqst.action ?? null,
    // Absent params mean `{}` to a node.
    params: rqst.params ?? {},
    at: auth.at,
    nonce: auth.nonce,
  };
  return utf8.encode(SIGNATURE_DOMAIN + canonicalJson(body));
}

/**
 * JSON with object keys sorted (by UTF-16 code units) at every level and no
 * whitespace, so the same data gives the same text however it was built or
 * decoded (CBOR or JSON). Only plain data has one: null, booleans, finite
 * numbers, strings, arrays and plain objects. An object key whose value is
 * `undefined` is left out, as JSON does; anything else throws NonPlainDataError.
 */
export function canonicalJson(value: unknown): string {
  return canonical(value, "$", 0, new Set());
}

function canonical(value: unknown, path: string, depth: number, ancestors: Set<object>): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "boolean":
    case "string":
      return JSON.stringify(value);
    case "number":
      if (!Number.isFinite(value)) throw new NonPlainDataError("not a finite number", path);
      return JSON.stringify(value);
    case "object":
      break;
    default:
      throw new NonPlainDataError(`a ${typeof value} is not plain data`, path);
  }
  if (depth >= MAX_DEPTH) throw new NonPlainDataError(`nested deeper than ${MAX_DEPTH}`, path);
  if (ancestors.has(value)) throw new NonPlainDataError("cyclic", path);
  ancestors.add(value);
  try {
    if (Array.isArray(value)) {
      const items = value.map((item, i) => {
        if (item === undefined) throw new NonPlainDataError("undefined in an array", `${path}.${i}`);
        return canonical(item, `${path}.${i}`, depth + 1, ancestors);
      });
      return `[${items.join(",")}]`;
    }
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      const kind = (value as { constructor?: { name?: string } }).constructor?.name ?? "object";
      throw new NonPlainDataError(`a ${kind} is not plain data`, path);
    }
    const record = value as Record<string, unknown>;
    const fields: string[] = [];
    for (const key of Object.keys(record).sort()) {
      const field = record[key];
      if (field === undefined) continue;
      fields.push(`${JSON.stringify(key)}:${canonical(field, `${path}.${key}`, depth + 1, ancestors)}`);
    }
    return `{${fields.join(",")}}`;
  } finally {
    ancestors.delete(value);
  }
}

// ---- signing ----

export interface SignOptions {
  readonly cluster: string;
  readonly signer: AdminSigner;
  /** The signer's clock (ms since the epoch). */
  readonly now: number;
  /** Unique per request: 16 to 32 characters of `A-Z a-z 0-9 _ -`. */
  readonly nonce: string;
}

/** `rqst` with an `auth` signed for its `dst`; throws UnsignableRqstError for params that are not plain data. */
export function signRqst<T extends SignableRqst>(
  rqst: T,
  options: SignOptions,
): T & { readonly auth: RqstAuth } {
  const { cluster, signer, now, nonce } = options;
  if (!NONCE.test(nonce)) throw new UnsignableRqstError("a nonce is 16 to 32 characters of A-Z a-z 0-9 _ -");
  const fields = { dst: rqst.dst, at: Math.floor(now), nonce };
  let bytes: Uint8Array;
  try {
    bytes = signedBytes(rqst, cluster, fields);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new UnsignableRqstError(`cannot sign ${rqst.type}: ${reason}`, { cause: error });
  }
  const sig = base64url(signer.sign(bytes));
  return { ...rqst, auth: { key: signer.key, ...fields, sig } };
}

// ---- verifying ----

/** Why a node refuses a request's signature. */
export type AuthRefusal =
  | "unsigned"
  | "malformed"
  | "untrusted-key"
  | "expired"
  | "wrong-node"
  | "bad-signature"
  | "replayed"
  | "busy";

export type AuthVerdict =
  | { readonly ok: true; readonly key: string }
  | { readonly ok: false; readonly reason: AuthRefusal; readonly message: string };

export interface VerifyOptions {
  readonly cluster: string;
  /** The node verifying: a signature for another node is refused. */
  readonly node: NodeId;
  readonly trustedKeys: TrustedAdminKeys;
  /** The node's clock (ms since the epoch); a monotonic one, so a clock step cannot revive a forgotten nonce. */
  readonly now: number;
  readonly replay: ReplayGuard;
  /** Default ADMIN_SIGNATURE_WINDOW_MS. */
  readonly windowMs?: number;
  /** Signatures older than this are refused (the node's start: its replay memory began then). */
  readonly notBefore?: number;
  /**
   * Accept a signature addressed to any node, not only `node` and ALL: for a
   * request whose params name its target wherever it lives (a process's dcid
   * and endpoint), which nodes pass along to the target's host. Each node's
   * replay memory is its own, so such a request may then run once per node.
   */
  readonly anyNode?: boolean;
}

/**
 * Checks a request's admin signature, cheapest checks first; a valid one is
 * recorded in `replay`, so the same signed request is served once.
 */
export function verifyRqstAuth(
  rqst: SignableRqst & { readonly auth?: RqstAuth | undefined },
  options: VerifyOptions,
): AuthVerdict {
  const { cluster, node, trustedKeys, now, replay } = options;
  const windowMs = options.windowMs ?? ADMIN_SIGNATURE_WINDOW_MS;
  if (rqst.auth === undefined) return refuse("unsigned", `${rqst.type} carries no admin signature`);
  const parsed = rqstAuthSchema.safeParse(rqst.auth);
  if (!parsed.success) return refuse("malformed", "the admin signature is not of the documented shape");
  const auth = parsed.data;
  if (!trustedKeys.has(auth.key)) return refuse("untrusted-key", `${auth.key} is not a trusted admin key`);
  const age = now - auth.at;
  if (age > windowMs) return refuse("expired", `signed ${age} ms ago, more than ${windowMs} ms`);
  if (-age > windowMs) {
    return refuse("expired", `signed ${-age} ms in the future: the admin's and the node's clocks differ`);
  }
  if (options.notBefore !== undefined && auth.at < options.notBefore) {
    return refuse("expired", "signed before this node started");
  }
  if (auth.dst !== ALL && auth.dst !== node && options.anyNode !== true) {
    return refuse("wrong-node", `signed for node ${auth.dst}, not node ${node}`);
  }
  let bytes: Uint8Array;
  try {
    bytes = signedBytes(rqst, cluster, auth);
  } catch (error) {
    const reason = error instanceof NonPlainDataError ? error.message : String(error);
    return refuse("malformed", `params with no canonical form: ${reason}`);
  }
  if (!trustedKeys.verify(auth.key, bytes, Buffer.from(auth.sig, "base64url"))) {
    return refuse("bad-signature", `the signature of ${auth.key} does not match the request`);
  }
  const admitted = replay.admit(`${cluster}\n${auth.key}\n${auth.nonce}`, auth.at + windowMs, now);
  if (admitted === "replayed") return refuse("replayed", `nonce ${auth.nonce} was already served`);
  if (admitted === "busy") return refuse("busy", "too many signed requests in the replay window");
  return { ok: true, key: auth.key };
}

/** The error code a node answers a refused signature with. */
export function refusalError(reason: AuthRefusal): ErrorName {
  return reason === "busy" ? "EBUSY" : "EPERM";
}

function refuse(reason: AuthRefusal, message: string): AuthVerdict {
  return { ok: false, reason, message };
}

/**
 * The (cluster, key, nonce) triples a node has served, each kept until its
 * signature expires, in bounded memory: at `capacity` live entries it refuses
 * new ones rather than grow, and refusing is safe (the request is not served).
 */
export class ReplayGuard {
  /** Id → the time after which its signature is expired anyway; in insertion order. */
  readonly #seen = new Map<string, number>();
  readonly #capacity: number;
  /** No entry expires before this (a lower bound): until then a full sweep frees nothing. */
  #nextExpiry = Number.POSITIVE_INFINITY;

  constructor(options: { readonly capacity?: number } = {}) {
    this.#capacity = options.capacity ?? REPLAY_GUARD_CAPACITY;
  }

  get size(): number {
    return this.#seen.size;
  }

  /** Records `id` until `expiresAt`: "replayed" if it is already recorded, "busy" when full of live entries. */
  admit(id: string, expiresAt: number, now: number): "admitted" | "replayed" | "busy" {
    this.#evictOldest(now);
    const known = this.#seen.get(id);
    if (known !== undefined && known >= now) return "replayed";
    this.#seen.delete(id);
    if (this.#seen.size >= this.#capacity) this.#sweep(now);
    if (this.#seen.size >= this.#capacity) return "busy";
    this.#seen.set(id, expiresAt);
    this.#nextExpiry = Math.min(this.#nextExpiry, expiresAt);
    return "admitted";
  }

  /** Drops expired entries from the front; entries come in roughly in expiry order. */
  #evictOldest(now: number): void {
    for (const [id, expiresAt] of this.#seen) {
      if (expiresAt >= now) return;
      this.#seen.delete(id);
    }
  }

  /** Drops every expired entry, only once one may have expired: a full guard does not sweep on every request. */
  #sweep(now: number): void {
    if (now <= this.#nextExpiry) return;
    let earliest = Number.POSITIVE_INFINITY;
    for (const [id, expiresAt] of this.#seen) {
      if (expiresAt < now) this.#seen.delete(id);
      else earliest = Math.min(earliest, expiresAt);
    }
    this.#nextExpiry = earliest;
  }
}

// ---- encodings ----

function base64url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64url");
}

/** The 32 raw bytes of an nkey public key (a prefix byte, the key, a checksum). */
function rawPublicKey(key: string): Uint8Array {
  return base32Decode(key).subarray(1, 33);
}

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** RFC 4648 base32 without padding, as nkeys writes keys; the caller has checked the characters. */
function base32Decode(text: string): Uint8Array {
  const out = new Uint8Array(Math.floor((text.length * 5) / 8));
  let bits = 0;
  let value = 0;
  let j = 0;
  for (const char of text) {
    value = ((value << 5) | BASE32.indexOf(char)) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out[j++] = (value >>> (bits - 8)) & 0xff;
      bits -= 8;
    }
  }
  return out;
}
