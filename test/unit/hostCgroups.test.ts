import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { type ControllerEntry, controllerEntries, parseProcCgroups } from "../../daemon/host/cgroups.js";
import {
  type ContainerEntry,
  containerOfCgroup,
  mergeContainers,
  parsePodmanPs,
  type SelfFacts,
  selfContainer,
} from "../../daemon/host/containers.js";
import { hostHandlers as handlers, succeeded as ok, hostRqst as rqst } from "../support/hostHandlers.js";

const ID = (c: string) => c.repeat(64);

/** A cgroup v2 tree (and a /proc beside it) with one container of each runtime the scan knows. */
function fakeHost(): { cgroupRoot: string; procRoot: string } {
  const base = mkdtempSync(join(tmpdir(), "dvs-cgroup-"));
  const cgroupRoot = join(base, "cgroup");
  const dir = (path: string, procs?: string) => {
    mkdirSync(join(cgroupRoot, path), { recursive: true });
    if (procs !== undefined) writeFileSync(join(cgroupRoot, path, "cgroup.procs"), procs);
  };
  dir("");
  writeFileSync(join(cgroupRoot, "cgroup.controllers"), "cpuset cpu io memory pids\n");
  writeFileSync(join(cgroupRoot, "cgroup.subtree_control"), "cpu memory pids\n");
  dir(`system.slice/docker-${ID("a")}.scope`, "101\n102\n");
  dir(`system.slice/docker-${ID("a")}.scope/inner`, "");
  dir(`machine.slice/libpod-${ID("b")}.scope`, "201\n");
  dir(`machine.slice/libpod-conmon-${ID("b")}.scope`, "200\n");
  dir("machine.slice/machine-web\\x2d1.scope", "301\n");
  dir("lxc.payload.db", "");
  dir(
    `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-${ID("c")}.scope`,
    "401\n",
  );
  dir("user.slice/user-1000.slice", "501\n");
  const procRoot = join(base, "proc");
  mkdirSync(procRoot);
  writeFileSync(
    join(procRoot, "cgroups"),
    "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t0\t5\t1\nnet_cls\t3\t1\t1\n",
  );
  return { cgroupRoot, procRoot };
}

describe("CONTROLLER", () => {
  it("reads the v1 table of /proc/cgroups", () => {
    expect(
      parseProcCgroups("#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpuset\t3\t1\t1\nrdma\t0\t1\t0\n"),
    ).toEqual([
      { name: "cpuset", hierarchy: 3, cgroups: 1, enabled: true },
      { name: "rdma", hierarchy: 0, cgroups: 1, enabled: false },
    ]);
  });

  it("gives one row per controller, saying whether it is on v2, on v1 or unused", () => {
    const rows = controllerEntries(
      [
        { name: "cpu", hierarchy: 0, cgroups: 5, enabled: true },
        { name: "net_cls", hierarchy: 3, cgroups: 1, enabled: true },
        { name: "rdma", hierarchy: 0, cgroups: 1, enabled: true },
      ],
      ["cpu", "misc"],
      ["cpu"],
    );
    expect(rows.map((r) => [r.name, r.mode, r.v2Enabled])).toEqual([
      ["cpu", "v2", true],
      ["misc", "v2", false],
      ["net_cls", "v1", false],
      ["rdma", "none", false],
    ]);
    expect(rows.find((r) => r.name === "misc")).toMatchObject({
      hierarchy: null,
      cgroups: null,
      enabled: null,
    });
  });

  it("describes this host's controllers in the documented shape", async () => {
    const out = ok<ControllerEntry[]>(await handlers().CONTROLLER(rqst("CONTROLLER")));
    expect(out.rcode).toBe(out.data.length);
    for (const c of out.data) {
      expect(Object.keys(c).sort()).toEqual(
        ["cgroups", "enabled", "hierarchy", "mode", "name", "v2Available", "v2Enabled"].sort(),
      );
      expect(["v1", "v2", "none"]).toContain(c.mode);
    }
  });

  it("reads the v2 root of a fixture tree together with its /proc/cgroups", async () => {
    const out = ok<ControllerEntry[]>(await handlers(fakeHost()).CONTROLLER(rqst("CONTROLLER")));
    expect(out.data.map((c) => `${c.name}:${c.mode}:${c.v2Enabled}`)).toEqual([
      "cpu:v2:true",
      "cpuset:v2:false",
      "io:v2:false",
      "memory:v2:true",
      "net_cls:v1:false",
      "pids:v2:true",
    ]);
  });
});

