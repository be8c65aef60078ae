// The daemon's version, read once from the package's own package.json.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";

function findVersion(): string {
  let dir = import.meta.dirname;
  for (let i = 0; i < 5; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === "dvsd" && pkg.version) return pkg.version;
    } catch {
      // not here; look one level up
    }
    dir = dirname(dir);
  }
  return "0.0.0";
}

export const VERSION = findVersion();
