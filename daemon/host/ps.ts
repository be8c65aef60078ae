// The host's processes: PS (a table like ps aux), PIDSTAT (per-pid CPU time,
// memory, faults, context switches and I/O from /proc/<pid>) and KILL (a signal
// from an allow-list, never to init, to the daemon or to a protected process,
// nor to any of their threads).
import { cpus } from "node:os";
import { join } from "node:path";
import type * as si from "systeminformation";
import type { Params } from "../../protocol/messages.js";
import { type HostContext, isLiveProc } from "./context.js";
import { PROBE_DEADLINE_MS, probe, probedValue } from "./deadline.js";
import {
  NoSuchProcessError,
  ProtectedProcessError,
  type ProtectedReason,
  SignalDeniedError,
  SignalNotAllowedError,
} from "./errors.js";
import { exists, mapInBatches, readText } from "./hostFiles.js";
import { cut, type Listing, round } from "./listing.js";
import {
  CLOCK_TICKS,
  type ProcessFacts,
  parseKeyValues,
  readAllProcesses,
  readProcess,
  readSystemFigures,
  readUsers,
  type SystemFigures,
  stateName,
} from "./procfs.js";
import { shared } from "./sharedProbes.js";
import { systemInformation } from "./systemInfo.js";

export const PS_DEFAULT_LIMIT = 200;
export const PIDSTAT_DEFAULT_LIMIT = 200;
/** A command line longer than this is cut, so one process cannot blow the reply up. */
export const COMMAND_MAX_CHARS = 256;

export type ProcessSort = "cpu" | "mem" | "pid";

/** One row of PS. */
export interface PsEntry {
  readonly pid: number;
  readonly ppid: number;
  /** User name, or the uid as a string when it has no name; null when unknown. */
  readonly user: string | null;
  /** running, sleeping, blocked (disk wait), stopped, zombie, idle, … */
  readonly state: string;
  /** The executable's name. */
  readonly name: string;
  /** The command line, at most 256 characters. */
  readonly command: string;
  /** Percent of the whole machine's CPU time (all cores together are 100). */
  readonly cpu: number | null;
  /** Percent of physical memory (resident). */
  readonly mem: number | null;
  /** Resident and virtual size, bytes. */
  readonly rss: number | null;
  readonly vsz: number | null;
  /** Start time, ms since the epoch. */
  readonly started: number | null;
}

/** One row of PIDSTAT. CPU times are seconds; sizes and I/O are bytes. */
export interface PidstatEntry {
  readonly pid: number;
  readonly ppid: number;
  readonly name: string;
  readonly state: string;
  readonly uid: number | null;
  readonly user: string | null;
  readonly threads: number;
  /** Percent of the whole machine over the last sampling interval; null when no sample was available. */
  readonly cpu: number | null;
  readonly cpuUser: number;
  readonly cpuSystem: number;
  readonly rss: number | null;
  readonly vsz: number;
  readonly mem: number | null;
  readonly minorFaults: number;
  readonly majorFaults: number;
  readonly voluntaryCtxSwitches: number | null;
  readonly involuntaryCtxSwitches: number | null;
  /** From /proc/<pid>/io: null when the node may not read it (another user's process). */
  readonly readBytes: number | null;
  readonly writeBytes: number | null;
  readonly cancelledWriteBytes: number | null;
  readonly readChars: number | null;
  readonly writeChars: number | null;
  readonly readSyscalls: number | null;
  readonly writeSyscalls: number | null;
  readonly started: number | null;
}

/**
 * PS: systeminformation's process list (ps plus a /proc/<pid>/stat sample for
 * CPU), or, where ps is missing (a slim image), the same columns from /proc.
 * The table is one shared probe: concurrent PS requests read the host once.
 */
export async function listProcesses(ctx: HostContext, params: Params<"PS">): Promise<Listing<PsEntry>> {
  const entries = await shared(ctx, `ps.table:${ctx.procRoot}`, () => psTable(ctx));
  return cut(sortProcesses(entries, params.sort ?? "cpu"), params.limit ?? PS_DEFAULT_LIMIT);
}

