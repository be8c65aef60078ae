// What every dvsctl command shares: the global options, one NATS connection
// per run, the exit statuses, and sending one request and showing its reply
// (a table, or the RPLY as JSON with --json) with the exit status it implies.
import { existsSync, readFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import type { Command } from "commander";
import { actionIds } from "../../client/actions.js";
import { ADMIN_KEY_FILE, AdminKeyError, loadAdminSigner } from "../../client/adminKey.js";
import { connectNats, type NatsTransport, systemClock, systemRandom } from "../../client/connection.js";
import { ContextError, loadContext } from "../../client/context.js";
import { DEV_USERS, devPassword, readSecretFile } from "../../client/credentials.js";
import { discoverNodes } from "../../client/discovery.js";
import { type ClientHedging, DvsClient, type SendOptions } from "../../client/dvsClient.js";
import { DEFAULT_ACCEPT_MS } from "../../client/hedge.js";
import type { Encoding } from "../../client/wire.js";
import {
  ADMIN_SIGNATURE_WINDOW_MS,
  type AdminSigner,
  ALL,
  errorName,
  isRequestType,
  MUTATING_TYPES,
  type NodeId,
  type RequestType,
  type Role,
  type Rply,
} from "../../client/wire.js";
import { CommandError } from "./errors.js";
import { entriesOf, formatEntries, type ReplyView } from "./replies.js";

/**
 * Exit statuses: 0 every answer OK, 1 a node answered an error, 2 bad usage,
 * 3 cluster or node unreachable, 4 the NATS server refused these credentials or this request.
 */
export const EXIT = { ok: 0, replyError: 1, usage: 2, unreachable: 3, denied: 4 } as const;

export interface GlobalOptions {
  nats: string;
  cluster: string;
  user: string;
  pass?: string;
  passFile?: string;
  nkeySeedFile?: string;
  /** TLS to the servers: the CA that signed them, and a client certificate and key if they ask for one. */
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  role?: Role;
  /** The admin's nkey seed file (`--admin-key`, DVS_ADMIN_KEY_FILE); `none` signs nothing. */
  adminKey?: string;
  /** The context file (`--context`, DVS_CONTEXT) the other options were completed from. */
  context?: string;
  /** For an option taken from the context file, how an error names it (`tls.caFile in context file …`). */
  origins?: Partial<Record<ContextOption, string>>;
  json: boolean;
  timeout: number;
  /** `--accept-timeout`: how long a request to any node may go unacknowledged before it is resent (0: never). */
  acceptTimeout?: number;
}

/** The options a context file can give. */
type ContextOption =
  | "nats"
  | "cluster"
  | "user"
  | "passFile"
  | "nkeySeedFile"
  | "tlsCa"
  | "tlsCert"
  | "tlsKey"
  | "role"
  | "adminKey";

/** The flag that sets each option, for errors about a value given on the command line. */
const FLAGS: Record<ContextOption, string> = {
  nats: "--nats",
  cluster: "--cluster",
  user: "--user",
  passFile: "--pass-file",
  nkeySeedFile: "--nkey-seed-file",
  tlsCa: "--tls-ca",
  tlsCert: "--tls-cert",
  tlsKey: "--tls-key",
  role: "--role",
  adminKey: "--admin-key",
};

/** How an error names where option `o` came from: its flag, or its key in the context file. */
export function originOf(g: GlobalOptions, o: ContextOption): string {
  return g.origins?.[o] ?? FLAGS[o];
}

/** Where `dvsd up` (run from the same directory, default --data) writes the admin key. */
export const DEFAULT_ADMIN_KEY_FILE = join("data", ADMIN_KEY_FILE);

const nextActionId = actionIds(systemClock, systemRandom);

/** The role requests are sent as: --role, else viewer for the user named viewer, else admin. */
export function roleOf(g: GlobalOptions): Role {
  return g.role ?? (g.user === DEV_USERS.viewer.user ? "viewer" : "admin");
}

function passwordOf(g: GlobalOptions): string | undefined {
  if (g.pass !== undefined) return g.pass;
  if (g.passFile !== undefined) {
    try {
      return readSecretFile(g.passFile);
    } catch (error) {
      throw new CommandError(
        `cannot read ${originOf(g, "passFile")} ${g.passFile}: ${(error as Error).message}`,
        EXIT.usage,
      );
    }
  }
  return g.nkeySeedFile === undefined ? devPassword(g.user) : undefined;
}

/** True for a request type that changes a node or its host (the ones an admin signs). */
export function isMutating(type: string): boolean {
  const bare = type.startsWith("RQST_") ? type.slice(5) : type;
  return isRequestType(bare) && MUTATING_TYPES.has(bare);
}

/**
 * The admin's signer: from --admin-key (or DVS_ADMIN_KEY_FILE), else from
 * ./data/admin.nk when it exists; none for a viewer, or with `--admin-key none`.
 * A key file named but unusable is bad usage (exit 2).
 */
export function adminSignerOf(g: GlobalOptions): AdminSigner | undefined {
  if (roleOf(g) !== "admin") return undefined;
  const named = g.adminKey?.trim();
  if (named === "none" || named === "") return undefined;
  const file = named ?? (existsSync(DEFAULT_ADMIN_KEY_FILE) ? DEFAULT_ADMIN_KEY_FILE : undefined);
  if (file === undefined) return undefined;
  try {
    return loadAdminSigner(file);
  } catch (error) {
    if (error instanceof AdminKeyError) {
      throw new CommandError(`${originOf(g, "adminKey")}: ${error.message}`, EXIT.usage, { cause: error });
    }
    throw error;
  }
}

/**
 * Why a node refused a mutating request with EPERM, when a signature is the
 * likely reason: unsigned and passed on between nodes (ALL, or a node other
 * than the one it was sent to), or signed with a key or clock the node rejects.
 */
export function signatureHint(
  type: string,
  dst: NodeId | typeof ALL,
  signer: AdminSigner | undefined,
  entries: readonly Rply[],
): string | undefined {
  if (!isMutating(type)) return undefined;
  const refused = entries.filter((e) => errorName(e.rcode) === "EPERM");
  if (signer === undefined) {
    if (!refused.some((e) => dst === ALL || e.src !== dst)) return undefined;
    return [
      `${type} was refused because it was not signed: nodes serve a request that changes them,`,
      "when sent to all nodes or passed on by another node, only with the admin's signature.",
      `Sign it with --admin-key <file> (or DVS_ADMIN_KEY_FILE); \`dvsd up\` writes ${DEFAULT_ADMIN_KEY_FILE}.`,
    ].join("\n");
  }
  const bySignature = refused.some((e) => /signature|signed|admin key/i.test(messageOf(e)));
  if (!bySignature) return undefined;
  return [
    `${type} was refused with the signature of admin key ${signer.key}:`,
    "check that the nodes trust this key (the public key of your --admin-key file) and that",
    `your clock and theirs agree within ${ADMIN_SIGNATURE_WINDOW_MS / 1_000} s.`,
  ].join("\n");
}

function messageOf(rply: Rply): string {
  const data = rply.data as { message?: unknown } | null;
  return typeof data?.message === "string" ? data.message : "";
}

/**
 * The program's options as seen from any (sub)command, completed from the
 * context file: a flag or its environment variable wins over the file, the
 * file over the defaults. The login is taken as a whole: a user, password,
 * password file or nkey seed file given as a flag (or DVS_USER, DVS_PASS)
 * replaces the file's user, passFile and nkeySeedFile.
 */
export function globalsOf(cmd: Command): GlobalOptions {
  const g = cmd.optsWithGlobals<GlobalOptions>();
  if (g.context === undefined) return g;
  let ctx: ReturnType<typeof loadContext>;
  try {
    ctx = loadContext(g.context);
  } catch (error) {
    if (error instanceof ContextError) throw new CommandError(error.message, EXIT.usage, { cause: error });
    throw error;
  }
  const given = (name: string) => {
    const source = cmd.getOptionValueSourceWithGlobals(name);
    return source !== undefined && source !== "default" && source !== "implied";
  };
  const out: GlobalOptions = { ...g, origins: {} };
  const take = <K extends ContextOption>(o: K, key: string, value: GlobalOptions[K] | undefined) => {
    if (value === undefined || given(o)) return;
    out[o] = value as GlobalOptions[K];
    (out.origins as Record<string, string>)[o] = `${key} in context file ${g.context}`;
  };
  take("nats", "servers", ctx.servers?.join(","));
  take("cluster", "cluster", ctx.cluster);
  take("role", "role", ctx.role);
  take("adminKey", "adminKey", ctx.adminKey);
  take("tlsCa", "tls.caFile", ctx.tls?.caFile);
  take("tlsCert", "tls.certFile", ctx.tls?.certFile);
  take("tlsKey", "tls.keyFile", ctx.tls?.keyFile);
  if (!["user", "pass", "passFile", "nkeySeedFile"].some(given)) {
    take("user", "user", ctx.user);
    take("passFile", "passFile", ctx.passFile);
    take("nkeySeedFile", "nkeySeedFile", ctx.nkeySeedFile);
  }
  return out;
}

/** Fails with bad usage (exit 2), naming the option, when a file dvsctl needs cannot be read. */
function readableFile(g: GlobalOptions, o: ContextOption, file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : (error as Error).message;
    throw new CommandError(`cannot read ${originOf(g, o)} ${file}: ${why}`, EXIT.usage, { cause: error });
  }
}

