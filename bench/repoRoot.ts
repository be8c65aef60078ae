// Where the repository is, seen from a bench module: the directory holding
// nats.conf and package.json, found upward from this file, so that it is the
// same whether the code runs from bench/ (vitest) or dist/bench/ (node).
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { BenchError } from "./errors.js";

export function findRepoRoot(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (let dir = here; ; dir = dirname(dir)) {
    if (existsSync(join(dir, "nats.conf")) && existsSync(join(dir, "package.json"))) return dir;
    if (dirname(dir) === dir) throw new BenchError(`no nats.conf found above ${here}`);
  }
}
