// A node's address as replies and the action log carry it (seed 001 `ipaddr`):
// another node's claim, kept only when it is an IP literal or a host name;
// a node's own is configured or found on its host.
import { describe, expect, it } from "vitest";
import { ownAddress } from "../../daemon/hostAddress.js";
import { isPlausibleAddress, plausibleAddress } from "../../protocol/hostAddress.js";

describe("a stated host address", () => {
  it("is kept when it is an IPv4 or IPv6 literal or a DNS host name", () => {
    for (const a of ["10.0.0.7", "192.0.2.1", "::1", "2001:db8::5", "node2", "node2.example.test", "a-b.c"])
      expect(isPlausibleAddress(a), a).toBe(true);
  });

  it("is dropped when it is anything else: shell, subjects, broken numbers, overlong, not a string", () => {
    for (const a of [
      "",
      "evil; rm -rf /",
      "dvs.dvs.actions.>",
      "1.2.3",
      "256.1.1.1",
      "-a.b",
      "a..b",
      "x".repeat(254),
      "a b",
    ])
      expect(isPlausibleAddress(a), a).toBe(false);
    expect(plausibleAddress(42)).toBeUndefined();
    expect(plausibleAddress({ toString: () => "10.0.0.1" })).toBeUndefined();
    expect(plausibleAddress("10.0.0.1")).toBe("10.0.0.1");
  });
});

describe("a node's own address", () => {
  const nic = (address: string, family: "IPv4" | "IPv6", internal = false) => ({
    address,
    family,
    internal,
    netmask: "",
    mac: "00:00:00:00:00:00",
    cidr: null,
  });

  it("is the configured one, else the first external IPv4, else a routable IPv6, else the host name", () => {
    const ifaces = {
      lo: [nic("127.0.0.1", "IPv4", true)],
      eth0: [nic("fe80::1", "IPv6"), nic("10.1.2.3", "IPv4")],
    };
    expect(ownAddress("node1.example.test", ifaces as never, "h")).toBe("node1.example.test");
    expect(ownAddress(undefined, ifaces as never, "h")).toBe("10.1.2.3");
    expect(
      ownAddress(undefined, { eth0: [nic("fe80::1", "IPv6"), nic("2001:db8::9", "IPv6")] } as never, "h"),
    ).toBe("2001:db8::9");
    expect(ownAddress(undefined, { lo: [nic("127.0.0.1", "IPv4", true)] } as never, "buildhost")).toBe(
      "buildhost",
    );
    expect(ownAddress(undefined, {} as never, "not a name")).toBe("127.0.0.1");
  });
});