/**
 * The TLS files, checked before connecting: a missing or unreadable one is bad
 * usage naming the option, not a connection that fails for no stated reason.
 */
function tlsOf(g: GlobalOptions): { caFile?: string; certFile?: string; keyFile?: string } | undefined {
  if (g.tlsCa === undefined && g.tlsCert === undefined && g.tlsKey === undefined) return undefined;
  if ((g.tlsCert === undefined) !== (g.tlsKey === undefined)) {
    const missing: ContextOption = g.tlsCert === undefined ? "tlsCert" : "tlsKey";
    const present: ContextOption = missing === "tlsCert" ? "tlsKey" : "tlsCert";
    throw new CommandError(
      `${originOf(g, present)} needs ${FLAGS[missing]} too (a client certificate and its key go together)`,
      EXIT.usage,
    );
  }
  const tls: { caFile?: string; certFile?: string; keyFile?: string } = {};
  for (const [o, key] of [
    ["tlsCa", "caFile"],
    ["tlsCert", "certFile"],
    ["tlsKey", "keyFile"],
  ] as const) {
    const file = g[o];
    if (file === undefined) continue;
    if (!/-----BEGIN [A-Z ]+-----/.test(readableFile(g, o, file)))
      throw new CommandError(`${originOf(g, o)} ${file} is not a PEM file`, EXIT.usage);
    tls[key] = file;
  }
  return tls;
}

