// The host's filesystems: DF (size and use of each mounted local filesystem,
// from systeminformation's df) and MOUNT (the mount table of the daemon's
// mount namespace, parsed from /proc/self/mounts).
import { statfs } from "node:fs/promises";
import { join } from "node:path";
import type { Params } from "../../protocol/messages.js";
import { type HostContext, isLiveProc } from "./context.js";
import { PROBE_DEADLINE_MS, probe, probedValue } from "./deadline.js";
import { readText } from "./hostFiles.js";
import { cut, type Listing, round } from "./listing.js";
import { shared } from "./sharedProbes.js";
import { systemInformation } from "./systemInfo.js";

export const DF_DEFAULT_LIMIT = 500;
export const MOUNT_DEFAULT_LIMIT = 500;

/** One row of DF. Sizes are bytes. */
export interface FilesystemEntry {
  /** The device or source (`/dev/sda1`, `overlay`, `tmpfs`). */
  readonly filesystem: string;
  readonly type: string;
  readonly mount: string;
  readonly size: number;
  readonly used: number;
  /** Free space an unprivileged user may take (blocks reserved for root excluded). */
  readonly available: number;
  /** used / (used + available), in percent, as df computes it. */
  readonly usePercent: number;
  readonly readOnly: boolean | null;
}

/** One row of MOUNT: a line of /proc/self/mounts. */
export interface MountEntry {
  readonly source: string;
  readonly target: string;
  readonly fstype: string;
  /** Mount options, in the kernel's order (`rw`, `relatime`, `size=…`). */
  readonly options: readonly string[];
}

/** /proc/<pid>/mounts (fstab format); `\040`-style escapes in paths are decoded. */
export function parseMounts(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split("\n")) {
    const [source, target, fstype, options] = line.trim().split(/\s+/);
    if (!source || !target || !fstype) continue;
    out.push({
      source: unescapeOctal(source),
      target: unescapeOctal(target),
      fstype,
      options: options ? options.split(",") : [],
    });
  }
  return out;
}

/** The kernel writes space, tab, newline and backslash in paths as \040, \011, \012, \134. */
function unescapeOctal(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_, code: string) => String.fromCharCode(Number.parseInt(code, 8)));
}

export async function listMounts(ctx: HostContext, params: Params<"MOUNT">): Promise<Listing<MountEntry>> {
  const text = await readText(join(ctx.procRoot, "self", "mounts"));
  return cut(parseMounts(text ?? ""), params.limit ?? MOUNT_DEFAULT_LIMIT);
}

/** DF: systeminformation's df (local filesystems), or statfs of the mount table where df gives nothing. */
export async function listFilesystems(
  ctx: HostContext,
  params: Params<"DF">,
): Promise<Listing<FilesystemEntry>> {
  let entries: FilesystemEntry[] = [];
  if (isLiveProc(ctx)) {
    const found =
      probedValue(
        await probe(ctx.clock, PROBE_DEADLINE_MS, () =>
          shared(ctx, "si.fsSize", async () => (await systemInformation()).fsSize()),
        ),
      ) ?? [];
    entries = found.map((f) => ({
      filesystem: f.fs,
      type: f.type,
      mount: f.mount,
      size: f.size,
      used: f.used,
      available: f.available,
      usePercent: round(f.use),
      readOnly: f.rw === null ? null : !f.rw,
    }));
  }
  if (entries.length === 0) entries = await filesystemsFromStatfs(ctx);
  return cut(entries, params.limit ?? DF_DEFAULT_LIMIT);
}

/** Kernel and network filesystems df -l leaves out too. */
const NOT_DISKS = new Set([
  "proc",
  "sysfs",
  "devpts",
  "cgroup",
  "cgroup2",
  "mqueue",
  "debugfs",
  "tracefs",
  "securityfs",
  "pstore",
  "bpf",
  "configfs",
  "fusectl",
  "binfmt_misc",
  "autofs",
  "hugetlbfs",
  "rpc_pipefs",
  "nsfs",
  "selinuxfs",
  "efivarfs",
  "nfs",
  "nfs4",
  "cifs",
  "smb3",
  "9p",
]);

async function filesystemsFromStatfs(ctx: HostContext): Promise<FilesystemEntry[]> {
  const text = await readText(join(ctx.procRoot, "self", "mounts"));
  // A later mount on the same target hides the earlier ones.
  const byTarget = new Map<string, MountEntry>();
  for (const m of parseMounts(text ?? "")) {
    if (NOT_DISKS.has(m.fstype) || m.fstype.startsWith("fuse.")) continue;
    byTarget.delete(m.target);
    byTarget.set(m.target, m);
  }
  const found = await Promise.all(
    [...byTarget.values()].map(async (m): Promise<FilesystemEntry | undefined> => {
      try {
        const s = await statfs(m.target);
        const size = s.blocks * s.bsize;
        if (size === 0) return undefined;
        const used = (s.blocks - s.bfree) * s.bsize;
        const available = s.bavail * s.bsize;
        return {
          filesystem: m.source,
          type: m.fstype,
          mount: m.target,
          size,
          used,
          available,
          usePercent: used + available > 0 ? round((used / (used + available)) * 100) : 0,
          readOnly: m.options.includes("ro"),
        };
      } catch {
        return undefined;
      }
    }),
  );
  return found.filter((f): f is FilesystemEntry => f !== undefined);
}
