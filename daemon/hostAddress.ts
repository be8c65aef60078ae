// The address a node states as its own in its answers and action records (seed
// 001 `ipaddr`): the configured `address` when there is one, otherwise the
// host's first non-internal IPv4 address, then IPv6, then its host name.
import { hostname, networkInterfaces } from "node:os";
import { isPlausibleAddress } from "../protocol/hostAddress.js";

/** The node's own address: `configured`, or found on the host (loopback when nothing else is). */
export function ownAddress(
  configured: string | undefined,
  interfaces: ReturnType<typeof networkInterfaces> = networkInterfaces(),
  name: string = hostname(),
): string {
  if (configured !== undefined) return configured;
  const external = Object.values(interfaces)
    .flatMap((list) => list ?? [])
    .filter((a) => !a.internal);
  const v4 = external.find((a) => a.family === "IPv4");
  if (v4) return v4.address;
  // A link-local IPv6 address names nothing off its link without its zone.
  const v6 = external.find(
    (a) => a.family === "IPv6" && !a.address.startsWith("fe80") && isPlausibleAddress(a.address),
  );
  if (v6) return v6.address;
  return isPlausibleAddress(name) ? name : "127.0.0.1";
}