/** Every process of the host as a PS row, in no particular order. */
async function psTable(ctx: HostContext): Promise<PsEntry[]> {
  if (isLiveProc(ctx)) {
    const sampled = await probe(ctx.clock, PROBE_DEADLINE_MS, () =>
      shared(ctx, "si.processes", async () => (await systemInformation()).processes()),
    );
    const list = probedValue(sampled)?.list ?? [];
    if (list.length > 0) return withCommandLines(ctx, list.map(psFromSi));
    ctx.logger.debug({ probe: sampled.status }, "ps gave no processes; reading /proc");
  }
  return psFromProc(ctx);
}

/**
 * The exact command line from /proc/<pid>/cmdline where it is readable:
 * systeminformation splits ps's text into command and params by guesswork and
 * loses arguments on the way.
 */
async function withCommandLines(ctx: HostContext, items: readonly PsEntry[]): Promise<PsEntry[]> {
  return mapInBatches(items, 64, async (p) => {
    const raw = await readText(join(ctx.procRoot, String(p.pid), "cmdline"));
    const line = raw?.split("\0").filter(Boolean).join(" ");
    return line ? { ...p, command: shorten(line) } : p;
  });
}

function psFromSi(p: si.Systeminformation.ProcessesProcessData): PsEntry {
  const started = Date.parse(p.started.replace(" ", "T"));
  return {
    pid: p.pid,
    ppid: p.parentPid,
    user: p.user || null,
    state: p.state || "unknown",
    name: p.name,
    command: shorten([p.command, p.params].filter(Boolean).join(" ") || p.name),
    cpu: Number.isFinite(p.cpu) ? round(p.cpu) : null,
    mem: Number.isFinite(p.mem) ? round(p.mem) : null,
    // ps reports sizes in KiB.
    rss: Number.isFinite(p.memRss) ? p.memRss * 1024 : null,
    vsz: Number.isFinite(p.memVsz) ? p.memVsz * 1024 : null,
    started: Number.isFinite(started) ? started : null,
  };
}

/** PS from /proc alone; `cpu` is then the average since the process started. */
export async function psFromProc(ctx: HostContext): Promise<PsEntry[]> {
  const { facts, figures, users } = await processTable(ctx);
  const cores = Math.max(1, cpus().length);
  return facts.map((f) => ({
    pid: f.stat.pid,
    ppid: f.stat.ppid,
    user: userName(users, f.status?.uid ?? null),
    state: stateName(f.stat.state),
    name: f.stat.comm,
    command: shorten(f.cmdline || `[${f.stat.comm}]`),
    cpu: lifetimeCpu(f, figures, cores),
    mem: memPercent(f.status?.rss ?? null, figures),
    rss: f.status?.rss ?? null,
    vsz: f.stat.vsize,
    started: startedAt(f, figures),
  }));
}

/** What one walk of /proc gives: every process, and the figures and user names they are read against. */
export interface ProcessTable {
  readonly facts: readonly ProcessFacts[];
  readonly figures: SystemFigures;
  readonly users: ReadonlyMap<number, string>;
}

/**
 * Every process of /proc, as one shared probe: all the PIDSTAT (and /proc PS)
 * requests in flight, and those of the freshness period after, share one walk.
 */
export function processTable(ctx: HostContext): Promise<ProcessTable> {
  return shared(ctx, `proc.table:${ctx.procRoot}`, async () => {
    const [facts, figures, users] = await Promise.all([
      readAllProcesses(ctx.procRoot),
      readSystemFigures(ctx.procRoot),
      readUsers(),
    ]);
    return { facts, figures, users };
  });
}

