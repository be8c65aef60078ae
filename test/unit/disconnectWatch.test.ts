// The node part that turns nats-server's DISCONNECT advisories into suspicions
// (actors/node/disconnects.ts), over the simulated network: the advisory is
// published as the server publishes it, and the test reads which nodes the
// part asked membership to probe.
import { afterEach, describe, expect, it } from "vitest";
import { silentLogger } from "../../actors/logger.js";
import { DisconnectWatch } from "../../actors/node/disconnects.js";
import { DISCONNECT_ADVISORY_TYPE, disconnectAdvisorySubject } from "../../protocol/advisories.js";
import type { NodeId } from "../../protocol/messages.js";
import { SimNetwork } from "../../transport/sim/index.js";
import type { Transport } from "../../transport/transport.js";

const QUIET_MS = 200;

/** An advisory as nats-server writes it (fields dvsd does not read left out). */
function advisory(name: string | undefined, reason = "Client Closed"): Uint8Array {
  return new TextEncoder().encode(
    JSON.stringify({
      type: DISCONNECT_ADVISORY_TYPE,
      id: "x",
      timestamp: "2026-12-07T03:21:12.819676788Z",
      server: { name: "dvs-local", id: "N" },
      client: { acc: "DVS", user: "node-2", kind: "Client", ...(name === undefined ? {} : { name }) },
      reason,
    }),
  );
}

let network: SimNetwork;
let watch: DisconnectWatch | undefined;
afterEach(() => watch?.stop());

/** Node 1 of cluster `dvs` watching; returns what it suspected and a connection that speaks for the server. */
function watching(): { suspected: NodeId[]; server: Transport } {
  network = new SimNetwork({ seed: 7 });
  const suspected: NodeId[] = [];
  watch = new DisconnectWatch({
    cluster: "dvs",
    self: 1,
    transport: network.connect("node-1"),
    clock: network.clock,
    logger: silentLogger,
    suspect: (node) => suspected.push(node),
    quietMs: QUIET_MS,
  });
  watch.start();
  return { suspected, server: network.connect("server") };
}

async function publish(server: Transport, body: Uint8Array, account = "DVS"): Promise<void> {
  server.publish(disconnectAdvisorySubject(account), body);
  await network.clock.advance(10);
}

describe("the DISCONNECT advisory watch", () => {
  it("suspects the node of its cluster whose connection closed", async () => {
    const { suspected, server } = watching();
    await publish(server, advisory("dvsd-dvs-2"));
    expect(suspected).toEqual([2]);
  });

  it("ignores its own connection, other clusters' nodes, tools and nameless clients", async () => {
    const { suspected, server } = watching();
    for (const name of [
      "dvsd-dvs-1",
      "dvsd-other-2",
      "dvsd-dvs-2-3",
      "dvsctl-x",
      "dvsd-up-check",
      undefined,
    ]) {
      await publish(server, advisory(name));
    }
    expect(suspected).toEqual([]);
  });

  it("ignores a connection its server closed on the way out: that node moves to another server", async () => {
    const { suspected, server } = watching();
    await publish(server, advisory("dvsd-dvs-2", "Server Shutdown"));
    await publish(server, advisory("dvsd-dvs-3", "Stale Connection"));
    expect(suspected).toEqual([3]);
  });

  it("ignores malformed bodies and carries on", async () => {
    const { suspected, server } = watching();
    await publish(server, new TextEncoder().encode("{not json"));
    await publish(server, new Uint8Array([0xa1, 0x61, 0x78, 0x01]));
    await publish(server, advisory("dvsd-dvs-3"));
    expect(suspected).toEqual([3]);
  });

  it("suspects a node once per quiet period however many advisories name it", async () => {
    const { suspected, server } = watching();
    await publish(server, advisory("dvsd-dvs-2"));
    await publish(server, advisory("dvsd-dvs-2", "Stale Connection"));
    await publish(server, advisory("dvsd-dvs-3"));
    expect(suspected).toEqual([2, 3]);
    await network.clock.advance(QUIET_MS);
    await publish(server, advisory("dvsd-dvs-2"));
    expect(suspected).toEqual([2, 3, 2]);
  });

  it("hears no more once stopped", async () => {
    const { suspected, server } = watching();
    watch?.stop();
    await publish(server, advisory("dvsd-dvs-2"));
    expect(suspected).toEqual([]);
  });
});