/** The nkey seed file, checked like the node checks nats.nkeySeedFile: readable, one user seed (SU…). */
function nkeySeedFileOf(g: GlobalOptions): string | undefined {
  if (g.nkeySeedFile === undefined) return undefined;
  const seed = readableFile(g, "nkeySeedFile", g.nkeySeedFile).split("\n")[0]?.trim() ?? "";
  if (!/^SU[A-Z2-7]{56}$/.test(seed))
    throw new CommandError(
      `${originOf(g, "nkeySeedFile")} ${g.nkeySeedFile} does not hold an nkey user seed (SU…)`,
      EXIT.usage,
    );
  return g.nkeySeedFile;
}

export async function withConnection<T>(
  cmd: Command,
  fn: (t: NatsTransport, g: GlobalOptions) => Promise<T>,
): Promise<T> {
  const g = globalsOf(cmd);
  const pass = passwordOf(g);
  const nkeySeedFile = nkeySeedFileOf(g);
  const tls = tlsOf(g);
  const transport = await connectNats({
    servers: g.nats.split(",").map((s) => s.trim()),
    name: `dvsctl@${hostname()}`,
    connectTimeoutMs: Math.min(g.timeout, 5_000),
    ...(nkeySeedFile === undefined ? { user: g.user } : { nkeySeedFile }),
    ...(pass !== undefined ? { pass } : {}),
    ...(tls !== undefined ? { tls } : {}),
  });
  try {
    return await fn(transport, g);
  } finally {
    await transport.close();
  }
}