/** PIDSTAT: one process (ENOENT when it does not exist) or all of them, cut at `limit`. */
export async function pidstat(ctx: HostContext, params: Params<"PIDSTAT">): Promise<Listing<PidstatEntry>> {
  const [table, cpuNow] = await Promise.all([
    params.pid === undefined ? processTable(ctx) : oneProcess(ctx, params.pid),
    cpuSample(ctx),
  ]);
  if (params.pid !== undefined && table.facts.length === 0) throw new NoSuchProcessError(params.pid);
  const entries = table.facts.map((f) => pidstatEntry(f, table.figures, table.users, cpuNow));
  return cut(sortProcesses(entries, params.sort ?? "pid"), params.limit ?? PIDSTAT_DEFAULT_LIMIT);
}

/** One process's /proc files (none when it does not exist): a few reads, not worth sharing. */
async function oneProcess(ctx: HostContext, pid: number): Promise<ProcessTable> {
  const [fact, figures, users] = await Promise.all([
    readProcess(ctx.procRoot, pid),
    readSystemFigures(ctx.procRoot),
    readUsers(),
  ]);
  return { facts: fact ? [fact] : [], figures, users };
}

function pidstatEntry(
  f: ProcessFacts,
  figures: SystemFigures,
  users: ReadonlyMap<number, string>,
  cpuNow: ReadonlyMap<number, number>,
): PidstatEntry {
  const uid = f.status?.uid ?? null;
  const rss = f.status?.rss ?? null;
  const cpu = cpuNow.get(f.stat.pid);
  return {
    pid: f.stat.pid,
    ppid: f.stat.ppid,
    name: f.stat.comm,
    state: stateName(f.stat.state),
    uid,
    user: userName(users, uid),
    threads: f.stat.threads,
    cpu: cpu === undefined ? null : round(cpu),
    cpuUser: round(f.stat.utime / CLOCK_TICKS),
    cpuSystem: round(f.stat.stime / CLOCK_TICKS),
    rss,
    vsz: f.stat.vsize,
    mem: memPercent(rss, figures),
    minorFaults: f.stat.minorFaults,
    majorFaults: f.stat.majorFaults,
    voluntaryCtxSwitches: f.status?.voluntaryCtxSwitches ?? null,
    involuntaryCtxSwitches: f.status?.involuntaryCtxSwitches ?? null,
    ...f.io,
    started: startedAt(f, figures),
  };
}

/**
 * Current CPU percent per pid from systeminformation's sample (it keeps the
 * previous one, so this is the share since the last PS or PIDSTAT, at most
 * 0.5 s stale); empty when ps is missing or /proc is a fixture.
 */
async function cpuSample(ctx: HostContext): Promise<Map<number, number>> {
  if (!isLiveProc(ctx)) return new Map();
  const sampled = probedValue(
    await probe(ctx.clock, PROBE_DEADLINE_MS, () =>
      shared(ctx, "si.processes", async () => (await systemInformation()).processes()),
    ),
  );
  return new Map((sampled?.list ?? []).filter((p) => Number.isFinite(p.cpu)).map((p) => [p.pid, p.cpu]));
}

/** Highest CPU or memory first (unknown last), or by pid; ties by pid. */
export function sortProcesses<T extends { pid: number; cpu: number | null; mem: number | null }>(
  entries: readonly T[],
  by: ProcessSort,
): T[] {
  const key = (e: T) => (by === "pid" ? 0 : (e[by] ?? -1));
  return [...entries].sort((a, b) => key(b) - key(a) || a.pid - b.pid);
}

function lifetimeCpu(f: ProcessFacts, figures: SystemFigures, cores: number): number | null {
  if (figures.uptime === null) return null;
  const alive = figures.uptime - f.stat.starttime / CLOCK_TICKS;
  if (alive <= 0) return null;
  return round((((f.stat.utime + f.stat.stime) / CLOCK_TICKS / alive) * 100) / cores);
}

function memPercent(rss: number | null, figures: SystemFigures): number | null {
  if (rss === null || !figures.memTotal) return null;
  return round((rss / figures.memTotal) * 100);
}

