// CONTAINER: the containers on the host, found without needing any runtime:
// by their cgroups (docker, podman, containerd, CRI-O, LXC, systemd-machined),
// then named and given their state by docker's socket and podman's CLI when
// those exist; and whether this dvsd itself runs inside a container.
import { access, constants } from "node:fs/promises";
import { delimiter, join } from "node:path";
import type { Params } from "../../protocol/messages.js";
import { cgroupLayout } from "./cgroups.js";
import { childEnvironment } from "./childEnvironment.js";
import { runProgram } from "./command.js";
import { type HostContext, isLiveProc } from "./context.js";
import { PROBE_DEADLINE_MS, probe, probedValue } from "./deadline.js";
import { exists, listSubdirs, readText } from "./hostFiles.js";
import { cut, type Listing } from "./listing.js";
import { systemInformation } from "./systemInfo.js";

export const CONTAINER_DEFAULT_LIMIT = 500;
/** The cgroup scan stops after this many directories or this depth: enough for thousands of containers. */
const SCAN_MAX_DIRS = 20_000;
const SCAN_MAX_DEPTH = 8;

export type ContainerRuntime = "docker" | "podman" | "containerd" | "cri-o" | "lxc" | "machined" | "unknown";
export type ContainerSource = "cgroup" | "docker" | "podman" | "self";

/** One row of CONTAINER. */
export interface ContainerEntry {
  /** The runtime's id (64 hex digits for docker, podman, containerd, CRI-O); null when only a name is known. */
  readonly id: string | null;
  readonly name: string | null;
  readonly runtime: ContainerRuntime;
  /** The runtime's word (running, exited, …); `running` for a cgroup with processes. */
  readonly state: string | null;
  readonly image: string | null;
  /** Its cgroup, below the cgroup root. */
  readonly cgroup: string | null;
  /** Processes in its cgroup. */
  readonly pids: number | null;
  /** This dvsd runs inside it. */
  readonly self: boolean;
  /** How it was found. */
  readonly sources: readonly ContainerSource[];
}

const HEX64 = "([0-9a-f]{64})";

/** What a cgroup directory's name (and its parent's) says about a container in it. */
export function containerOfCgroup(
  name: string,
  parent: string,
): { runtime: ContainerRuntime; id: string | null; name: string | null } | undefined {
  const id = (runtime: ContainerRuntime, re: RegExp) => {
    const m = re.exec(name);
    return m?.[1] ? { runtime, id: m[1], name: null } : undefined;
  };
  if (name.includes("conmon")) return undefined; // podman's and CRI-O's monitor, not the container
  const found =
    id("docker", new RegExp(`^docker-${HEX64}\\.scope$`)) ??
    id("podman", new RegExp(`^libpod-${HEX64}(?:\\.scope)?$`)) ??
    id("containerd", new RegExp(`^cri-containerd-${HEX64}\\.scope$`)) ??
    id("cri-o", new RegExp(`^crio-${HEX64}(?:\\.scope)?$`));
  if (found) return found;
  // cgroupfs drivers: /docker/<id>, /kubepods/<qos>/pod<uid>/<id>.
  if (new RegExp(`^${HEX64}$`).test(name)) {
    if (parent === "docker") return { runtime: "docker", id: name, name: null };
    if (/^pod[0-9a-f_-]+$/.test(parent)) return { runtime: "unknown", id: name, name: null };
  }
  const lxc = /^lxc\.payload\.(.+)$/.exec(name);
  if (lxc?.[1]) return { runtime: "lxc", id: null, name: lxc[1] };
  const machine = /^machine-(.+)\.scope$/.exec(name);
  if (parent === "machine.slice" && machine?.[1])
    return { runtime: "machined", id: null, name: unescapeSystemd(machine[1]) };
  return undefined;
}

/** systemd unit names escape `-` and other bytes as `\x2d`. */
function unescapeSystemd(text: string): string {
  return text.replace(/\\x([0-9a-f]{2})/gi, (_, hex: string) =>
    String.fromCharCode(Number.parseInt(hex, 16)),
  );
}

/** The files that tell whether a process runs in a container. */
export interface SelfFacts {
  /** /.dockerenv exists. */
  readonly dockerenv: boolean;
  /** /run/.containerenv (podman writes name= and id= into it). */
  readonly containerenv: string | undefined;
  /** /proc/1/cgroup and /proc/self/cgroup. */
  readonly initCgroup: string | undefined;
  readonly selfCgroup: string | undefined;
  /** /proc/self/mountinfo: docker and podman bind files from the container's own directory. */
  readonly mountinfo: string | undefined;
  /** /proc/1/environ, readable by root: `container=lxc` and the like. */
  readonly initEnviron: string | undefined;
}

