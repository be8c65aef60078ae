// The host's network: IFCONFIG (interfaces, addresses, link state, counters)
// and NETSTAT (TCP and UDP sockets of the daemon's network namespace, with the
// pid holding each), both read from /proc/net and /sys/class/net.
import { endianness, networkInterfaces } from "node:os";
import { join } from "node:path";
import type { Params } from "../../protocol/messages.js";
import type { HostContext } from "./context.js";
import { PROBE_DEADLINE_MS, probe, probedValue } from "./deadline.js";
import { listDir, listPids, mapInBatches, readLink, readText } from "./hostFiles.js";
import { cut, type Listing } from "./listing.js";
import { shared } from "./sharedProbes.js";
import { systemInformation } from "./systemInfo.js";

export const IFCONFIG_DEFAULT_LIMIT = 500;
export const NETSTAT_DEFAULT_LIMIT = 500;
const SYS_NET = "/sys/class/net";

// ---- IFCONFIG ----

export interface InterfaceAddress {
  readonly family: "IPv4" | "IPv6";
  readonly address: string;
  readonly netmask: string;
  /** Prefix length (the /n of CIDR notation). */
  readonly prefix: number | null;
}

/** /proc/net/dev counters of one interface (since boot, or since it was created). */
export interface InterfaceCounters {
  readonly rxBytes: number;
  readonly rxPackets: number;
  readonly rxErrors: number;
  readonly rxDropped: number;
  readonly txBytes: number;
  readonly txPackets: number;
  readonly txErrors: number;
  readonly txDropped: number;
}

/** One row of IFCONFIG. Counters are null when /proc/net/dev does not list the interface. */
export interface InterfaceEntry extends NullableCounters {
  readonly name: string;
  readonly mac: string | null;
  readonly mtu: number | null;
  /** Operational state from the kernel: up, down, unknown (loopback and tunnels say unknown), … */
  readonly state: string | null;
  /** Loopback. */
  readonly internal: boolean;
  /** Carries a default route (IPv4 or IPv6). */
  readonly default: boolean;
  /** Link speed in Mbit/s; null when the driver does not say (virtual links). */
  readonly speed: number | null;
  readonly addresses: readonly InterfaceAddress[];
}

type NullableCounters = { readonly [K in keyof InterfaceCounters]: number | null };

const NO_COUNTERS: NullableCounters = {
  rxBytes: null,
  rxPackets: null,
  rxErrors: null,
  rxDropped: null,
  txBytes: null,
  txPackets: null,
  txErrors: null,
  txDropped: null,
};

/** /proc/net/dev: counters by interface name. */
export function parseNetDev(text: string): Map<string, InterfaceCounters> {
  const out = new Map<string, InterfaceCounters>();
  for (const line of text.split("\n").slice(2)) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    const f = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/)
      .map(Number);
    if (f.length < 16 || f.some((n) => !Number.isFinite(n))) continue;
    const n = (i: number) => f[i] ?? 0;
    out.set(line.slice(0, colon).trim(), {
      rxBytes: n(0),
      rxPackets: n(1),
      rxErrors: n(2),
      rxDropped: n(3),
      txBytes: n(8),
      txPackets: n(9),
      txErrors: n(10),
      txDropped: n(11),
    });
  }
  return out;
}

const RTF_UP = 0x1;
const RTF_REJECT = 0x200;

/** Interfaces with a usable default route in /proc/net/route (IPv4) or /proc/net/ipv6_route. */
export function parseDefaultRoutes(route: string, ipv6Route: string): Set<string> {
  const out = new Set<string>();
  for (const line of route.split("\n").slice(1)) {
    const [iface, destination, , flags, , , , mask] = line.trim().split(/\s+/);
    if (!iface || destination !== "00000000" || mask !== "00000000") continue;
    if ((Number.parseInt(flags ?? "0", 16) & RTF_UP) !== 0) out.add(iface);
  }
  for (const line of ipv6Route.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || !/^0{32}$/.test(f[0] ?? "") || f[1] !== "00") continue;
    const flags = Number.parseInt(f[8] ?? "0", 16);
    if ((flags & RTF_UP) !== 0 && (flags & RTF_REJECT) === 0 && f[9]) out.add(f[9]);
  }
  return out;
}

