// dvsctl's host commands: ps, vmstat, ifconfig, netstat, df, mount, pidstat,
// kill, container, controller and command, one per host request type. Tables
// have a node column and one row per item (process, interface, socket, …),
// with sizes in KiB/MiB/GiB and percentages with one decimal; --json prints
// the RPLY as it came.
import { type Command, Option } from "commander";
import { formatTable } from "../../client/table.js";
import { ALL, type NodeId, type Rply } from "../../client/wire.js";
import { nodeId, nodeTarget, positive } from "./args.js";
import { elapsed } from "./durations.js";
import {
  cell,
  computedView,
  EMPTY_VIEW,
  errorMessage,
  listView,
  type ReplyView,
  rcodeLabel,
} from "./replies.js";
import { runRequest } from "./session.js";

// ---- cells ----

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

/** Bytes for a table: `512 B`, `1.5 KiB`, `23.0 GiB`. */
export function bytes(value: unknown): string | undefined {
  if (typeof value !== "number" || !Number.isFinite(value)) return undefined;
  let n = value;
  let unit = 0;
  while (Math.abs(n) >= 1024 && unit < UNITS.length - 1) {
    n /= 1024;
    unit++;
  }
  return unit === 0 ? `${n} B` : `${n.toFixed(1)} ${UNITS[unit]}`;
}

/** A percentage with one decimal. */
export function percent(value: unknown): string | undefined {
  return typeof value === "number" && Number.isFinite(value) ? `${value.toFixed(1)}%` : undefined;
}

/** Seconds as `3d 04:05:06`, `04:05:06`, or `05:06`. */
export function duration(value: unknown): string | undefined {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) return undefined;
  const s = Math.floor(value);
  const days = Math.floor(s / 86_400);
  const hms = [Math.floor((s % 86_400) / 3_600), Math.floor((s % 3_600) / 60), s % 60].map((n) =>
    String(n).padStart(2, "0"),
  );
  const clock = days > 0 || hms[0] !== "00" ? hms.join(":") : hms.slice(1).join(":");
  return days > 0 ? `${days}d ${clock}` : clock;
}

/** A time in ms since the epoch, to the second, UTC. */
export function instant(value: unknown): string | undefined {
  if (typeof value !== "number" || !Number.isFinite(value)) return undefined;
  return `${new Date(value).toISOString().slice(0, 19)}Z`;
}

/** A long text cut to `max` characters. */
export function clip(value: unknown, max: number): string | undefined {
  if (typeof value !== "string") return undefined;
  return value.length > max ? `${value.slice(0, max - 1)}…` : value;
}

/** `address:port`, with IPv6 addresses in brackets. */
export function endpointOf(address: unknown, port: unknown): string | undefined {
  if (typeof address !== "string") return undefined;
  const host = address.includes(":") ? `[${address}]` : address;
  return port === 0 ? `${host}:*` : `${host}:${String(port)}`;
}

type Row = Record<string, unknown>;
const obj = (value: unknown): Row =>
  typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Row) : {};

// ---- views ----

export const PS_VIEW = listView(
  computedView({
    pid: (r) => r.pid,
    ppid: (r) => r.ppid,
    user: (r) => r.user,
    state: (r) => r.state,
    "cpu%": (r) => percent(r.cpu),
    "mem%": (r) => percent(r.mem),
    rss: (r) => bytes(r.rss),
    vsz: (r) => bytes(r.vsz),
    started: (r) => instant(r.started),
    command: (r) => clip(r.command, 60),
  }),
);

export const VMSTAT_VIEW = computedView({
  "mem total": (r) => bytes(obj(r.memory).total),
  used: (r) => bytes(obj(r.memory).used),
  free: (r) => bytes(obj(r.memory).free),
  available: (r) => bytes(obj(r.memory).available),
  "buff/cache": (r) => {
    const m = obj(r.memory);
    return typeof m.buffers === "number" && typeof m.cached === "number"
      ? bytes(m.buffers + m.cached)
      : undefined;
  },
  "swap used": (r) => bytes(obj(r.swap).used),
  "swap total": (r) => bytes(obj(r.swap).total),
  "cpu%": (r) => percent(obj(r.cpu).busy),
  "us%": (r) => percent(obj(r.cpu).user),
  "sy%": (r) => percent(obj(r.cpu).system),
  "id%": (r) => percent(obj(r.cpu).idle),
  load: (r) => {
    const l = obj(r.load);
    return [l.one, l.five, l.fifteen].every((n) => typeof n === "number")
      ? `${[l.one, l.five, l.fifteen].map((n) => (n as number).toFixed(2)).join(" ")}`
      : undefined;
  },
  "r/b": (r) => `${cell(obj(r.procs).running) ?? "-"}/${cell(obj(r.procs).blocked) ?? "-"}`,
  uptime: (r) => duration(r.uptime),
});

