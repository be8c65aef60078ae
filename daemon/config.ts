// The node daemon's configuration: one zod schema gives the defaults, the
// checks and the types. Values come from defaults < config file (YAML or JSON)
// < command-line flags; an unknown key or a bad value is a ConfigError naming
// its path.
import { readFileSync } from "node:fs";
import { extname, join, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { DEFAULT_MINORITY_REFUSES, MINORITY_REFUSABLE } from "../actors/quorumGate.js";
import { readSecretFile } from "../client/credentials.js";
import { defaultTimings, type MembershipTimings } from "../machines/membership.js";
import { isAdminPublicKey } from "../protocol/adminSignature.js";
import { hostAddressSchema } from "../protocol/hostAddress.js";
import { describeIssues, nodeIdSchema, type RequestType, SERVER_TYPES } from "../protocol/messages.js";
import { isClusterName } from "../protocol/subjects.js";
import { ConfigError } from "./errors.js";
import { commandsConfigSchema } from "./host/command.js";
import { scriptsConfigSchema } from "./scripts.js";

const natsUrl = z
  .string()
  .refine((s) => /^(nats|tls|ws|wss):\/\/[^\s]+$/.test(s) || /^[^\s:/]+:\d+$/.test(s), {
    message: "expected a NATS URL such as nats://127.0.0.1:4222",
  });

/** An Ed25519 public key in nkey form: a user key, `U` and 55 more base32 characters, checksum included. */
const adminKey = z.string().refine(isAdminPublicKey, {
  message: "expected an nkey public user key (U followed by 55 characters of A-Z and 2-7)",
});

export const configSchema = z.strictObject({
  /** This node's id (a small non-negative integer). */
  node: nodeIdSchema,
  /** Cluster name, the `<c>` of every subject. */
  cluster: z.string().refine(isClusterName, "letters, digits, - and _, at most 32").default("dvs"),
  /** This node's host address in its answers and the action log (seed 001 `ipaddr`); found on the host when absent. */
  address: hostAddressSchema.optional(),
  nats: z
    .strictObject({
      servers: z.array(natsUrl).min(1).default(["nats://127.0.0.1:4222"]),
      user: z.string().min(1).optional(),
      /** Password; prefer passFile in production. */
      pass: z.string().min(1).optional(),
      /** File holding the password (first line), so secrets stay out of the config. */
      passFile: z.string().min(1).optional(),
      token: z.string().min(1).optional(),
      /** File holding this node's nkey seed, for a nats.conf that lists users by nkey. */
      nkeySeedFile: z.string().min(1).optional(),
      /** TLS to the NATS servers: the CA that signed them, and this node's certificate if they verify clients. */
      tls: z
        .strictObject({
          caFile: z.string().min(1).optional(),
          certFile: z.string().min(1).optional(),
          keyFile: z.string().min(1).optional(),
        })
        .refine((t) => (t.certFile === undefined) === (t.keyFile === undefined), {
          message: "certFile and keyFile go together",
        })
        .optional(),
      reconnectWaitMs: z.number().int().min(10).max(60_000).default(250),
      /** Try the servers in a random order (spreads nodes over a cluster); false: in the order given, the first one first. */
      randomize: z.boolean().default(true),
      /** Learn the cluster's other servers from the server and fail over to them; false: only ever `servers`. */
      discover: z.boolean().default(true),
      connectTimeoutMs: z.number().int().min(100).max(120_000).default(5_000),
    })
    .prefault({}),
  /**
   * The administrators' signing keys: a mutating request relayed between
   * nodes is served only with a valid signature by one of these
   * (docs/security.md). Also DVS_ADMIN_KEYS (comma-separated) for `dvsd run`.
   */
  adminKeys: z.array(adminKey).max(64).default([]),
  /** Directory for state that survives a restart; default ./data/node-<id>. */
  stateDir: z.string().min(1).optional(),
  log: z
    .strictObject({
      level: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
    })
    .prefault({}),
  requests: z
    .strictObject({
      /** How long a node gathers answers to a `dst: ALL` request, or waits for a forwarded one, when the request names no timeout. */
      timeoutMs: z.number().int().min(10).max(600_000).default(2_000),
    })
    .prefault({}),
  membership: z
    .strictObject({
      /** How often each node publishes a heartbeat. */
      heartbeatMs: z.number().int().min(10).max(60_000).default(200),
      /** Missed heartbeats before a peer is suspect (it stays in the view). */
      suspectAfterMissed: z.number().int().min(1).max(100).default(3),
      /** Missed heartbeats before a silent peer is unreachable (PARTITION), unless NATS says so sooner. */
      unreachableAfterMissed: z.number().int().min(1).max(1_000).default(5),
      /** How long a peer may stay unreachable before it is declared down (DISCONNECT). */
      downAfterMs: z.number().int().min(100).max(3_600_000).default(5_000),
      /** Observers per node (K): each node's heartbeats go to this many others, which probe it when late. */
      observers: z.number().int().min(1).max(64).default(5),
      /** How often the leader of a component (its smallest member) publishes the component's beacon. */
      beaconMs: z.number().int().min(10).max(600_000).optional(),
      /** A component without a majority of the last full view marks itself minority. */
      quorum: z.boolean().default(false),
      /** With `quorum`, the requests a minority refuses with EROFS: mutating, not host requests (COMMIT always is). */
      minorityRefuses: z
        .array(z.enum(MINORITY_REFUSABLE as [RequestType, ...RequestType[]]))
        .max(32)
        .default([...DEFAULT_MINORITY_REFUSES]),
    })
    .refine((m) => m.unreachableAfterMissed >= m.suspectAfterMissed, {
      message: "unreachableAfterMissed must be at least suspectAfterMissed",
    })
    .prefault({}),
  scripts: scriptsConfigSchema.prefault({}),
  /** The commands COMMAND may run (an allow-list; everything else is EPERM). */
  commands: commandsConfigSchema.prefault({}),
  /** The action log (SPEC 6.4): a JetStream stream of every administrative request and its answers. */
  actions: z
    .strictObject({
      /** How long actions are kept. */
      maxAgeDays: z
        .number()
        .min(1 / 24)
        .max(36_500)
        .default(90),
      /** The stream's size limit; the oldest actions go first. */
      maxMegabytes: z.number().int().min(1).max(1_048_576).default(1_024),
      /** Stream replicas when nats-server runs as a JetStream cluster (1, 3 or 5). */
      replicas: z.union([z.literal(1), z.literal(3), z.literal(5)]).default(1),
    })
    .prefault({}),
  /** The coordinator election and registry (SPEC 7). */
  election: z
    .strictObject({
      /** Run the server role and the registry (a node without them still answers requests). */
      enabled: z.boolean().default(true),
      /** This node's server type: active servers take the file store's work, passive ones hold replicas. */
      server: z.enum(SERVER_TYPES).default("active"),
      /**
       * How long a coordinator's record stays live without a renewal. The
       * coordinator renews every quarter of it; a crashed coordinator is
       * replaced about one lease after its last renewal.
       */
      leaseMs: z.number().int().min(50).max(60_000).default(400),
      /** Replicas of the registry's KV bucket when nats-server runs as a JetStream cluster (1, 3 or 5). */
      replicas: z.union([z.literal(1), z.literal(3), z.literal(5)]).default(1),
    })
    .prefault({}),
  /** The replicated file store (SPEC 8); it runs with the election. */
  files: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** Where this server keeps its replicas (default: `<stateDir>/files`). */
      dir: z.string().min(1).optional(),
      /** Servers that must hold a version on disk before a COMMIT succeeds. */
      replicationFactor: z.number().int().min(1).max(64).default(3),
      /** COMMIT, REPLICA, UPDATE and REPAIR sessions at once; one more is answered BUSY. */
      maxSessions: z.number().int().min(1).max(1_024).default(8),
      /** Largest file a COMMIT may carry, in MiB. */
      maxFileMegabytes: z.number().int().min(1).max(1_048_576).default(1_024),
      /** How often the coordinator looks for versions with too few holders. */
      repairEveryMs: z.number().int().min(100).max(3_600_000).default(5_000),
    })
    .prefault({}),
  /** Prometheus metrics over HTTP (docs/operations.md, "Metrics"); off unless a port is given. */
  metrics: z
    .strictObject({
      /** TCP port of `GET /metrics`; 0: no metrics server. */
      port: z.number().int().min(0).max(65_535).default(0),
      /** Address it listens on: loopback, or the host's private address when Prometheus runs elsewhere. */
      host: z.string().min(1).default("127.0.0.1"),
    })
    .prefault({}),
  shutdown: z
    .strictObject({
      /** Longest a graceful shutdown may take before the daemon exits anyway. */
      graceMs: z.number().int().min(100).max(120_000).default(5_000),
    })
    .prefault({}),
});