/**
 * IFCONFIG. Not systeminformation's interface probe: it runs blocking shell
 * commands for every interface (about 35 ms each here), which would hold up
 * heartbeats on a host with many veths.
 */
export async function listInterfaces(
  ctx: HostContext,
  params: Params<"IFCONFIG">,
): Promise<Listing<InterfaceEntry>> {
  const [dev, route, ipv6Route, sysNames] = await Promise.all([
    readText(join(ctx.procRoot, "net", "dev")),
    readText(join(ctx.procRoot, "net", "route")),
    readText(join(ctx.procRoot, "net", "ipv6_route")),
    listDir(SYS_NET),
  ]);
  const counters = parseNetDev(dev ?? "");
  const defaults = parseDefaultRoutes(route ?? "", ipv6Route ?? "");
  const os = networkInterfaces();
  const names = [...new Set([...(sysNames ?? []), ...counters.keys(), ...Object.keys(os)])];
  const entries = await Promise.all(
    names.map(async (name) => {
      const link = await linkFacts(name);
      const addresses = (os[name] ?? []).map(
        (a): InterfaceAddress => ({
          family: a.family,
          address: a.address,
          netmask: a.netmask,
          prefix: prefixOf(a.cidr),
        }),
      );
      const entry: InterfaceEntry = {
        name,
        mac: link.mac ?? os[name]?.[0]?.mac ?? null,
        mtu: link.mtu,
        state: link.state,
        internal: link.type === LOOPBACK_TYPE || (os[name]?.some((a) => a.internal) ?? false),
        default: defaults.has(name),
        speed: link.speed,
        addresses,
        ...(counters.get(name) ?? NO_COUNTERS),
      };
      // /sys/class/net also holds files such as bonding_masters: not interfaces.
      const real = link.index !== null || counters.has(name) || os[name] !== undefined;
      return real ? [{ entry, index: link.index }] : [];
    }),
  ).then((found) => found.flat());
  entries.sort((a, b) => (a.index ?? 1e9) - (b.index ?? 1e9) || a.entry.name.localeCompare(b.entry.name));
  return cut(
    entries.map((e) => e.entry),
    params.limit ?? IFCONFIG_DEFAULT_LIMIT,
  );
}

/** ARPHRD_LOOPBACK in /sys/class/net/<if>/type. */
const LOOPBACK_TYPE = 772;

async function linkFacts(name: string) {
  const dir = join(SYS_NET, name);
  const [address, mtu, operstate, speed, index, type] = await Promise.all(
    ["address", "mtu", "operstate", "speed", "ifindex", "type"].map((f) => readText(join(dir, f))),
  );
  const number = (text: string | undefined) => {
    const n = text === undefined ? Number.NaN : Number(text.trim());
    return Number.isFinite(n) ? n : null;
  };
  const rawSpeed = number(speed);
  return {
    mac: address?.trim() || null,
    mtu: number(mtu),
    state: operstate?.trim() || null,
    // Virtual links answer -1 or refuse the read (EINVAL).
    speed: rawSpeed !== null && rawSpeed > 0 ? rawSpeed : null,
    index: number(index),
    type: number(type),
  };
}

function prefixOf(cidr: string | null): number | null {
  const n = cidr === null ? Number.NaN : Number(cidr.split("/")[1]);
  return Number.isInteger(n) ? n : null;
}

// ---- NETSTAT ----

export type SocketProtocol = "tcp" | "tcp6" | "udp" | "udp6";

/** One row of NETSTAT. */
export interface SocketEntry {
  readonly protocol: SocketProtocol;
  readonly localAddress: string;
  readonly localPort: number;
  /** 0.0.0.0 / :: and port 0 for a socket with no peer (listening, unconnected UDP). */
  readonly peerAddress: string;
  readonly peerPort: number;
  /** TCP state (LISTEN, ESTABLISHED, TIME_WAIT, …); for UDP, UNCONN or ESTABLISHED (connected). */
  readonly state: string;
  /** Owner's uid, and the socket's inode (what ties it to a pid). */
  readonly uid: number | null;
  readonly inode: number | null;
  /** The process holding it: null when the node may not look (another user's process) or it is gone. */
  readonly pid: number | null;
  readonly process: string | null;
}