/** The container this process runs in, if the facts show one. */
export function selfContainer(facts: SelfFacts): ContainerEntry | undefined {
  const cgroups = `${facts.initCgroup ?? ""}\n${facts.selfCgroup ?? ""}`;
  const runtime = runtimeOfSelf(facts, cgroups);
  if (runtime === undefined) return undefined;
  const env = (key: string) => new RegExp(`^${key}="?([^"\\n]*)"?$`, "m").exec(facts.containerenv ?? "")?.[1];
  const id =
    env("id") ||
    new RegExp(HEX64).exec(cgroups)?.[1] ||
    new RegExp(`/(?:docker/containers|overlay-containers)/${HEX64}/`).exec(facts.mountinfo ?? "")?.[1] ||
    null;
  return {
    id,
    name: env("name") || null,
    runtime,
    state: "running",
    image: env("image") || null,
    cgroup: null,
    pids: null,
    self: true,
    sources: ["self"],
  };
}

/** Which runtime started this process's container, by the first sign found. */
function runtimeOfSelf(facts: SelfFacts, cgroups: string): ContainerRuntime | undefined {
  const envContainer = /(?:^|\0)container=([^\0]+)/.exec(facts.initEnviron ?? "")?.[1];
  if (facts.containerenv !== undefined || /libpod/.test(cgroups)) return "podman";
  if (facts.dockerenv || /\/docker[-/]/.test(cgroups)) return "docker";
  if (/cri-containerd/.test(cgroups)) return "containerd";
  if (/crio-/.test(cgroups)) return "cri-o";
  if (/lxc\.payload|\/lxc\//.test(cgroups) || envContainer === "lxc") return "lxc";
  if (envContainer === "systemd-nspawn") return "machined";
  if (envContainer === "docker" || envContainer === "podman") return envContainer;
  if (/kubepods/.test(cgroups) || envContainer !== undefined) return "unknown";
  return undefined;
}

export async function listContainers(
  ctx: HostContext,
  params: Params<"CONTAINER">,
): Promise<Listing<ContainerEntry>> {
  const [scanned, self, docker, podman] = await Promise.all([
    scanCgroups(ctx),
    readSelfFacts(ctx.procRoot).then(selfContainer),
    isLiveProc(ctx) ? dockerContainers(ctx) : [],
    isLiveProc(ctx) ? podmanContainers(ctx) : [],
  ]);
  const merged = mergeContainers([...(self ? [self] : []), ...scanned, ...docker, ...podman]);
  return cut(merged, params.limit ?? CONTAINER_DEFAULT_LIMIT);
}

/** One row per container: rows with the same id (or, without ids, runtime and name) are combined. */
export function mergeContainers(found: readonly ContainerEntry[]): ContainerEntry[] {
  const byKey = new Map<string, ContainerEntry>();
  for (const c of found) {
    const key = c.id ?? `${c.runtime}:${c.name ?? ""}:${c.cgroup ?? ""}`;
    const had = byKey.get(key);
    if (!had) {
      byKey.set(key, c);
      continue;
    }
    byKey.set(key, {
      id: had.id ?? c.id,
      name: had.name ?? c.name,
      // A runtime's own answer is better than a cgroup's guess.
      runtime: had.runtime === "unknown" ? c.runtime : had.runtime,
      state: c.sources.includes("cgroup") ? (had.state ?? c.state) : (c.state ?? had.state),
      image: had.image ?? c.image,
      cgroup: had.cgroup ?? c.cgroup,
      pids: had.pids ?? c.pids,
      self: had.self || c.self,
      sources: [...new Set([...had.sources, ...c.sources])],
    });
  }
  return [...byKey.values()].sort(
    (a, b) =>
      Number(b.self) - Number(a.self) ||
      a.runtime.localeCompare(b.runtime) ||
      (a.name ?? a.id ?? "").localeCompare(b.name ?? b.id ?? ""),
  );
}

/**
 * Walks the v2 hierarchy and one v1 hierarchy (systemd, pids or memory: each
 * v1 hierarchy repeats the same tree), breadth first, not entering a
 * container's own cgroup.
 */
async function scanCgroups(ctx: HostContext): Promise<ContainerEntry[]> {
  const layout = await cgroupLayout(ctx.cgroupRoot);
  const v1 = ["systemd", "pids", "memory"].map((n) => layout.v1Roots.get(n)).find(Boolean);
  const roots = [layout.v2Root, v1].filter((r): r is string => typeof r === "string");
  const found: ContainerEntry[] = [];
  let visited = 0;
  const deadline = ctx.clock.now() + PROBE_DEADLINE_MS;
  for (const root of roots) {
    let level = [""];
    for (let depth = 0; depth < SCAN_MAX_DEPTH && level.length > 0; depth++) {
      const next: string[] = [];
      const children = await Promise.all(
        level.map(async (rel) => ({ rel, subdirs: await listSubdirs(join(root, rel)) })),
      );
      for (const { rel, subdirs } of children) {
        const parent = rel.split("/").pop() ?? "";
        for (const name of subdirs) {
          const path = rel ? `${rel}/${name}` : name;
          const container = containerOfCgroup(name, parent);
          if (container) found.push({ ...container, ...(await cgroupFacts(root, path)) });
          else next.push(path);
        }
      }
      visited += next.length;
      if (visited > SCAN_MAX_DIRS || ctx.clock.now() > deadline) {
        ctx.logger.warn({ root, visited }, "cgroup scan stopped early: too many cgroups, or too slow");
        break;
      }
      level = next;
    }
  }
  return found;
}

async function cgroupFacts(root: string, path: string) {
  const procs = await readText(join(root, path, "cgroup.procs"));
  const pids = procs === undefined ? null : procs.split("\n").filter(Boolean).length;
  return {
    state: pids ? "running" : null,
    image: null,
    cgroup: `/${path}`,
    pids,
    self: false,
    sources: ["cgroup"] as ContainerSource[],
  };
}

async function readSelfFacts(procRoot: string): Promise<SelfFacts> {
  const [dockerenv, containerenv, initCgroup, selfCgroup, mountinfo, initEnviron] = await Promise.all([
    exists("/.dockerenv"),
    readText("/run/.containerenv"),
    readText(join(procRoot, "1", "cgroup")),
    readText(join(procRoot, "self", "cgroup")),
    readText(join(procRoot, "self", "mountinfo")),
    readText(join(procRoot, "1", "environ")),
  ]);
  return { dockerenv, containerenv, initCgroup, selfCgroup, mountinfo, initEnviron };
}

/** Docker's own list, when its socket is there (systeminformation speaks the API on it). */
async function dockerContainers(ctx: HostContext): Promise<ContainerEntry[]> {
  const socket = process.env.DOCKER_SOCKET ?? "/var/run/docker.sock";
  if (!(await exists(socket))) return [];
  const listed =
    probedValue(
      await probe(ctx.clock, PROBE_DEADLINE_MS, async () =>
        (await systemInformation()).dockerContainers(true),
      ),
    ) ?? [];
  return listed.map((c) => ({
    id: c.id || null,
    name: c.name || null,
    runtime: "docker",
    state: c.state || null,
    image: c.image || null,
    cgroup: null,
    pids: null,
    self: false,
    sources: ["docker"],
  }));
}

/** podman's list, when podman is on PATH (`podman ps --all --format json`). */
async function podmanContainers(ctx: HostContext): Promise<ContainerEntry[]> {
  const podman = await findOnPath("podman");
  if (!podman) return [];
  try {
    const run = await runProgram([podman, "ps", "--all", "--format", "json"], {
      clock: ctx.clock,
      timeoutMs: PROBE_DEADLINE_MS,
      maxOutputBytes: 8 * 1024 * 1024,
      killGraceMs: 200,
      // Rootless podman finds its storage and runtime directory through these; nothing else is passed.
      env: childEnvironment(pick(process.env, ["HOME", "XDG_RUNTIME_DIR"])),
    });
    if (run.exitCode !== 0 || run.stdoutTruncated) return [];
    return parsePodmanPs(run.stdout);
  } catch (error) {
    ctx.logger.debug({ err: error }, "podman ps failed");
    return [];
  }
}

/** The variables of `env` named in `names` that are set. */
function pick(env: NodeJS.ProcessEnv, names: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of names) {
    const value = env[name];
    if (value !== undefined) out[name] = value;
  }
  return out;
}

/** `podman ps --format json`: an array of { Id, Names, Image, State }. */
export function parsePodmanPs(text: string): ContainerEntry[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return [];
  }
  if (!Array.isArray(parsed)) return [];
  return parsed.flatMap((c: Record<string, unknown>): ContainerEntry[] => {
    if (typeof c !== "object" || c === null) return [];
    const str = (v: unknown) => (typeof v === "string" && v ? v : null);
    const names = Array.isArray(c.Names) ? c.Names : [];
    return [
      {
        id: str(c.Id),
        name: str(names[0]),
        runtime: "podman",
        state: str(c.State),
        image: str(c.Image),
        cgroup: null,
        pids: null,
        self: false,
        sources: ["podman"],
      },
    ];
  });
}

/** The first executable named `name` in a PATH directory. */
async function findOnPath(name: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? "").split(delimiter).filter(Boolean)) {
    const candidate = join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}
