// What a client needs to log in: the development users of the shipped
// nats.conf (public passwords, local runs and tests only) and secrets kept in
// files (`--pass-file`, a deployment's password files).

import { readFileSync } from "node:fs";

export interface Credentials {
  readonly user: string;
  readonly pass: string;
}

/** The people of the shipped nats.conf. Development only: the passwords are public. */
export const DEV_USERS = {
  admin: { user: "admin", pass: "dvs-admin-dev" },
  viewer: { user: "viewer", pass: "dvs-viewer-dev" },
} as const satisfies Record<string, Credentials>;

/** A secret kept in a file: its first line, trimmed (a trailing newline is not part of it). Throws what fs throws. */
export function readSecretFile(path: string): string {
  return readFileSync(path, "utf8").split("\n")[0]?.trim() ?? "";
}

/** The development password of a shipped user, so `dvsctl --user viewer` works against `dvsd up`. */
export function devPassword(user: string): string | undefined {
  return Object.values(DEV_USERS).find((c) => c.user === user)?.pass;
}