export type NodeConfig = z.output<typeof configSchema> & { stateDir: string };
export type ConfigInput = z.input<typeof configSchema>;

/** Reads a YAML or JSON config file into a plain object (not yet validated). */
export function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    throw new ConfigError(`cannot read config file ${path}: ${(error as Error).message}`, [], {
      cause: error,
    });
  }
  let value: unknown;
  try {
    value = extname(path) === ".json" ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new ConfigError(
      `config file ${path} is not valid ${extname(path) === ".json" ? "JSON" : "YAML"}: ${(error as Error).message}`,
      [],
      {
        cause: error,
      },
    );
  }
  if (value === null || value === undefined) return {};
  if (typeof value !== "object" || Array.isArray(value)) {
    throw new ConfigError(`config file ${path} must hold a mapping of keys to values`);
  }
  return value as Record<string, unknown>;
}

/** Validates merged config values, fills defaults and resolves the state dir. */
export function parseConfig(values: Record<string, unknown>, source = "config"): NodeConfig {
  const result = configSchema.safeParse(values);
  if (!result.success) throw new ConfigError(`invalid ${source}`, describeIssues(result.error));
  const config = result.data;
  let pass = config.nats.pass;
  if (config.nats.passFile !== undefined) {
    try {
      pass = readSecretFile(config.nats.passFile);
    } catch (error) {
      throw new ConfigError(`cannot read nats.passFile ${config.nats.passFile}`, [], { cause: error });
    }
  }
  if (config.nats.nkeySeedFile !== undefined) checkSeedFile(config.nats.nkeySeedFile);
  return {
    ...config,
    nats: { ...config.nats, ...(pass !== undefined ? { pass } : {}) },
    stateDir: resolve(config.stateDir ?? join("data", `node-${config.node}`)),
  };
}

