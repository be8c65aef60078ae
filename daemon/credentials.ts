// How a node's NATS identity is named and its secrets made: development node
// credentials of the shipped nats.conf, fresh passwords and nkeys for `dvsd up`
// (a deployment sets its own, docs/deploy.md).

import { randomBytes } from "node:crypto";
import { chmodSync, writeFileSync } from "node:fs";
import { createUser, fromSeed } from "@nats-io/nkeys";
import { type Credentials, readSecretFile } from "../client/credentials.js";

/** Node `node`'s NATS user: one identity per node, never shared (`node-<id>`). */
export function nodeUserName(node: number): string {
  return `node-${node}`;
}

/** Node `node`'s development credentials in the shipped nats.conf (public: tests and local runs only). */
export function devNodeCredentials(node: number): Credentials {
  return { user: nodeUserName(node), pass: `dvs-node-${node}-dev` };
}

/** A fresh random password (192 bits, hex: safe in a URL, a config file and an environment variable). */
export function newPassword(): string {
  return randomBytes(24).toString("hex");
}

/** Writes `secret` and a newline to `file`, readable by its owner only (0600). */
export function writeSecretFile(file: string, secret: string): void {
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  // The mode of writeFileSync applies only to a new file.
  chmodSync(file, 0o600);
}

/** Makes a fresh nkey user (Ed25519), writes its seed to `file` (0600) and returns its public key (`U…`). */
export function writeUserKey(file: string): string {
  const pair = createUser();
  try {
    writeSecretFile(file, new TextDecoder().decode(pair.getSeed()));
    return pair.getPublicKey();
  } finally {
    pair.clear();
  }
}

/** The public key (`U…`) of the nkey seed kept in `file`. Throws what fs or nkeys throws. */
export function publicKeyOfSeedFile(file: string): string {
  const pair = fromSeed(new TextEncoder().encode(readSecretFile(file)));
  try {
    return pair.getPublicKey();
  } finally {
    pair.clear();
  }
}
