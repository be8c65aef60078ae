import { once } from "node:events";
import { type AddressInfo, createServer } from "node:net";
import { describe, expect, it } from "vitest";
import {
  decodeEndpoint,
  formatIpv6,
  type InterfaceEntry,
  parseDefaultRoutes,
  parseNetDev,
  parseProcNet,
  SOCKET_STATES,
  type SocketEntry,
  sortSockets,
} from "../../daemon/host/network.js";
import { PARAMS } from "../../protocol/messages.js";
import { hostHandlers as handlers, succeeded as ok, hostRqst as rqst } from "../support/hostHandlers.js";

const host = handlers();

const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 31337 1 0000000000000000 100 0 0 10 0
   1: 0100007F:D431 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 31338 1 0000000000000000 20 4 30 10 -1
`;
const TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 555 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:1F90 0000000000000000FFFF00000100007F:C350 06 00000000:00000000 03:00000F9F 00000000     0        0 0 3 0000000000000000
`;
const UDP = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  100: 00000000:14E9 00000000:0000 07 00000000:00000000 00:00000000 00000000   104        0 777 2 0000000000000000 0
`;

describe("/proc/net parsers", () => {
  it("decodes TCP sockets: addresses, ports, state, uid and inode", () => {
    expect(parseProcNet(TCP, "tcp", true)).toEqual([
      {
        protocol: "tcp",
        localAddress: "127.0.0.1",
        localPort: 8080,
        peerAddress: "0.0.0.0",
        peerPort: 0,
        state: "LISTEN",
        uid: 1000,
        inode: 31337,
        pid: null,
        process: null,
      },
      expect.objectContaining({ localPort: 54321, peerPort: 8080, state: "ESTABLISHED", inode: 31338 }),
    ]);
  });

  it("decodes IPv6 words in host order, including IPv4-mapped addresses", () => {
    const [ssh, waiting] = parseProcNet(TCP6, "tcp6", true);
    expect(ssh).toMatchObject({ localAddress: "::1", localPort: 22, peerAddress: "::", state: "LISTEN" });
    expect(waiting).toMatchObject({
      localAddress: "::ffff:127.0.0.1",
      peerAddress: "::ffff:127.0.0.1",
      peerPort: 50000,
      state: "TIME_WAIT",
      inode: null,
    });
  });

  it("calls an unconnected UDP socket UNCONN", () => {
    expect(parseProcNet(UDP, "udp", true)).toEqual([
      expect.objectContaining({
        protocol: "udp",
        localAddress: "0.0.0.0",
        localPort: 5353,
        state: "UNCONN",
        uid: 104,
      }),
    ]);
  });

  it("reads addresses of a big-endian host the other way round", () => {
    expect(decodeEndpoint("7F000001:0050", false)).toEqual({ address: "127.0.0.1", port: 80 });
    expect(decodeEndpoint("nonsense", true)).toBeUndefined();
  });

  it("writes IPv6 addresses in their shortest form", () => {
    const bytes = (hex: string) =>
      Array.from({ length: 16 }, (_, i) => Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16));
    expect(formatIpv6(bytes("20010db8000000000000000000000001"))).toBe("2001:db8::1");
    expect(formatIpv6(bytes("fe800000000000000000000000000000"))).toBe("fe80::");
    expect(formatIpv6(bytes("20010db8000100000001000000000001"))).toBe("2001:db8:1:0:1::1");
    expect(formatIpv6(bytes("00000000000000000000000000000000"))).toBe("::");
  });

  it("every state a socket can be reported in can be asked for by name", () => {
    expect([...PARAMS.NETSTAT.shape.state.unwrap().options].sort()).toEqual([...SOCKET_STATES].sort());
  });

  it("puts listening sockets first, then by protocol and port", () => {
    const s = (protocol: SocketEntry["protocol"], state: string, localPort: number) =>
      ({ protocol, state, localPort, peerPort: 0 }) as SocketEntry;
    const sorted = sortSockets([s("tcp", "ESTABLISHED", 1), s("udp", "UNCONN", 53), s("tcp", "LISTEN", 80)]);
    expect(sorted.map((x) => `${x.protocol}/${x.localPort}`)).toEqual(["tcp/80", "udp/53", "tcp/1"]);
  });

  it("reads interface counters and the interfaces that carry a default route", () => {
    const dev = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:  1000      10    0    0    0     0          0         0     1000      10    0    0    0     0       0          0
  eth0: 2000      20    1    2    0     0          0         0     3000      30    3    4    0     0       0          0
`;
    expect(parseNetDev(dev).get("eth0")).toEqual({
      rxBytes: 2000,
      rxPackets: 20,
      rxErrors: 1,
      rxDropped: 2,
      txBytes: 3000,
      txPackets: 30,
      txErrors: 3,
      txDropped: 4,
    });
    const route = `Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
`;
    const ipv6 = `00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000002 00000000 00000003     eth1
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
`;
    expect([...parseDefaultRoutes(route, ipv6)].sort()).toEqual(["eth0", "eth1"]);
  });
});

describe("IFCONFIG", () => {
  it("lists the loopback interface with its addresses and counters", async () => {
    const out = ok<InterfaceEntry[]>(await host.IFCONFIG(rqst("IFCONFIG")));
    expect(out.rcode).toBe(out.data.length);
    const lo = out.data.find((i) => i.internal);
    expect(lo?.name).toBe("lo");
    expect(lo?.addresses).toContainEqual({
      family: "IPv4",
      address: "127.0.0.1",
      netmask: "255.0.0.0",
      prefix: 8,
    });
    expect(lo?.mtu).toBeGreaterThan(0);
    expect(lo?.rxBytes).toBeGreaterThanOrEqual(0);
  });
});

describe("NETSTAT", () => {
  it("finds a TCP listener opened by this process, with its pid", async () => {
    const server = createServer();
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    try {
      const { port } = server.address() as AddressInfo;
      const out = ok<SocketEntry[]>(
        await host.NETSTAT(rqst("NETSTAT", { protocol: "tcp", state: "LISTEN", limit: 5000 })),
      );
      expect(out.data.every((s) => s.state === "LISTEN" && s.protocol.startsWith("tcp"))).toBe(true);
      expect(out.data.find((s) => s.localPort === port)).toMatchObject({
        protocol: "tcp",
        localAddress: "127.0.0.1",
        peerPort: 0,
        pid: process.pid,
        process: expect.any(String),
      });
    } finally {
      server.close();
    }
  });

  it("cuts the list at the limit and says in rcode how many sockets matched", async () => {
    const servers = [createServer(), createServer()];
    for (const s of servers) s.listen(0, "127.0.0.1");
    await Promise.all(servers.map((s) => once(s, "listening")));
    try {
      const out = ok<SocketEntry[]>(await host.NETSTAT(rqst("NETSTAT", { state: "LISTEN", limit: 1 })));
      expect(out.data).toHaveLength(1);
      expect(out.rcode).toBeGreaterThanOrEqual(2);
    } finally {
      for (const s of servers) s.close();
    }
  });
});
