// The coordinator record read back from a real JetStream KV bucket (SPEC 7):
// three in-process node runtimes on a nats-server owned by this file. Whatever
// someone with write access leaves under the `coordinator` key, the next
// election replaces it with a compare-and-set and WHO answers again.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { COORDINATOR_KEY } from "../../actors/election.js";
import { silentLogger } from "../../actors/logger.js";
import type { NodeRuntime } from "../../actors/node.js";
import { DEV_USERS } from "../../client/credentials.js";
import { agreedCoordinator, type Coordinator, RegistryClient } from "../../client/registryClient.js";
import { parseConfig } from "../../daemon/config.js";
import { createNatsNode } from "../../daemon/daemon.js";
import { sleep, systemClock } from "../../transport/clock.js";
import { coordinatorBucketName } from "../../transport/kvJetStream.js";
import type { NatsTransport as Transport } from "../../transport/nats.js";
import { NatsTransport } from "../../transport/nats.js";
import { startTestNatsServer, type TestNatsServer } from "../support/natsServer.js";

const NODES = [1, 2, 3];
const stateDir = mkdtempSync(join(tmpdir(), "dvs-election-kv-"));
let server: TestNatsServer;
let nc: NatsConnection;
let registry: RegistryClient;
const nodes: NodeRuntime<Transport>[] = [];

/** Polls every node's registry until all answer OK with one coordinator that `accept` takes. */
async function agreed(accept: (c: Coordinator) => boolean, timeoutMs = 15_000): Promise<Coordinator> {
  const deadline = performance.now() + timeoutMs;
  let last = "";
  while (performance.now() < deadline) {
    const answers = await Promise.all(NODES.map((n) => registry.who(n).catch((e: Error) => e)));
    last = answers.map((a) => (a instanceof Error ? a.name : JSON.stringify(a))).join("; ");
    const agreement = agreedCoordinator(answers);
    if (agreement !== undefined && accept(agreement)) return agreement;
    await sleep(systemClock, 50);
  }
  throw new Error(`the registries did not agree on an acceptable coordinator in ${timeoutMs} ms: ${last}`);
}

beforeAll(async () => {
  server = await startTestNatsServer();
  nc = await connect({ servers: server.url, ...DEV_USERS.admin });
  registry = new RegistryClient({
    cluster: "dvs",
    transport: new NatsTransport(nc, { name: "election-kv" }),
    clock: systemClock,
    timeoutMs: 500,
  });
  for (const node of NODES) {
    const config = parseConfig({
      node,
      // As admin: this file is about what the store holds, not about the nodes' permissions.
      nats: { servers: [server.url], ...DEV_USERS.admin },
      stateDir: join(stateDir, `n${node}`),
      log: { level: "silent" },
    });
    nodes.push(createNatsNode(config, silentLogger).start());
  }
  await Promise.all(nodes.map((n) => n.running()));
}, 30_000);

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.stop("stop", 3_000).catch(() => {})));
  await nc?.close();
  await server?.stop();
  rmSync(stateDir, { recursive: true, force: true });
});

describe("the coordinator record in JetStream KV", () => {
  it.each([
    ["garbage bytes", new Uint8Array([0xde, 0xad, 0xbe, 0xef])],
    ["a record that fails the schema", new TextEncoder().encode(JSON.stringify({ coordinator: "x" }))],
  ])(
    "overwritten with %s, is replaced by the next election and WHO answers again",
    async (_, junk) => {
      const before = await agreed(() => true);
      const kv = await new Kvm(nc).open(coordinatorBucketName("dvs"));
      const junkRevision = await kv.put(COORDINATOR_KEY, junk);
      const after = await agreed((c) => c.epoch > junkRevision);
      expect(after.epoch).toBeGreaterThan(before.epoch);
      const entry = await kv.get(COORDINATOR_KEY);
      expect(entry?.revision).toBeGreaterThan(junkRevision);
      expect(entry?.json()).toMatchObject({ v: 1, coordinator: after.coordinator });
    },
    30_000,
  );
});
