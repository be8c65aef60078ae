#!/usr/bin/env node
// Completes package-lock.json with entries for platform-specific optional
// packages that the registry reachable here does not serve (other OSes' and
// CPUs' binaries of biome and cbor-extract). Without them `npm ci` refuses the
// lock as out of sync; with them it skips those packages as optional.
// Run after any `npm install` that rewrites the lock: `node scripts/lock-optional.mjs`.
import { readFileSync, writeFileSync } from "node:fs";

const path = new URL("../package-lock.json", import.meta.url);
const lock = JSON.parse(readFileSync(path, "utf8"));
const packages = lock.packages;
const platform = (name) => {
  const m =
    /(android|darwin|linux|win32|freebsd|openbsd|sunos|aix)-(arm64|x64|arm|ia32|s390x|ppc64|riscv64|loong64)(-(musl|gnu))?$/.exec(
      name,
    );
  return m
    ? { os: [m[1]], cpu: [m[2]], ...(m[4] ? { libc: [m[4] === "musl" ? "musl" : "glibc"] } : {}) }
    : {};
};
let added = 0;
for (const [key, pkg] of Object.entries(packages)) {
  for (const [dep, version] of Object.entries(pkg.optionalDependencies ?? {})) {
    const base = key === "" ? "node_modules" : `${key}/node_modules`;
    const candidates = [`${base}/${dep}`, `node_modules/${dep}`];
    if (candidates.some((c) => packages[c])) continue;
    const scoped = dep.startsWith("@") ? dep.split("/")[1] : dep;
    packages[`node_modules/${dep}`] = {
      version,
      resolved: `https://registry.npmjs.org/${dep}/-/${scoped}-${version}.tgz`,
      optional: true,
      ...platform(dep),
    };
    added++;
  }
}
const sorted = Object.fromEntries(
  Object.entries(packages).sort(([a], [b]) => (a === "" ? -1 : b === "" ? 1 : a.localeCompare(b))),
);
lock.packages = sorted;
writeFileSync(path, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`lock-optional: added ${added} optional platform entries`);
