// The development credentials of nats.conf, and how a requester's role is
// named. `dvsd up`, dvsctl (by default) and the tests use these users; a
// production deployment sets its own (docs/operations.md, "Security").

import { readFileSync } from "node:fs";

export interface Credentials {
  readonly user: string;
  readonly pass: string;
}

/** The users of the shipped nats.conf. Development only: the passwords are public. */
export const DEV_USERS = {
  node: { user: "node", pass: "dvs-node-dev" },
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