/** The kernel's TCP states (include/net/tcp_states.h), in /proc/net/tcp's `st` column. */
const TCP_STATES: Record<string, string> = {
  "01": "ESTABLISHED",
  "02": "SYN_SENT",
  "03": "SYN_RECV",
  "04": "FIN_WAIT1",
  "05": "FIN_WAIT2",
  "06": "TIME_WAIT",
  "07": "CLOSE",
  "08": "CLOSE_WAIT",
  "09": "LAST_ACK",
  "0A": "LISTEN",
  "0B": "CLOSING",
  "0C": "NEW_SYN_RECV",
};

/** Every state NETSTAT reports (PARAMS.NETSTAT accepts the same names as a filter). */
export const SOCKET_STATES: readonly string[] = [...Object.values(TCP_STATES), "UNCONN"];

/** One of /proc/net/tcp, tcp6, udp, udp6. `littleEndian` is the host's byte order (the kernel writes words in it). */
export function parseProcNet(
  text: string,
  protocol: SocketProtocol,
  littleEndian = endianness() === "LE",
): SocketEntry[] {
  const out: SocketEntry[] = [];
  const udp = protocol.startsWith("udp");
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const local = decodeEndpoint(f[1] ?? "", littleEndian);
    const peer = decodeEndpoint(f[2] ?? "", littleEndian);
    if (!local || !peer) continue;
    const st = (f[3] ?? "").toUpperCase();
    const state = udp ? (st === "01" ? "ESTABLISHED" : "UNCONN") : (TCP_STATES[st] ?? `UNKNOWN_${st}`);
    const uid = Number(f[7]);
    const inode = Number(f[9]);
    out.push({
      protocol,
      localAddress: local.address,
      localPort: local.port,
      peerAddress: peer.address,
      peerPort: peer.port,
      state,
      uid: Number.isInteger(uid) ? uid : null,
      inode: Number.isInteger(inode) && inode > 0 ? inode : null,
      pid: null,
      process: null,
    });
  }
  return out;
}

/** `0100007F:1F90` → 127.0.0.1 port 8080 (IPv4: one word; IPv6: four words, each in host order). */
export function decodeEndpoint(
  text: string,
  littleEndian: boolean,
): { address: string; port: number } | undefined {
  const [hex, portHex] = text.split(":");
  if (!hex || !portHex || !/^[0-9A-Fa-f]+$/.test(hex) || (hex.length !== 8 && hex.length !== 32)) return;
  const bytes: number[] = [];
  for (let w = 0; w < hex.length; w += 8) {
    const word = [0, 2, 4, 6].map((i) => Number.parseInt(hex.slice(w + i, w + i + 2), 16));
    bytes.push(...(littleEndian ? word.reverse() : word));
  }
  const port = Number.parseInt(portHex, 16);
  return { address: bytes.length === 4 ? bytes.join(".") : formatIpv6(bytes), port };
}

/** RFC 5952 text of 16 bytes: lower case, the longest run of zero groups as ::, IPv4-mapped dotted. */
export function formatIpv6(bytes: readonly number[]): string {
  const groups = Array.from({ length: 8 }, (_, i) => ((bytes[2 * i] ?? 0) << 8) | (bytes[2 * i + 1] ?? 0));
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff)
    return `::ffff:${bytes.slice(12).join(".")}`;
  let best = { start: -1, length: 0 };
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > best.length && j - i >= 2) best = { start: i, length: j - i };
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best.start < 0) return hex.join(":");
  return `${hex.slice(0, best.start).join(":")}::${hex.slice(best.start + best.length).join(":")}`;
}

/** NETSTAT: listening sockets first, then by protocol and local port; cut at `limit`. */
export async function listSockets(
  ctx: HostContext,
  params: Params<"NETSTAT">,
): Promise<Listing<SocketEntry>> {
  const all = (await socketsFromProc(ctx.procRoot)) ?? (await socketsFromSi(ctx));
  const wanted = all.filter(
    (s) =>
      (params.protocol === undefined || s.protocol.startsWith(params.protocol)) &&
      (params.state === undefined || s.state === params.state),
  );
  const listing = cut(sortSockets(wanted), params.limit ?? NETSTAT_DEFAULT_LIMIT);
  const owners = await socketOwners(ctx, new Set(listing.items.flatMap((s) => (s.inode ? [s.inode] : []))));
  return {
    total: listing.total,
    items: listing.items.map((s) => {
      const owner = s.inode === null ? undefined : owners.get(s.inode);
      return owner ? { ...s, pid: owner.pid, process: owner.process } : s;
    }),
  };
}

