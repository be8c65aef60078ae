// What /proc says about one process, and the system-wide /proc files the
// process figures need (boot time, uptime, memory total). The parsers are pure
// (tested against fixture text); the readers degrade to undefined or null
// fields when a file is gone or forbidden, never to an exception.
import { join } from "node:path";
import { listPids, mapInBatches, readText } from "./hostFiles.js";

/**
 * Clock ticks per second of the times in /proc/<pid>/stat (sysconf(_SC_CLK_TCK)).
 * Node cannot ask sysconf; every mainstream Linux build uses 100.
 */
export const CLOCK_TICKS = 100;

/** The fields of /proc/<pid>/stat this runtime uses (proc(5)). */
export interface ProcStat {
  readonly pid: number;
  /** The command name (comm), at most 15 characters; may contain spaces and parentheses. */
  readonly comm: string;
  /** One letter: R running, S sleeping, D disk sleep, Z zombie, T stopped, t traced, I idle, X dead. */
  readonly state: string;
  readonly ppid: number;
  readonly minorFaults: number;
  readonly majorFaults: number;
  /** CPU time in user and kernel mode, clock ticks. */
  readonly utime: number;
  readonly stime: number;
  readonly threads: number;
  /** When it started, clock ticks after boot. */
  readonly starttime: number;
  /** Virtual memory size, bytes. */
  readonly vsize: number;
}

export function parseProcStat(text: string): ProcStat | undefined {
  // comm is in parentheses and may itself contain ") ": the last one closes it.
  const open = text.indexOf("(");
  const close = text.lastIndexOf(")");
  if (open < 0 || close < open) return undefined;
  const pid = Number(text.slice(0, open).trim());
  const f = text
    .slice(close + 1)
    .trim()
    .split(/\s+/);
  if (!Number.isInteger(pid) || f.length < 21) return undefined;
  const n = (i: number) => Number(f[i]);
  return {
    pid,
    comm: text.slice(open + 1, close),
    state: f[0] ?? "?",
    ppid: n(1),
    minorFaults: n(7),
    majorFaults: n(9),
    utime: n(11),
    stime: n(12),
    threads: n(17),
    starttime: n(19),
    vsize: n(20),
  };
}

/** `Key:\tvalue` lines of /proc/<pid>/status, /proc/meminfo and the like. */
export function parseKeyValues(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) out.set(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  return out;
}

/** The fields of /proc/<pid>/status this runtime uses. */
export interface ProcStatus {
  /** Real user id. */
  readonly uid: number | null;
  /** Resident set size, bytes (VmRSS; absent for kernel threads and zombies). */
  readonly rss: number | null;
  readonly voluntaryCtxSwitches: number | null;
  readonly involuntaryCtxSwitches: number | null;
}

export function parseProcStatus(text: string): ProcStatus {
  const kv = parseKeyValues(text);
  return {
    uid: firstNumber(kv.get("Uid")),
    rss: kibibytes(kv.get("VmRSS")),
    voluntaryCtxSwitches: firstNumber(kv.get("voluntary_ctxt_switches")),
    involuntaryCtxSwitches: firstNumber(kv.get("nonvoluntary_ctxt_switches")),
  };
}

/** /proc/<pid>/io; every field null when the file could not be read (another user's process). */
export interface ProcIo {
  /** Bytes asked of read()/write() and friends, whether or not they reached a disk. */
  readonly readChars: number | null;
  readonly writeChars: number | null;
  readonly readSyscalls: number | null;
  readonly writeSyscalls: number | null;
  /** Bytes fetched from / sent to the storage layer. */
  readonly readBytes: number | null;
  readonly writeBytes: number | null;
  readonly cancelledWriteBytes: number | null;
}

export const UNKNOWN_IO: ProcIo = {
  readChars: null,
  writeChars: null,
  readSyscalls: null,
  writeSyscalls: null,
  readBytes: null,
  writeBytes: null,
  cancelledWriteBytes: null,
};

export function parseProcIo(text: string | undefined): ProcIo {
  if (text === undefined) return UNKNOWN_IO;
  const kv = parseKeyValues(text);
  const get = (k: string) => firstNumber(kv.get(k));
  return {
    readChars: get("rchar"),
    writeChars: get("wchar"),
    readSyscalls: get("syscr"),
    writeSyscalls: get("syscw"),
    readBytes: get("read_bytes"),
    writeBytes: get("write_bytes"),
    cancelledWriteBytes: get("cancelled_write_bytes"),
  };
}

