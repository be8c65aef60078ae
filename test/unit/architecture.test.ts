// The layout's rules, checked on the source (docs/architecture.md): which
// folder may import which, that the runtime keeps to the injected clock and
// never ends the process, that nothing ships importing the tests, and that no
// source file outgrows what a newcomer can read. Import cycles are biome's
// `noImportCycles` (npm run lint).
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = join(import.meta.dirname, "..", "..");
const PRODUCT = [
  "actors",
  "bench",
  "bin",
  "client",
  "console",
  "daemon",
  "machines",
  "protocol",
  "sim",
  "transport",
];
const MAX_LINES = 600;

interface Source {
  /** Repository-relative path, `/`-separated. */
  readonly path: string;
  readonly text: string;
  /** Repository-relative paths of the local modules it imports (`.ts`). */
  readonly imports: readonly string[];
}

function walk(dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((name) => {
    const path = `${dir}/${name}`;
    if (statSync(join(ROOT, path)).isDirectory()) return walk(path);
    return path.endsWith(".ts") ? [path] : [];
  });
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s*"(\.[^"]+)"/g;

function read(path: string): Source {
  const text = readFileSync(join(ROOT, path), "utf8");
  const imports = [...text.matchAll(IMPORT)].map((m) =>
    normalize(join(dirname(path), m[1] ?? "")).replace(/\.js$/, ".ts"),
  );
  return { path, text, imports };
}

const sources = PRODUCT.flatMap(walk).map(read);
const folderOf = (path: string) => path.split("/")[0] ?? "";

/** Where each part of the product may reach; anything not listed is refused. */
const MAY_IMPORT: readonly { readonly from: RegExp; readonly to: readonly string[]; readonly why: string }[] =
  [
    {
      from: /^bin\/dvsctl(\.ts|\/)/,
      to: ["client"],
      why: "the CLI parses arguments over the client library",
    },
    { from: /^bin\/dvsd\.ts$/, to: ["daemon", "client"], why: "the daemon's entry parses arguments" },
    {
      from: /^bin\/dvsd\//,
      to: ["console", "client"],
      why: "a dvsd subcommand parses its flags over the console and the client library",
    },
    {
      from: /^console\//,
      to: ["client"],
      why: "the console is a client with a user's rights: it reaches the cluster only through the client library",
    },
    {
      from: /^client\//,
      to: ["protocol", "transport", "machines"],
      why: "the client library never imports the runtime",
    },
    {
      from: /^actors\//,
      to: ["machines", "protocol", "transport"],
      why: "the runtime knows no daemon or client",
    },
    { from: /^machines\//, to: ["protocol"], why: "machines are pure" },
    { from: /^protocol\//, to: ["transport"], why: "the vocabulary names only the transport's types" },
    { from: /^transport\//, to: ["protocol"], why: "byte movers and stores" },
  ];

describe("the layout", () => {
  it("finds the product's sources", () => {
    expect(sources.length).toBeGreaterThan(100);
    expect(sources.some((s) => s.path === "actors/node.ts" || s.path.startsWith("actors/node/"))).toBe(true);
  });

  it("each folder imports only the folders beneath it", () => {
    const broken: string[] = [];
    for (const s of sources) {
      const rule = MAY_IMPORT.find((r) => r.from.test(s.path));
      if (!rule) continue;
      const own = s.path.startsWith("bin/") ? "bin" : folderOf(s.path);
      for (const target of s.imports) {
        const folder = folderOf(target);
        if (folder === own || rule.to.includes(folder)) continue;
        broken.push(`${s.path} imports ${target} (${rule.why})`);
      }
    }
    expect(broken).toEqual([]);
  });

  it("nothing outside the tests imports the tests", () => {
    const broken = sources.flatMap((s) =>
      s.imports.filter((t) => t.startsWith("test/")).map((t) => `${s.path} imports ${t}`),
    );
    expect(broken).toEqual([]);
  });

  it(`no source file is longer than ${MAX_LINES} lines`, () => {
    const long = sources
      .map((s) => ({ path: s.path, lines: s.text.split("\n").length - (s.text.endsWith("\n") ? 1 : 0) }))
      .filter((s) => s.lines > MAX_LINES)
      .map((s) => `${s.path}: ${s.lines} lines`);
    expect(long).toEqual([]);
  });

  it("the runtime and the machines keep to the injected clock and randomness and never end the process", () => {
    // Comments may name these; code may not. `clock.setTimeout(` is the injected clock.
    const forbidden = [
      /\bDate\.now\(/,
      /\bnew Date\(/,
      /\bMath\.random\(/,
      /\bperformance\.now\(/,
      /(?<![.\w])setTimeout\(/,
      /(?<![.\w])setInterval\(/,
      /\bprocess\.exit\(/,
      /\bprocess\.on\(/,
    ];
    const broken: string[] = [];
    for (const s of sources.filter((s) => /^(actors|machines)\//.test(s.path))) {
      s.text.split("\n").forEach((line, i) => {
        const code = line.replace(/\/\/.*$/, "").replace(/^\s*\*.*$/, "");
        for (const f of forbidden) if (f.test(code)) broken.push(`${s.path}:${i + 1}: ${line.trim()}`);
      });
    }
    expect(broken).toEqual([]);
  });

  it("the rules see a planted violation", () => {
    const planted = read("bin/dvsctl.ts");
    const withRuntime = { ...planted, imports: [...planted.imports, "actors/node.ts"] };
    const rule = MAY_IMPORT.find((r) => r.from.test(withRuntime.path));
    expect(rule?.to.includes(folderOf("actors/node.ts"))).toBe(false);
  });
});
