// Parsers for dvsctl's arguments and options: each turns one command-line
// string into the typed value a request param needs, or fails with commander's
// InvalidArgumentError, which dvsctl reports as bad usage (exit status 2).
import { InvalidArgumentError } from "commander";
import { ALL } from "../../client/wire.js";

function integer(value: string, min: number, max: number, what: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isInteger(n) || n < min || n > max)
    throw new InvalidArgumentError(`expected ${what} (an integer ${min}…${max})`);
  return n;
}

export const positive = (value: string): number =>
  integer(value, 1, Number.MAX_SAFE_INTEGER, "a positive integer");
export const nodeId = (value: string): number => integer(value, 0, 65_535, "a node id");
export const dcid = (value: string): number => integer(value, 0, 65_535, "a DCID");
export const endpoint = (value: string): number => integer(value, -65_536, 65_536, "an endpoint");
export const count = (value: string): number => integer(value, 0, 1_000_000, "a count");
export const unsigned = (value: string): number => integer(value, 0, 0xffff_ffff, "a non-negative integer");
export const anyInteger = (value: string): number =>
  integer(value, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, "an integer");

/** `--node`: a node id, or `all` (any case) for every member of the view. */
export function nodeTarget(value: string): number | typeof ALL {
  if (value.toLowerCase() === "all") return ALL;
  return integer(value, 0, 65_535, "a node id or 'all'");
}

/** `--nodes 1,2,3`: node ids, comma-separated; an empty string is no node. */
export function nodeList(value: string): number[] {
  if (value.trim() === "") return [];
  return value.split(",").map((part) => nodeId(part.trim()));
}

/** Any JSON value (`--input-json`, `--body-json`). */
export function jsonValue(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch (error) {
    throw new InvalidArgumentError(`expected JSON: ${(error as Error).message}`);
  }
}

/** A JSON object (not an array, not null). */
export function jsonObject(value: string): Record<string, unknown> {
  const parsed = jsonValue(value);
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
    throw new InvalidArgumentError("expected a JSON object");
  return parsed as Record<string, unknown>;
}
