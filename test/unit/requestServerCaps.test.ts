// What a requester may ask of the node that takes its request: the gather or
// forward timeout it names is cut to its role's cap before anything waits on it.
import { describe, expect, it } from "vitest";
import { silentLogger } from "../../actors/logger.js";
import type { ReplicationServer } from "../../actors/replication.js";
import { DEFAULT_MAX_TIMEOUT_MS, RequestServer } from "../../actors/requestServer.js";
import { DvsClient } from "../../client/dvsClient.js";
import { makeRply } from "../../protocol/codec.js";
import type { Rqst } from "../../protocol/messages.js";
import { subjects } from "../../protocol/subjects.js";
import { SimNetwork } from "../../transport/sim/index.js";

function serverWithReplication() {
  const network = new SimNetwork({ seed: 5, trace: false });
  const asked: { how: string; timeout: number | undefined }[] = [];
  // Records what the replication server would be asked to wait for, and answers at once.
  const replication = {
    gather: async (rqst: Rqst) => {
      asked.push({ how: "gather", timeout: rqst.timeout });
      return makeRply(rqst, 1, 0, []);
    },
    forward: async (rqst: Rqst) => {
      asked.push({ how: "forward", timeout: rqst.timeout });
      return makeRply(rqst, 2, 0, null);
    },
  } as unknown as ReplicationServer;
  const server = new RequestServer({
    node: 1,
    subjects: subjects("dvs"),
    transport: network.connect("node-1"),
    clock: network.clock,
    logger: silentLogger,
    handlers: {},
    replication,
  });
  server.start();
  const stop = network.clock.autoRun();
  return { network, asked, stop };
}

describe("timeouts a requester may set", () => {
  it("a viewer's 600 s gather or forward timeout is cut to 30 s, an admin's to 120 s", async () => {
    const { network, asked, stop } = serverWithReplication();
    try {
      const viewer = new DvsClient(network.connect("v"), { cluster: "dvs", clientId: "v", role: "viewer" });
      const admin = new DvsClient(network.connect("a"), { cluster: "dvs", clientId: "a" });
      await viewer.request("GETNODEINFO", {}, { dst: "ALL", gatherTimeoutMs: 600_000 });
      await viewer.request("GETNODEINFO", {}, { dst: 2, viaAnyNode: true, gatherTimeoutMs: 600_000 });
      await admin.request("GETNODEINFO", {}, { dst: "ALL", gatherTimeoutMs: 600_000 });
      await admin.request("GETNODEINFO", {}, { dst: "ALL", gatherTimeoutMs: 5_000 });
      expect(asked).toEqual([
        { how: "gather", timeout: DEFAULT_MAX_TIMEOUT_MS.viewer },
        { how: "forward", timeout: DEFAULT_MAX_TIMEOUT_MS.viewer },
        { how: "gather", timeout: DEFAULT_MAX_TIMEOUT_MS.admin },
        { how: "gather", timeout: 5_000 },
      ]);
      expect(DEFAULT_MAX_TIMEOUT_MS).toEqual({ viewer: 30_000, admin: 120_000 });
    } finally {
      stop();
    }
  });
});
