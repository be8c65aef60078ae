// The Transport contract against a real nats-server owned by this file; each
// client connects through its own TCP proxy so the test can cut its link.
import { afterAll, beforeAll } from "vitest";
import { DEV_USERS } from "../../../client/credentials.js";
import type { NatsTransport } from "../../../transport/nats.js";
import { connectNats } from "../../../transport/nats.js";
import type { Transport } from "../../../transport/transport.js";
import { startTestNatsServer, type TestNatsServer } from "../../support/natsServer.js";
import { startTcpProxy, type TcpProxy } from "../../support/tcpProxy.js";
import { transportContract } from "./contract.js";

let server: TestNatsServer;
beforeAll(async () => {
  server = await startTestNatsServer();
});
afterAll(async () => {
  await server?.stop();
});

transportContract("nats", async () => {
  const links = new Map<Transport, TcpProxy>();
  const clients: NatsTransport[] = [];
  return {
    async connect(name) {
      const proxy = await startTcpProxy(server.port);
      const t = await connectNats({ servers: [proxy.url], name, reconnectWaitMs: 50, ...DEV_USERS.admin });
      links.set(t, proxy);
      clients.push(t);
      return t;
    },
    async cutLink(t) {
      links.get(t)?.cut();
    },
    async restoreLink(t) {
      links.get(t)?.restore();
    },
    sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
    async close() {
      for (const proxy of links.values()) proxy.restore();
      await Promise.all(clients.map((c) => c.close().catch(() => {})));
      await Promise.all([...links.values()].map((p) => p.close()));
    },
  };
});