const PROTOCOL_ORDER: readonly SocketProtocol[] = ["tcp", "tcp6", "udp", "udp6"];

export function sortSockets(sockets: readonly SocketEntry[]): SocketEntry[] {
  const passive = (s: SocketEntry) => (s.state === "LISTEN" || s.state === "UNCONN" ? 0 : 1);
  return [...sockets].sort(
    (a, b) =>
      passive(a) - passive(b) ||
      PROTOCOL_ORDER.indexOf(a.protocol) - PROTOCOL_ORDER.indexOf(b.protocol) ||
      a.localPort - b.localPort ||
      a.peerPort - b.peerPort,
  );
}

/**
 * Every socket of /proc/net; undefined when none of its files can be read (not
 * Linux). Preferred to systeminformation, whose socket probe needs netstat or
 * ss (neither is in a fresh Debian image) and leaves unconnected UDP out.
 */
async function socketsFromProc(procRoot: string): Promise<SocketEntry[] | undefined> {
  const texts = await Promise.all(PROTOCOL_ORDER.map((p) => readText(join(procRoot, "net", p))));
  if (texts.every((t) => t === undefined)) return undefined;
  return PROTOCOL_ORDER.flatMap((p, i) => parseProcNet(texts[i] ?? "", p));
}

/** Where /proc/net is missing: systeminformation, which asks netstat or ss. */
async function socketsFromSi(ctx: HostContext): Promise<SocketEntry[]> {
  const found =
    probedValue(
      await probe(ctx.clock, PROBE_DEADLINE_MS, () =>
        shared(ctx, "si.networkConnections", async () => (await systemInformation()).networkConnections()),
      ),
    ) ?? [];
  return found.map((c) => {
    const v6 = c.localAddress.includes(":");
    const protocol = `${c.protocol.startsWith("udp") ? "udp" : "tcp"}${v6 ? "6" : ""}` as SocketProtocol;
    const port = (p: string) => (/^\d+$/.test(p) ? Number(p) : 0);
    return {
      protocol,
      localAddress: c.localAddress,
      localPort: port(c.localPort),
      peerAddress: c.peerAddress,
      peerPort: port(c.peerPort),
      state: c.state,
      uid: null,
      inode: null,
      pid: c.pid ?? null,
      process: c.process || null,
    };
  });
}

/**
 * Which process holds each socket inode: the `socket:[inode]` links of
 * /proc/<pid>/fd, as netstat -p finds them. Stops when every inode is found or
 * the probe deadline passes (the rest keep pid null).
 */
async function socketOwners(
  ctx: HostContext,
  inodes: ReadonlySet<number>,
): Promise<Map<number, { pid: number; process: string | null }>> {
  const owners = new Map<number, { pid: number; process: string | null }>();
  if (inodes.size === 0) return owners;
  const deadline = ctx.clock.now() + PROBE_DEADLINE_MS;
  const pids = await listPids(ctx.procRoot);
  for (let i = 0; i < pids.length && owners.size < inodes.size && ctx.clock.now() < deadline; i += 32) {
    await mapInBatches(pids.slice(i, i + 32), 32, async (pid) => {
      const fdDir = join(ctx.procRoot, String(pid), "fd");
      const fds = (await listDir(fdDir)) ?? [];
      const targets = await mapInBatches(fds, 256, (fd) => readLink(join(fdDir, fd)));
      const mine = targets.flatMap((target) => {
        const m = target === undefined ? null : /^socket:\[(\d+)\]$/.exec(target);
        return m && inodes.has(Number(m[1])) ? [Number(m[1])] : [];
      });
      if (mine.length === 0) return;
      const comm = (await readText(join(ctx.procRoot, String(pid), "comm")))?.trim() ?? null;
      for (const inode of mine) if (!owners.has(inode)) owners.set(inode, { pid, process: comm });
    });
  }
  return owners;
}