function startedAt(f: ProcessFacts, figures: SystemFigures): number | null {
  if (figures.bootedAt === null) return null;
  return figures.bootedAt + Math.round((f.stat.starttime / CLOCK_TICKS) * 1_000);
}

function userName(users: ReadonlyMap<number, string>, uid: number | null): string | null {
  if (uid === null) return null;
  return users.get(uid) ?? String(uid);
}

function shorten(command: string): string {
  return command.length > COMMAND_MAX_CHARS ? `${command.slice(0, COMMAND_MAX_CHARS - 1)}…` : command;
}

/** The signals KILL may send; SIGTERM when none is named. */
export const KILL_SIGNALS = [
  "SIGTERM",
  "SIGKILL",
  "SIGINT",
  "SIGHUP",
  "SIGQUIT",
  "SIGUSR1",
  "SIGUSR2",
  "SIGSTOP",
  "SIGCONT",
] as const satisfies readonly NodeJS.Signals[];
export type KillSignal = (typeof KILL_SIGNALS)[number];

/** `term`, `TERM` and `SIGTERM` all name SIGTERM; anything outside KILL_SIGNALS is refused. */
export function killSignal(name: string | undefined): KillSignal {
  if (name === undefined) return "SIGTERM";
  const upper = name.toUpperCase();
  const full = upper.startsWith("SIG") ? upper : `SIG${upper}`;
  const found = KILL_SIGNALS.find((s) => s === full);
  if (!found) throw new SignalNotAllowedError(name, KILL_SIGNALS);
  return found;
}

/** KILL: signals one pid of the host, unless it is (a thread of) a process the node never signals. */
export async function killProcess(
  ctx: HostContext,
  params: Params<"KILL">,
): Promise<{ pid: number; signal: KillSignal }> {
  const signal = killSignal(params.signal);
  await refuseProtected(ctx, params.pid);
  try {
    process.kill(params.pid, signal);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code === "ESRCH") throw new NoSuchProcessError(params.pid, { cause });
    if (code === "EPERM") throw new SignalDeniedError(params.pid, signal, { cause });
    throw cause;
  }
  return { pid: params.pid, signal };
}

/**
 * Throws ProtectedProcessError for init, the daemon, a protected pid, or a
 * thread of any of them. kill(2) accepts a thread id and signals the whole
 * process, so the pid's thread group (`Tgid:` of /proc/<pid>/status, which
 * exists for thread ids too though /proc does not list them) is checked as
 * well as the pid itself.
 */
async function refuseProtected(ctx: HostContext, pid: number): Promise<void> {
  const reasonFor = (p: number): ProtectedReason | undefined =>
    p === 1 ? "init" : p === ctx.selfPid ? "daemon" : ctx.protectedPids.includes(p) ? "protected" : undefined;
  const own = reasonFor(pid);
  if (own !== undefined) throw new ProtectedProcessError(pid, own);
  const tgid =
    (await threadGroupOf(ctx.procRoot, pid)) ??
    (await taskOwner(ctx.procRoot, pid, [1, ctx.selfPid, ...ctx.protectedPids]));
  const owner = tgid === undefined || tgid === pid ? undefined : reasonFor(tgid);
  if (owner !== undefined) throw new ProtectedProcessError(pid, owner, tgid);
}

/** Where a thread's status cannot be read: which of `owners` lists it in /proc/<owner>/task. */
async function taskOwner(
  procRoot: string,
  tid: number,
  owners: readonly number[],
): Promise<number | undefined> {
  for (const owner of owners) {
    if (await exists(join(procRoot, String(owner), "task", String(tid)))) return owner;
  }
  return undefined;
}

/** The process a pid or thread id belongs to, or undefined when /proc does not say (gone, or no /proc). */
export async function threadGroupOf(procRoot: string, pid: number): Promise<number | undefined> {
  const status = await readText(join(procRoot, String(pid), "status"));
  if (status === undefined) return undefined;
  const tgid = Number(parseKeyValues(status).get("Tgid"));
  return Number.isSafeInteger(tgid) && tgid > 0 ? tgid : undefined;
}
