// The environment of every program the node starts on someone's behalf
// (COMMAND, membership event scripts): a fixed one, never the daemon's own,
// whose variables hold secrets (DVS_NATS_PASS, credentials paths, tokens).

/** The PATH such a program gets, whatever the daemon's PATH is. */
export const SAFE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/**
 * PATH (SAFE_PATH) and LANG=C, then `extra` (the variables the program's
 * contract names, e.g. a script's DVS_EVENT). Nothing is inherited.
 */
export function childEnvironment(extra: Readonly<Record<string, string>> = {}): Record<string, string> {
  return { PATH: SAFE_PATH, LANG: "C", ...extra };
}