describe("CONTAINER", () => {
  it("recognises the cgroup names of each runtime and nothing else", () => {
    expect(containerOfCgroup(`docker-${ID("a")}.scope`, "system.slice")).toEqual({
      runtime: "docker",
      id: ID("a"),
      name: null,
    });
    expect(containerOfCgroup(ID("a"), "docker")).toMatchObject({ runtime: "docker" });
    expect(containerOfCgroup(`libpod-${ID("b")}.scope`, "machine.slice")).toMatchObject({
      runtime: "podman",
    });
    expect(containerOfCgroup(`libpod-conmon-${ID("b")}.scope`, "machine.slice")).toBeUndefined();
    expect(containerOfCgroup(`crio-${ID("d")}.scope`, "x")).toMatchObject({ runtime: "cri-o" });
    expect(containerOfCgroup("lxc.payload.web", "")).toEqual({ runtime: "lxc", id: null, name: "web" });
    expect(containerOfCgroup("machine-vm\\x2d1.scope", "machine.slice")).toEqual({
      runtime: "machined",
      id: null,
      name: "vm-1",
    });
    expect(containerOfCgroup("session-3.scope", "user-1000.slice")).toBeUndefined();
    expect(containerOfCgroup(ID("a"), "system.slice")).toBeUndefined();
  });

  it("finds the containers of a cgroup tree with their process counts", async () => {
    const out = ok<ContainerEntry[]>(await handlers(fakeHost()).CONTAINER(rqst("CONTAINER")));
    const found = out.data.filter((c) => !c.self);
    expect(found.map((c) => [c.runtime, c.id?.slice(0, 3) ?? c.name, c.pids, c.state])).toEqual([
      ["containerd", "ccc", 1, "running"],
      ["docker", "aaa", 2, "running"],
      ["lxc", "db", 0, null],
      ["machined", "web-1", 1, "running"],
      ["podman", "bbb", 1, "running"],
    ]);
    expect(found.find((c) => c.runtime === "docker")).toMatchObject({
      cgroup: `/system.slice/docker-${ID("a")}.scope`,
      sources: ["cgroup"],
      self: false,
    });
  });

  it("answers a list of the documented shape on this host, empty when there is nothing", async () => {
    const out = ok<ContainerEntry[]>(await handlers().CONTAINER(rqst("CONTAINER")));
    expect(Array.isArray(out.data)).toBe(true);
    for (const c of out.data)
      expect(Object.keys(c).sort()).toEqual(
        ["cgroup", "id", "image", "name", "pids", "runtime", "self", "sources", "state"].sort(),
      );
  });

  it("tells from marker files and cgroups which runtime this process runs in", () => {
    const none: SelfFacts = {
      dockerenv: false,
      containerenv: undefined,
      initCgroup: "0::/init.scope\n",
      selfCgroup: "0::/user.slice/user-1000.slice/session-2.scope\n",
      mountinfo: "",
      initEnviron: undefined,
    };
    expect(selfContainer(none)).toBeUndefined();
    expect(
      selfContainer({
        ...none,
        dockerenv: true,
        mountinfo: `... /var/lib/docker/containers/${ID("e")}/hostname /etc/hostname`,
      }),
    ).toMatchObject({
      runtime: "docker",
      id: ID("e"),
      self: true,
      sources: ["self"],
    });
    expect(
      selfContainer({ ...none, containerenv: `engine="podman-4.3"\nname="web"\nid="${ID("f")}"\n` }),
    ).toMatchObject({
      runtime: "podman",
      name: "web",
      id: ID("f"),
    });
    expect(selfContainer({ ...none, initEnviron: "PATH=/bin\0container=lxc\0" })).toMatchObject({
      runtime: "lxc",
    });
    expect(selfContainer({ ...none, selfCgroup: `0::/kubepods/besteffort/pod1/${ID("9")}\n` })).toMatchObject(
      {
        runtime: "unknown",
        id: ID("9"),
      },
    );
  });

  it("merges what the cgroup scan and a runtime say about the same container", () => {
    const fromCgroup: ContainerEntry = {
      id: ID("a"),
      name: null,
      runtime: "docker",
      state: "running",
      image: null,
      cgroup: "/system.slice/x.scope",
      pids: 2,
      self: false,
      sources: ["cgroup"],
    };
    const fromDocker: ContainerEntry = {
      ...fromCgroup,
      name: "web",
      state: "paused",
      image: "nginx",
      cgroup: null,
      pids: null,
      sources: ["docker"],
    };
    expect(mergeContainers([fromCgroup, fromDocker])).toEqual([
      { ...fromCgroup, name: "web", state: "paused", image: "nginx", sources: ["cgroup", "docker"] },
    ]);
  });

  it("reads podman's JSON list and ignores anything else", () => {
    const json = JSON.stringify([{ Id: ID("b"), Names: ["db"], Image: "postgres:16", State: "running" }]);
    expect(parsePodmanPs(json)).toEqual([
      expect.objectContaining({
        id: ID("b"),
        name: "db",
        image: "postgres:16",
        state: "running",
        runtime: "podman",
      }),
    ]);
    expect(parsePodmanPs("not json")).toEqual([]);
    expect(parsePodmanPs("{}")).toEqual([]);
  });
});