/** The system-wide figures process figures are relative to. */
export interface SystemFigures {
  /** Boot time, ms since the epoch (btime of /proc/stat). */
  readonly bootedAt: number | null;
  /** Seconds since boot (/proc/uptime). */
  readonly uptime: number | null;
  /** Physical memory, bytes (MemTotal of /proc/meminfo). */
  readonly memTotal: number | null;
}

export function parseSystemStat(text: string): {
  bootedAt: number | null;
  running: number | null;
  blocked: number | null;
} {
  const field = (name: string) => {
    const m = new RegExp(`^${name}\\s+(\\d+)`, "m").exec(text);
    return m?.[1] === undefined ? null : Number(m[1]);
  };
  const btime = field("btime");
  return {
    bootedAt: btime === null ? null : btime * 1_000,
    running: field("procs_running"),
    blocked: field("procs_blocked"),
  };
}

export async function readSystemFigures(procRoot: string): Promise<SystemFigures> {
  const [stat, uptime, meminfo] = await Promise.all([
    readText(join(procRoot, "stat")),
    readText(join(procRoot, "uptime")),
    readText(join(procRoot, "meminfo")),
  ]);
  const up = uptime === undefined ? Number.NaN : Number(uptime.split(/\s+/)[0]);
  return {
    bootedAt: stat === undefined ? null : parseSystemStat(stat).bootedAt,
    uptime: Number.isFinite(up) ? up : null,
    memTotal: meminfo === undefined ? null : kibibytes(parseKeyValues(meminfo).get("MemTotal")),
  };
}

/** Everything /proc tells about one process. */
export interface ProcessFacts {
  readonly stat: ProcStat;
  /** Null when status could not be read (the process exited between the two reads). */
  readonly status: ProcStatus | null;
  readonly io: ProcIo;
  /** The command line, arguments joined by spaces; empty for kernel threads. */
  readonly cmdline: string;
}

/** The process's /proc files, or undefined when there is no such process. */
export async function readProcess(procRoot: string, pid: number): Promise<ProcessFacts | undefined> {
  const dir = join(procRoot, String(pid));
  const [stat, status, io, cmdline] = await Promise.all([
    readText(join(dir, "stat")),
    readText(join(dir, "status")),
    readText(join(dir, "io")),
    readText(join(dir, "cmdline")),
  ]);
  const parsed = stat === undefined ? undefined : parseProcStat(stat);
  if (!parsed) return undefined;
  return {
    stat: parsed,
    status: status === undefined ? null : parseProcStatus(status),
    io: parseProcIo(io),
    cmdline: (cmdline ?? "").split("\0").filter(Boolean).join(" "),
  };
}

/** Every process of /proc (those that exit while being read are left out). */
export async function readAllProcesses(procRoot: string): Promise<ProcessFacts[]> {
  const pids = await listPids(procRoot);
  const facts = await mapInBatches(pids, 64, (pid) => readProcess(procRoot, pid));
  return facts.filter((f): f is ProcessFacts => f !== undefined);
}

/** User names by uid, from /etc/passwd (empty when it cannot be read). */
export function parsePasswd(text: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const line of text.split("\n")) {
    const [name, , uid] = line.split(":");
    if (name && uid !== undefined && /^\d+$/.test(uid)) out.set(Number(uid), name);
  }
  return out;
}

export async function readUsers(): Promise<Map<number, string>> {
  const text = await readText("/etc/passwd");
  return text === undefined ? new Map() : parsePasswd(text);
}

/** The state letter of /proc/<pid>/stat as the word ps and systeminformation use. */
export function stateName(letter: string): string {
  switch (letter) {
    case "R":
      return "running";
    case "S":
      return "sleeping";
    case "D":
      return "blocked";
    case "Z":
      return "zombie";
    case "T":
    case "t":
      return "stopped";
    case "I":
      return "idle";
    case "X":
    case "x":
      return "dead";
    default:
      return "unknown";
  }
}

function firstNumber(value: string | undefined): number | null {
  const n = value === undefined ? Number.NaN : Number(value.split(/\s+/)[0]);
  return Number.isFinite(n) ? n : null;
}

/** A `1234 kB` value in bytes. */
function kibibytes(value: string | undefined): number | null {
  const n = firstNumber(value);
  return n === null ? null : n * 1024;
}