export const IFCONFIG_VIEW = listView(
  computedView({
    interface: (r) => r.name,
    state: (r) => r.state,
    mtu: (r) => r.mtu,
    mac: (r) => r.mac,
    addresses: (r) =>
      Array.isArray(r.addresses)
        ? r.addresses.map((a) => `${String(obj(a).address)}/${String(obj(a).prefix ?? "?")}`)
        : undefined,
    default: (r) => (r.default === true ? "yes" : undefined),
    speed: (r) => (typeof r.speed === "number" ? `${r.speed} Mb/s` : undefined),
    rx: (r) => bytes(r.rxBytes),
    tx: (r) => bytes(r.txBytes),
    "rx err/drop": (r) => errorsAndDrops(r.rxErrors, r.rxDropped),
    "tx err/drop": (r) => errorsAndDrops(r.txErrors, r.txDropped),
  }),
);

function errorsAndDrops(errors: unknown, dropped: unknown): string | undefined {
  return typeof errors === "number" && typeof dropped === "number" ? `${errors}/${dropped}` : undefined;
}

export const NETSTAT_VIEW = listView(
  computedView({
    proto: (r) => r.protocol,
    local: (r) => endpointOf(r.localAddress, r.localPort),
    peer: (r) => endpointOf(r.peerAddress, r.peerPort),
    state: (r) => r.state,
    pid: (r) => r.pid,
    process: (r) => r.process,
  }),
);

export const DF_VIEW = listView(
  computedView({
    filesystem: (r) => clip(r.filesystem, 40),
    type: (r) => r.type,
    size: (r) => bytes(r.size),
    used: (r) => bytes(r.used),
    available: (r) => bytes(r.available),
    "use%": (r) => percent(r.usePercent),
    mount: (r) => r.mount,
    ro: (r) => (r.readOnly === true ? "ro" : undefined),
  }),
);

export const MOUNT_VIEW = listView(
  computedView({
    source: (r) => clip(r.source, 40),
    target: (r) => r.target,
    type: (r) => r.fstype,
    options: (r) => (Array.isArray(r.options) ? clip(r.options.join(","), 60) : undefined),
  }),
);

export const PIDSTAT_VIEW = listView(
  computedView({
    pid: (r) => r.pid,
    name: (r) => r.name,
    state: (r) => r.state,
    user: (r) => r.user,
    "cpu%": (r) => percent(r.cpu),
    "usr s": (r) => r.cpuUser,
    "sys s": (r) => r.cpuSystem,
    rss: (r) => bytes(r.rss),
    "mem%": (r) => percent(r.mem),
    threads: (r) => r.threads,
    majflt: (r) => r.majorFaults,
    read: (r) => bytes(r.readBytes),
    written: (r) => bytes(r.writeBytes),
    cswch: (r) => r.voluntaryCtxSwitches,
    nvcswch: (r) => r.involuntaryCtxSwitches,
  }),
);

export const KILL_VIEW = computedView({ pid: (r) => r.pid, signal: (r) => r.signal });

export const CONTAINER_VIEW = listView(
  computedView({
    runtime: (r) => r.runtime,
    id: (r) => (typeof r.id === "string" ? r.id.slice(0, 12) : undefined),
    name: (r) => r.name,
    state: (r) => r.state,
    image: (r) => clip(r.image, 40),
    pids: (r) => r.pids,
    self: (r) => (r.self === true ? "yes" : undefined),
    cgroup: (r) => clip(r.cgroup, 50),
    found: (r) => r.sources,
  }),
);