/**
 * The RQST `timeout` for a dvsctl `--timeout`: a little less, so the node that
 * gathers an ALL request (or forwards one) answers with ETIMEDOUT entries for
 * the silent members before dvsctl itself gives up on the whole reply.
 */
export function gatherTimeout(timeoutMs: number): number {
  const margin = Math.min(1_000, Math.max(100, Math.round(timeoutMs / 10)));
  return Math.min(600_000, Math.max(1, timeoutMs - margin));
}

/**
 * Hedging for requests to any node (`--accept-timeout`, client/hedge.ts): when
 * no node acknowledges in time, the nodes that answer a `$SRV` ping (a frozen
 * one does not) are the ones the request is resent to.
 */
export function hedgingOf(t: NatsTransport, g: GlobalOptions): { hedge?: ClientHedging } {
  const acceptMs = g.acceptTimeout ?? DEFAULT_ACCEPT_MS;
  if (acceptMs === 0) return {};
  const live = async () =>
    (await discoverNodes(t.connection, g.cluster, Math.min(1_000, g.timeout), 50)).map((n) => n.node);
  return { hedge: { acceptMs, nodes: live } };
}

/** Chooses the destination once connected (proc commands pick a node of the DC). */
export type DstResolver = (client: DvsClient, g: GlobalOptions) => Promise<NodeId>;

/** Every request waits `--timeout`, and lets the node gather or forward a little less (RQST `timeout`). */
export function sendOptions(g: GlobalOptions, dst: NodeId | typeof ALL): SendOptions {
  return { dst, timeoutMs: g.timeout, gatherTimeoutMs: gatherTimeout(g.timeout) };
}

export interface RequestCall {
  readonly type: RequestType | string;
  readonly params: unknown;
  readonly dst: NodeId | typeof ALL | DstResolver;
  /** How the table shows a successful entry's data. */
  readonly view: ReplyView;
  readonly encoding?: Encoding;
  /** Replaces the table (rqst keeps its own columns); `--json` still prints the RPLY. */
  readonly format?: (entries: readonly Rply[]) => string;
}

/** Sends one request, prints its reply and sets the exit status; transport failures reject (status 3). */
export async function runRequest(cmd: Command, call: RequestCall): Promise<Rply> {
  // Only requests that change nodes are signed, so a read never needs the key file; a bad one fails before connecting.
  const signer = isMutating(call.type) ? adminSignerOf(globalsOf(cmd)) : undefined;
  return withConnection(cmd, async (t, g) => {
    const client = new DvsClient(t, {
      cluster: g.cluster,
      clientId: `dvsctl.${process.pid}`,
      role: roleOf(g),
      ...(call.encoding ? { encoding: call.encoding } : {}),
      ...(signer ? { signer } : {}),
      ...hedgingOf(t, g),
    });
    const dst = typeof call.dst === "function" ? await call.dst(client, g) : call.dst;
    // dvsctl is an administrative client: every request it sends is an action (SPEC 6.4).
    const action = nextActionId();
    const rply = await client.request(call.type, call.params, { ...sendOptions(g, dst), action });
    const entries = entriesOf(rply, dst === ALL);
    if (g.json) process.stdout.write(`${JSON.stringify(rply)}\n`);
    else if (entries.length > 0)
      process.stdout.write(`${call.format ? call.format(entries) : formatEntries(entries, call.view)}\n`);
    if (!g.json && rply.action !== undefined)
      process.stderr.write(`action ${rply.action} (dvsctl actions show ${rply.action})\n`);
    const hint = signatureHint(call.type, dst, signer, entries);
    if (hint !== undefined) process.stderr.write(`dvsctl: ${hint}\n`);
    if (entries.length === 0) {
      // An ALL reply with no entries: the node that took it had nobody in its view to ask.
      process.stderr.write(`dvsctl: node ${rply.src} answered for no node (its view was empty)\n`);
      process.exitCode = EXIT.unreachable;
      return rply;
    }
    process.exitCode = entries.some((e) => e.rcode < 0) ? EXIT.replyError : EXIT.ok;
    return rply;
  });
}
