import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { type FilesystemEntry, type MountEntry, parseMounts } from "../../daemon/host/filesystems.js";
import { hostHandlers as handlers, succeeded as ok, hostRqst as rqst } from "../support/hostHandlers.js";

const MOUNTS = `/dev/sda1 / ext4 rw,relatime,errors=remount-ro 0 0
proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
/dev/sdb1 /mnt/my\\040disk\\011tab vfat ro,noatime 0 0
tmpfs /run tmpfs rw,nosuid,nodev,size=1638400k,mode=755 0 0
`;

describe("MOUNT", () => {
  it("parses the mount table into source, target, type and options, decoding escaped paths", () => {
    const mounts = parseMounts(MOUNTS);
    expect(mounts).toHaveLength(4);
    expect(mounts[0]).toEqual({
      source: "/dev/sda1",
      target: "/",
      fstype: "ext4",
      options: ["rw", "relatime", "errors=remount-ro"],
    });
    expect(mounts[2]).toMatchObject({
      target: "/mnt/my disk\ttab",
      fstype: "vfat",
      options: ["ro", "noatime"],
    });
  });

  it("lists this host's mounts, / and /proc among them", async () => {
    const out = ok<MountEntry[]>(await handlers().MOUNT(rqst("MOUNT", { limit: 5000 })));
    expect(out.rcode).toBe(out.data.length);
    const targets = out.data.map((m) => m.target);
    expect(targets).toContain("/");
    expect(out.data.find((m) => m.target === "/proc")?.fstype).toBe("proc");
  });

  it("cuts the table at the limit and says in rcode how many mounts there are", async () => {
    const out = ok<MountEntry[]>(await handlers().MOUNT(rqst("MOUNT", { limit: 1 })));
    expect(out.data).toHaveLength(1);
    expect(out.rcode).toBeGreaterThan(1);
  });
});

describe("DF", () => {
  it("reports the filesystem of / with its size, use and free space in bytes", async () => {
    const out = ok<FilesystemEntry[]>(await handlers().DF(rqst("DF")));
    const root = out.data.find((f) => f.mount === "/");
    expect(root).toBeDefined();
    expect(root?.size).toBeGreaterThan(0);
    expect(root?.used).toBeGreaterThan(0);
    expect(root?.available).toBeGreaterThanOrEqual(0);
    expect(root?.usePercent).toBeGreaterThan(0);
    expect(root?.usePercent).toBeLessThanOrEqual(100);
  });

  it("falls back to statfs of the mount table, skipping kernel filesystems", async () => {
    const procRoot = mkdtempSync(join(tmpdir(), "dvs-proc-"));
    mkdirSync(join(procRoot, "self"));
    writeFileSync(join(procRoot, "self", "mounts"), "/dev/root / ext4 rw 0 0\nproc /proc proc rw 0 0\n");
    const out = ok<FilesystemEntry[]>(await handlers({ procRoot }).DF(rqst("DF")));
    expect(out.data).toEqual([
      expect.objectContaining({ filesystem: "/dev/root", type: "ext4", mount: "/", readOnly: false }),
    ]);
    expect(out.data[0]?.size).toBeGreaterThan(0);
  });
});