export const CONTROLLER_VIEW = listView(
  computedView({
    controller: (r) => r.name,
    mode: (r) => r.mode,
    "v2 available": (r) => yesNo(r.v2Available),
    "v2 enabled": (r) => yesNo(r.v2Enabled),
    "v1 hierarchy": (r) => r.hierarchy,
    cgroups: (r) => r.cgroups,
    enabled: (r) => yesNo(r.enabled),
  }),
);

function yesNo(value: unknown): string | undefined {
  return typeof value === "boolean" ? (value ? "yes" : "no") : undefined;
}

// ---- tables ----

/**
 * One table for all the nodes' answers: a node column and the view's columns,
 * one row per item; a failed node is one row saying why. A list a node cut at
 * its limit (rcode, the number it had, above count) gets a note below.
 */
export function hostTable(entries: readonly Rply[], view: ReplyView): string {
  const failed = entries.some((e) => e.rcode < 0);
  const headers = ["node", ...view.headers, ...(failed ? ["error"] : [])];
  const blank = view.headers.map(() => "");
  const notes: string[] = [];
  const rows = entries.flatMap((e): unknown[][] => {
    if (e.rcode < 0) return [[e.src, ...blank, `${rcodeLabel(e.rcode)}: ${errorMessage(e) ?? ""}`]];
    if (Array.isArray(e.data) && e.rcode > e.data.length)
      notes.push(`node ${e.src}: ${e.data.length} of ${e.rcode} shown (raise --limit to see more)`);
    const rows = e.data === null || e.data === undefined ? [] : view.rows(e.data);
    if (rows.length === 0) return [[e.src, ...blank]];
    return rows.map((r) => [e.src, ...r.map(cell)]);
  });
  return [formatTable(headers, rows), ...notes].join("\n");
}

/** COMMAND: a summary line per node, then what the command printed. */
export function commandOutput(entries: readonly Rply[]): string {
  return entries
    .map((e) => {
      if (e.rcode < 0) return `--- node ${e.src}: ${rcodeLabel(e.rcode)}: ${errorMessage(e) ?? ""}`;
      const r = obj(e.data);
      const how =
        r.timedOut === true
          ? `timed out, killed by ${String(r.signal)}`
          : r.signal
            ? `killed by ${String(r.signal)}`
            : `exit ${String(r.exitCode)}`;
      const lines = [`--- node ${e.src}: ${how} in ${elapsed(r.durationMs) ?? "?"}`];
      const stream = (text: unknown, truncated: unknown, label: string) => {
        if (typeof text === "string" && text.length > 0) {
          lines.push(label ? `${label}:\n${text.replace(/\n$/, "")}` : text.replace(/\n$/, ""));
        }
        if (truncated === true) lines.push(`(${label || "stdout"} truncated at the node's maxOutputBytes)`);
      };
      stream(r.stdout, r.stdoutTruncated, "");
      stream(r.stderr, r.stderrTruncated, "stderr");
      return lines.join("\n");
    })
    .join("\n");
}

// ---- commands ----

const nodeOption = () =>
  new Option("--node <id|all>", "node that answers, or all: every member of the view, one row each")
    .argParser(nodeTarget)
    .default(ALL, "all");

const limitOption = (fallback: number, max: number) =>
  new Option(
    "--limit <n>",
    `at most this many rows per node (node default ${fallback}, at most ${max})`,
  ).argParser(positive);

const sortOption = (fallback: string) =>
  new Option("--sort <key>", `order: highest cpu or mem first, or by pid (default ${fallback})`).choices([
    "cpu",
    "mem",
    "pid",
  ]);

function examples(...lines: string[]): string {
  return ["", "Examples:", ...lines.map((l) => `  $ ${l}`)].join("\n");
}

interface ListOptions {
  node: NodeId | typeof ALL;
  limit?: number;
  sort?: string;
}

/** The params a list command sends: only the options given, so the node's defaults apply. */
function listParams(opts: ListOptions, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    ...(opts.limit !== undefined ? { limit: opts.limit } : {}),
    ...(opts.sort !== undefined ? { sort: opts.sort } : {}),
    ...extra,
  };
}

