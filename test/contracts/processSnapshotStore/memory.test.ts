// The ProcessSnapshotStore contract against the in-memory store.
import { MemorySnapshotStore } from "../../../actors/processes/processStore.js";
import { processSnapshotStoreContract } from "./contract.js";

processSnapshotStoreContract("memory snapshot store", () => new MemorySnapshotStore());
