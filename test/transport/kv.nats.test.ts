// The CasStore contract on JetStream KV against a real nats-server owned by this
// file: each host is its own connection through its own TCP proxy, so the test
// can cut its link. And what only a real server shows: a restart on the same
// store dir keeps the values and the revisions.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEV_USERS } from "../../client/credentials.js";
import { startNatsServer } from "../../daemon/natsServer.js";
import { CasConflictError, StoreUnavailableError } from "../../transport/errors.js";
import type { KvEntry } from "../../transport/kv.js";
import { coordinatorBucketName, JetStreamCasStore } from "../../transport/kvJetStream.js";
import { casStoreContract } from "../contracts/casStore/contract.js";
import { natsConf, startTestNatsServer, type TestNatsServer } from "../support/natsServer.js";
import { startTcpProxy, type TcpProxy } from "../support/tcpProxy.js";

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const TIMEOUT_MS = 1_000;

/** A connection that keeps reconnecting, quickly, for as long as the test cuts its link. */
function connectHost(url: string, name: string): Promise<NatsConnection> {
  return connect({
    servers: url,
    name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 50,
    ...DEV_USERS.admin,
  });
}

let server: TestNatsServer;
let run = 0;

beforeAll(async () => {
  server = await startTestNatsServer();
});
afterAll(async () => {
  await server?.stop();
});

casStoreContract("JetStream KV", async () => {
  // A bucket per test: every test starts from an empty bucket, as the sim's do.
  const bucket = coordinatorBucketName(`contract${++run}`);
  const proxies = new Map<string, TcpProxy>();
  const connections: NatsConnection[] = [];
  const stores: JetStreamCasStore[] = [];
  return {
    timeoutMs: TIMEOUT_MS,
    async open(host) {
      const proxy = await startTcpProxy(server.port);
      proxies.set(host, proxy);
      const nc = await connectHost(proxy.url, host);
      connections.push(nc);
      const store = new JetStreamCasStore(nc, { bucket, timeoutMs: TIMEOUT_MS });
      stores.push(store);
      return store;
    },
    sleep,
    async cut(host) {
      proxies.get(host)?.cut();
    },
    async restore(host) {
      proxies.get(host)?.restore();
    },
    async close() {
      await Promise.all(stores.map((s) => s.close()));
      await Promise.all(connections.map((nc) => nc.close().catch(() => {})));
      await Promise.all([...proxies.values()].map((p) => p.close()));
    },
  };
});

describe("the JetStream KV store", () => {
  it("keeps values and revisions across a kill -9 of nats-server and its restart on the same store dir", async () => {
    // A server of its own, so the kill does not disturb the other tests.
    const dir = mkdtempSync(join(tmpdir(), "dvs-kv-restart-"));
    const first = await startNatsServer({ config: natsConf, port: 0, storeDir: dir });
    const port = first.port;
    const nc = await connectHost(first.url, "survivor");
    const writer = await connectHost(first.url, "writer");
    const store = new JetStreamCasStore(nc, {
      bucket: coordinatorBucketName("restart"),
      timeoutMs: TIMEOUT_MS,
    });
    const other = new JetStreamCasStore(writer, { bucket: store.bucket, timeoutMs: TIMEOUT_MS });
    let second: Awaited<ReturnType<typeof startNatsServer>> | undefined;
    try {
      let revision = await store.create("coordinator", bytes("node-1"));
      for (let n = 2; n <= 4; n++) revision = await store.update("coordinator", bytes(`node-${n}`), revision);
      const got: KvEntry[] = [];
      const stop = store.watch("coordinator", (e) => got.push(e));
      await until(() => got.at(-1)?.revision === revision);

      first.process.kill("SIGKILL");
      await new Promise((resolve) => first.process.once("exit", resolve));
      await expect(store.get("coordinator")).rejects.toBeInstanceOf(StoreUnavailableError);

      second = await startNatsServer({ config: natsConf, port, storeDir: dir });
      // The connections come back by themselves; JetStream answers once it has recovered the stream.
      let after: KvEntry | undefined;
      for (let attempt = 0; attempt < 100 && after === undefined; attempt++) {
        after = await store.get("coordinator").catch(async (error: unknown) => {
          expect(error).toBeInstanceOf(StoreUnavailableError);
          await sleep(100);
          return undefined;
        });
      }
      expect(after && { value: text(after.value), revision: after.revision }).toEqual({
        value: "node-4",
        revision,
      });
      await expect(store.create("coordinator", bytes("again"))).rejects.toBeInstanceOf(CasConflictError);
      await expect(store.update("coordinator", bytes("stale"), revision - 1)).rejects.toBeInstanceOf(
        CasConflictError,
      );
      // The other host writes; the watch made before the kill sees it without waiting out heartbeats.
      const next = await retryUnavailable(() => other.update("coordinator", bytes("node-5"), revision));
      expect(next).toBeGreaterThan(revision);
      await until(() => got.at(-1)?.revision === next, 10_000);
      expect(text(got.at(-1)!.value)).toBe("node-5");
      stop();
    } finally {
      await store.close();
      await other.close();
      await nc.close().catch(() => {});
      await writer.close().catch(() => {});
      await second?.stop();
      await first.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

async function until(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  for (let waited = 0; waited <= timeoutMs && !check(); waited += 20) await sleep(20);
  expect(check(), `condition not met within ${timeoutMs} ms`).toBe(true);
}

/** Retries while the store is unavailable (JetStream still recovering), for at most ~10 s. */
async function retryUnavailable<T>(operation: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await operation();
    } catch (error) {
      if (!(error instanceof StoreUnavailableError) || attempt >= 100) throw error;
      await sleep(100);
    }
  }
}
