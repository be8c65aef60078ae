// A node's host address as replies and the action log carry it (seed 001: each
// answer names the address of the host that gave it, `ipaddr`). A node states
// its own address; whoever reads one treats it as a claim and keeps only a
// plausible one: an IPv4 or IPv6 literal, or a DNS host name.
import { isIP } from "node:net";
import { z } from "zod";

/** Longest address kept (a DNS name's limit). */
export const MAX_ADDRESS_CHARS = 253;

const LABEL = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;

/** True for an IP literal or a DNS host name (letters, digits, hyphens, dots; each label 1–63 characters). */
export function isPlausibleAddress(value: string): boolean {
  if (value.length === 0 || value.length > MAX_ADDRESS_CHARS) return false;
  if (isIP(value) !== 0) return true;
  // A name is not all digits and dots: "1.2.3" is a broken IPv4, not a host.
  if (/^[0-9.]+$/.test(value)) return false;
  return value.split(".").every((label) => LABEL.test(label));
}

export const hostAddressSchema = z
  .string()
  .max(MAX_ADDRESS_CHARS)
  .refine(isPlausibleAddress, { message: "not an IP address or host name" });

/** `value` when it is a plausible address, otherwise undefined (hostile input never throws here). */
export function plausibleAddress(value: unknown): string | undefined {
  return typeof value === "string" && isPlausibleAddress(value) ? value : undefined;
}
