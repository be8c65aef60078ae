// A holder pulls a REPLICA: READ (protocol/fileRead.ts) into its replica
// store, which checks the hash and makes the version durable.
import { type ReadOptions, readChunks } from "../../protocol/fileRead.js";
import type { ReplicaStore } from "./replicaStore.js";

/** REPLICA: pulls a version into `replicas`, which checks the hash and makes it durable; nothing is kept on failure. */
export async function pullReplica(options: ReadOptions & { readonly replicas: ReplicaStore }): Promise<void> {
  const writer = await options.replicas.create(options.identity);
  try {
    await readChunks(options, (offset, data) => writer.write(offset, data));
    await writer.finish();
  } catch (e) {
    await writer.abort().catch(() => {});
    throw e;
  }
}
