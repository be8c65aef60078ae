// The host's control groups: where the cgroup hierarchies are mounted (v2
// unified, v1 per controller, or both in hybrid mode), and CONTROLLER, the
// state of each controller from the v2 root and the v1 table of /proc/cgroups.
import { join } from "node:path";
import type { HostContext } from "./context.js";
import { exists, listSubdirs, readText } from "./hostFiles.js";
import { cut, type Listing } from "./listing.js";

/** Where the hierarchies are: the v2 root (the cgroup root itself, or its `unified` in hybrid mode) and the v1 ones. */
export interface CgroupLayout {
  readonly v2Root: string | null;
  /** v1 hierarchy directories by name (`memory`, `cpu,cpuacct`, `systemd`). */
  readonly v1Roots: ReadonlyMap<string, string>;
}

export async function cgroupLayout(cgroupRoot: string): Promise<CgroupLayout> {
  if (await exists(join(cgroupRoot, "cgroup.controllers"))) return { v2Root: cgroupRoot, v1Roots: new Map() };
  const unified = join(cgroupRoot, "unified");
  const v2Root = (await exists(join(unified, "cgroup.controllers"))) ? unified : null;
  const v1Roots = new Map<string, string>();
  for (const name of await listSubdirs(cgroupRoot)) {
    const dir = join(cgroupRoot, name);
    if (dir !== v2Root && (await exists(join(dir, "cgroup.procs")))) v1Roots.set(name, dir);
  }
  return { v2Root, v1Roots };
}

/** A row of /proc/cgroups. */
export interface V1Controller {
  readonly name: string;
  /** The v1 hierarchy it is attached to; 0 when none (unused, or on v2). */
  readonly hierarchy: number;
  readonly cgroups: number;
  readonly enabled: boolean;
}

/** /proc/cgroups: `#subsys_name hierarchy num_cgroups enabled`. */
export function parseProcCgroups(text: string): V1Controller[] {
  const out: V1Controller[] = [];
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const [name, hierarchy, cgroups, enabled] = line.trim().split(/\s+/);
    if (!name || hierarchy === undefined || cgroups === undefined || enabled === undefined) continue;
    out.push({ name, hierarchy: Number(hierarchy), cgroups: Number(cgroups), enabled: enabled === "1" });
  }
  return out;
}

/** One row of CONTROLLER. The v1 fields are null when /proc/cgroups does not list the controller. */
export interface ControllerEntry {
  readonly name: string;
  /** Where it is in use: on the v2 hierarchy, on a v1 hierarchy of its own, or neither. */
  readonly mode: "v2" | "v1" | "none";
  /** In the v2 root's cgroup.controllers: the unified hierarchy may use it. */
  readonly v2Available: boolean;
  /** In the v2 root's cgroup.subtree_control: enabled for the root's children. */
  readonly v2Enabled: boolean;
  readonly hierarchy: number | null;
  readonly cgroups: number | null;
  readonly enabled: boolean | null;
}

/** The controllers of /proc/cgroups and of the v2 root, in one row each, by name. */
export function controllerEntries(
  v1: readonly V1Controller[],
  v2Available: readonly string[],
  v2Enabled: readonly string[],
): ControllerEntry[] {
  const names = [...new Set([...v1.map((c) => c.name), ...v2Available])].sort();
  return names.map((name) => {
    const row = v1.find((c) => c.name === name);
    const available = v2Available.includes(name);
    return {
      name,
      mode: available ? "v2" : row && row.hierarchy > 0 ? "v1" : "none",
      v2Available: available,
      v2Enabled: v2Enabled.includes(name),
      hierarchy: row?.hierarchy ?? null,
      cgroups: row?.cgroups ?? null,
      enabled: row?.enabled ?? null,
    };
  });
}

export async function listControllers(ctx: HostContext): Promise<Listing<ControllerEntry>> {
  const layout = await cgroupLayout(ctx.cgroupRoot);
  const words = async (file: string) =>
    layout.v2Root === null
      ? []
      : ((await readText(join(layout.v2Root, file)))?.split(/\s+/).filter(Boolean) ?? []);
  const [table, available, enabled] = await Promise.all([
    readText(join(ctx.procRoot, "cgroups")),
    words("cgroup.controllers"),
    words("cgroup.subtree_control"),
  ]);
  const entries = controllerEntries(parseProcCgroups(table ?? ""), available, enabled);
  return cut(entries, entries.length);
}
