// The ProcessSnapshotStore contract against records on disk, in a temp dir per test.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach } from "vitest";
import { FileSnapshotStore } from "../../../actors/processes/processStore.js";
import { processSnapshotStoreContract } from "./contract.js";

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "dvsd-procs-"));
  dirs.push(dir);
  return dir;
};

processSnapshotStoreContract(
  "file snapshot store",
  () => new FileSnapshotStore(join(tempDir(), "processes")),
);
