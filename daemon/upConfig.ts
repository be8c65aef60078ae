// The node config that `dvsd up --config` gives every node of a local cluster
// (COMMAND's allow-list, event scripts, timings, …): the schema of `dvsd run
// --config`, less what `up` sets for each node itself (its id, cluster, NATS
// identity, state and file directories, metrics port, replicas).
import { describeIssues } from "../protocol/messages.js";
import { configSchema, readConfigFile } from "./config.js";
import { ConfigError } from "./errors.js";

/** The config `dvsd up` was given, checked, to be merged into each node's own file. */
export interface SharedNodeConfig {
  readonly file: string;
  readonly values: Readonly<Record<string, unknown>>;
}

/** Keys `dvsd up` sets per node, by path, with the flag or reason to give instead. */
const SET_BY_UP: readonly (readonly [path: readonly string[], instead: string])[] = [
  [["node"], "dvsd up numbers the nodes 1 … --nodes"],
  [["cluster"], "use dvsd up --cluster"],
  [["nats"], "dvsd up gives each node its own NATS user and server list (--port, --servers)"],
  [["stateDir"], "each node keeps its state in <data>/node-<n> (--data)"],
  [["files", "dir"], "each node keeps its replicas under its own state directory"],
  [["metrics", "port"], "use dvsd up --metrics-port (node n takes port + n - 1)"],
  [["election", "replicas"], "dvsd up replicates the registry on every server (--servers)"],
  [["actions", "replicas"], "dvsd up replicates the action log on every server (--servers)"],
];

function has(values: Record<string, unknown>, path: readonly string[]): boolean {
  let at: unknown = values;
  for (const key of path) {
    if (typeof at !== "object" || at === null || !Object.hasOwn(at, key)) return false;
    at = (at as Record<string, unknown>)[key];
  }
  return true;
}

/**
 * Reads `file` (YAML or JSON) and checks it as `dvsd run --config` would for
 * any node; throws ConfigError naming every key `up` sets itself, or every
 * invalid value with its path.
 */
export function loadSharedNodeConfig(file: string): SharedNodeConfig {
  const values = readConfigFile(file);
  const owned = SET_BY_UP.filter(([path]) => has(values, path)).map(([path, instead]) => ({
    path: path.join("."),
    message: `set by dvsd up for each node, not in --config: ${instead}`,
  }));
  if (owned.length > 0) throw new ConfigError(`invalid dvsd up --config ${file}`, owned);
  const result = configSchema.safeParse({ ...values, node: 1 });
  if (!result.success)
    throw new ConfigError(`invalid dvsd up --config ${file}`, describeIssues(result.error));
  return { file, values };
}

/**
 * Node config file contents: the shared config with the node's own settings
 * over it, one section deep; `adminKeys` holds both lists.
 */
export function nodeConfigValues(
  shared: Readonly<Record<string, unknown>>,
  own: Readonly<Record<string, unknown>>,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...shared };
  for (const [key, value] of Object.entries(own)) {
    const base = out[key];
    if (key === "adminKeys" && Array.isArray(base) && Array.isArray(value)) {
      out[key] = [...new Set([...base, ...value])];
    } else if (isSection(base) && isSection(value)) {
      out[key] = { ...base, ...value };
    } else {
      out[key] = value;
    }
  }
  return out;
}

function isSection(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