export function addHostCommands(program: Command): void {
  const list = (type: string, view: ReplyView) => async (opts: ListOptions, cmd: Command) => {
    await runRequest(cmd, {
      type,
      params: listParams(opts),
      dst: opts.node,
      view,
      format: (e) => hostTable(e, view),
    });
  };

  program
    .command("ps")
    .description("processes of each node's host (PS): pid, user, state, cpu%, mem%, sizes, command")
    .addOption(nodeOption())
    .addOption(limitOption(200, 2000))
    .addOption(sortOption("cpu"))
    .addHelpText(
      "after",
      [
        "",
        "cpu% is the share of the whole machine (all cores = 100) since the node's previous sample.",
        examples(
          "dvsctl ps --node 1 --limit 10",
          "dvsctl ps --sort mem --limit 5",
          "dvsctl --json ps --node 2",
        ),
      ].join("\n"),
    )
    .action(list("PS", PS_VIEW));

  program
    .command("vmstat")
    .description("memory, swap, cpu use, load and uptime of each node's host (VMSTAT)")
    .addOption(nodeOption())
    .addHelpText(
      "after",
      [
        "",
        "cpu% is over the interval since the node's previous VMSTAT (the first one samples 0.5 s).",
        "r/b: tasks runnable / blocked on I/O.",
        examples("dvsctl vmstat", "dvsctl vmstat --node 2 --json"),
      ].join("\n"),
    )
    .action(async (opts: ListOptions, cmd: Command) => {
      await runRequest(cmd, {
        type: "VMSTAT",
        params: {},
        dst: opts.node,
        view: VMSTAT_VIEW,
        format: (e) => hostTable(e, VMSTAT_VIEW),
      });
    });

  program
    .command("ifconfig")
    .description("network interfaces of each node's host (IFCONFIG): state, addresses, counters")
    .addOption(nodeOption())
    .addOption(limitOption(500, 5000))
    .addHelpText("after", examples("dvsctl ifconfig", "dvsctl ifconfig --node 1"))
    .action(list("IFCONFIG", IFCONFIG_VIEW));

  program
    .command("netstat")
    .description("TCP and UDP sockets of each node (NETSTAT), listening ones first, with their pid")
    .addOption(nodeOption())
    .addOption(limitOption(500, 5000))
    .addOption(
      new Option("--protocol <p>", "only tcp or only udp (both IP versions)").choices(["tcp", "udp"]),
    )
    .option("--state <state>", "only sockets in this state: LISTEN, ESTABLISHED, TIME_WAIT, UNCONN, …")
    .addHelpText(
      "after",
      [
        "",
        "pid and process are empty for sockets of processes the node may not inspect.",
        examples("dvsctl netstat --state LISTEN", "dvsctl netstat --node 2 --protocol udp"),
      ].join("\n"),
    )
    .action(async (opts: ListOptions & { protocol?: string; state?: string }, cmd: Command) => {
      await runRequest(cmd, {
        type: "NETSTAT",
        params: listParams(opts, {
          ...(opts.protocol !== undefined ? { protocol: opts.protocol } : {}),
          ...(opts.state !== undefined ? { state: opts.state.toUpperCase() } : {}),
        }),
        dst: opts.node,
        view: NETSTAT_VIEW,
        format: (e) => hostTable(e, NETSTAT_VIEW),
      });
    });

  program
    .command("df")
    .description("local filesystems of each node's host and their use (DF)")
    .addOption(nodeOption())
    .addOption(limitOption(500, 5000))
    .addHelpText("after", examples("dvsctl df", "dvsctl df --node 3 --json"))
    .action(list("DF", DF_VIEW));

  program
    .command("mount")
    .description("the mount table of each node (MOUNT): source, target, type, options")
    .addOption(nodeOption())
    .addOption(limitOption(500, 5000))
    .addHelpText("after", examples("dvsctl mount --node 1", "dvsctl mount --limit 20"))
    .action(list("MOUNT", MOUNT_VIEW));

  program
    .command("pidstat")
    .description("per-process cpu time, memory, faults, context switches and I/O (PIDSTAT)")
    .argument("[pid]", "one process (default: every process, cut at --limit)", positive)
    .addOption(nodeOption())
    .addOption(limitOption(200, 2000))
    .addOption(sortOption("pid"))
    .addHelpText(
      "after",
      [
        "",
        "A pid is a pid of one host: with [pid], name the node (--node); the others answer ENOENT.",
        "I/O columns are empty for processes the node may not inspect (another user's).",
        examples("dvsctl pidstat --node 1 --sort cpu --limit 10", "dvsctl pidstat 1234 --node 2"),
      ].join("\n"),
    )
    .action(async (pid: number | undefined, opts: ListOptions, cmd: Command) => {
      await runRequest(cmd, {
        type: "PIDSTAT",
        params: listParams(opts, pid === undefined ? {} : { pid }),
        dst: opts.node,
        view: PIDSTAT_VIEW,
        format: (e) => hostTable(e, PIDSTAT_VIEW),
      });
    });

  program
    .command("kill")
    .description("send a signal to a process of one node's host (KILL)")
    .argument("<pid>", "the process", positive)
    .requiredOption(
      "--node <id>",
      "the node whose host runs the process (one node: pids are per host)",
      nodeId,
    )
    .option(
      "--signal <name>",
      "SIGTERM (default), SIGKILL, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGSTOP, SIGCONT",
    )
    .addHelpText(
      "after",
      [
        "",
        "The node refuses pid 1 and its own pid (EPERM), answers ENOENT for no such process and",
        "EINVAL for a signal outside the list. The SIG prefix is optional (--signal kill).",
        examples("dvsctl kill 4242 --node 2", "dvsctl kill 4242 --node 2 --signal SIGKILL"),
      ].join("\n"),
    )
    .action(async (pid: number, opts: { node: number; signal?: string }, cmd: Command) => {
      await runRequest(cmd, {
        type: "KILL",
        params: { pid, ...(opts.signal !== undefined ? { signal: opts.signal } : {}) },
        dst: opts.node,
        view: KILL_VIEW,
        format: (e) => hostTable(e, KILL_VIEW),
      });
    });

  program
    .command("container")
    .description(
      "containers on each node's host (CONTAINER): found by cgroup, docker, podman; self = dvsd runs in it",
    )
    .addOption(nodeOption())
    .addOption(limitOption(500, 5000))
    .addHelpText("after", examples("dvsctl container", "dvsctl container --node 1 --json"))
    .action(list("CONTAINER", CONTAINER_VIEW));

  program
    .command("controller")
    .description("cgroup controllers of each node's host (CONTROLLER): v2 root and the v1 table")
    .addOption(nodeOption())
    .addHelpText(
      "after",
      [
        "",
        "mode: v2 (on the unified hierarchy), v1 (on a hierarchy of its own) or none.",
        examples("dvsctl controller --node 1"),
      ].join("\n"),
    )
    .action(async (opts: ListOptions, cmd: Command) => {
      await runRequest(cmd, {
        type: "CONTROLLER",
        params: {},
        dst: opts.node,
        view: CONTROLLER_VIEW,
        format: (e) => hostTable(e, CONTROLLER_VIEW),
      });
    });

  program
    .command("command")
    .description("run a command from the nodes' allow-list (COMMAND; commands.allowed in the node config)")
    .argument("<name>", "the command's name in commands.allowed")
    .argument(
      "[args...]",
      "arguments, for commands configured with allowArgs; one starting with - (given after --) is refused unless the command's configured argv ends with --",
    )
    .addOption(nodeOption())
    .addHelpText(
      "after",
      [
        "",
        "No shell is involved: arguments arrive as given, $(…), ;, | and quotes included.",
        "A node answers EPERM for a name it does not allow, EINVAL for arguments it does not take:",
        "any, without allowArgs; one starting with -, unless the command's configured argv ends with --.",
        "The command's exit status is shown per node; dvsctl's own exit status is 0 once every node ran it.",
        examples("dvsctl command uptime", "dvsctl command echo --node 1 -- hello"),
      ].join("\n"),
    )
    .action(async (name: string, args: string[], opts: { node: NodeId | typeof ALL }, cmd: Command) => {
      await runRequest(cmd, {
        type: "COMMAND",
        params: { command: name, ...(args.length > 0 ? { args } : {}) },
        dst: opts.node,
        view: EMPTY_VIEW,
        format: commandOutput,
      });
    });
}
