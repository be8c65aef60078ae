// The page's files, served from the package: plain HTML, CSS and ES modules in
// console/assets/ (no CDN, no build step). tsc does not copy them, so the
// compiled server (dist/console/) finds them back in the source tree.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import type { ServerResponse } from "node:http";
import { extname, join } from "node:path";
import { SECURITY_HEADERS } from "./http.js";

const TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
};

/** console/assets beside the source, or from dist/console/ back to the source tree. */
export function assetsDir(): string {
  const candidates = [
    join(import.meta.dirname, "assets"),
    join(import.meta.dirname, "..", "..", "console", "assets"),
  ];
  const found = candidates.find((dir) => existsSync(join(dir, "index.html")));
  if (found === undefined)
    throw new Error(`the console's assets are missing (looked in ${candidates.join(", ")})`);
  return found;
}

interface Asset {
  readonly type: string;
  readonly body: Buffer;
}

/**
 * Every asset, read once at start and served from memory: only the files that
 * were there, by exact path, so no request path reaches the filesystem.
 */
export class Assets {
  readonly #byPath = new Map<string, Asset>();

  constructor(dir: string = assetsDir()) {
    const walk = (sub: string) => {
      for (const name of readdirSync(join(dir, sub))) {
        const rel = sub === "" ? name : `${sub}/${name}`;
        if (statSync(join(dir, rel)).isDirectory()) walk(rel);
        else {
          const type = TYPES[extname(name)];
          if (type !== undefined) this.#byPath.set(`/${rel}`, { type, body: readFileSync(join(dir, rel)) });
        }
      }
    };
    walk("");
  }

  /** Serves `path` (`/` is index.html; a page route like `/cluster` too); false when there is no such asset. */
  serve(path: string, res: ServerResponse): boolean {
    const asset =
      this.#byPath.get(path) ?? (/^\/[a-z]*$/.test(path) ? this.#byPath.get("/index.html") : undefined);
    if (asset === undefined) return false;
    res.writeHead(200, { ...SECURITY_HEADERS, "content-type": asset.type, "cache-control": "no-cache" });
    res.end(asset.body);
    return true;
  }
}