/**
 * The node's nkey seed file must be readable and hold a user seed (`SU…`),
 * checked at start-up like nats.passFile so a bad one is a config error (exit
 * 2), not a connection that fails over and over. The seed itself is read
 * again by the transport and not kept here.
 */
function checkSeedFile(file: string): void {
  let seed: string;
  try {
    seed = readSecretFile(file);
  } catch (error) {
    throw new ConfigError(`cannot read nats.nkeySeedFile ${file}`, [], { cause: error });
  }
  if (!/^SU[A-Z2-7]{56}$/.test(seed)) {
    throw new ConfigError(`nats.nkeySeedFile ${file} does not hold an nkey user seed (SU…)`);
  }
}

/** Loads the config: file values first, then the flags that were given on the command line. */
export function loadConfig(file: string | undefined, flags: Record<string, unknown>): NodeConfig {
  const fromFile = file ? readConfigFile(file) : {};
  return parseConfig(mergeDeep(fromFile, flags), file ? `config (${file} and flags)` : "config (flags)");
}

function mergeDeep(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    const b = out[k];
    out[k] =
      isPlainObject(b) && isPlainObject(v)
        ? mergeDeep(b as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

function isPlainObject(v: unknown): boolean {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The membership machine's timings from the config's `membership` section. */
export function membershipTimings(config: Pick<NodeConfig, "membership">): MembershipTimings {
  const m = config.membership;
  return {
    ...defaultTimings(m.heartbeatMs),
    suspectAfterMissed: m.suspectAfterMissed,
    unreachableAfterMissed: m.unreachableAfterMissed,
    downAfterMs: m.downAfterMs,
    observers: m.observers,
    ...(m.beaconMs !== undefined ? { beaconMs: m.beaconMs } : {}),
  };
}
