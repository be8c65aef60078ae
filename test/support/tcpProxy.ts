// A TCP proxy a test can cut and restore, so that a client's link to
// nats-server fails for real (the socket closes) without touching the server.
import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net";

export interface TcpProxy extends AsyncDisposable {
  readonly port: number;
  readonly url: string;
  /** Closes every open connection and refuses new ones until restore(). */
  cut(): void;
  /**
   * A silent cut: open connections stay open but carry nothing (bytes both ways
   * are dropped), as when a cable is pulled until the connections go stale; restore() closes them, and
   * new ones are refused until then. Neither end learns of it but by timeouts.
   */
  blackhole(): void;
  restore(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number, targetHost = "127.0.0.1"): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  let isCut = false;
  const server: Server = createServer((client) => {
    if (isCut) {
      client.destroy();
      return;
    }
    const upstream = tcpConnect({ port: targetPort, host: targetHost });
    sockets.add(client);
    sockets.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  const close = async () => {
    for (const s of sockets) s.destroy();
    sockets.clear();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return {
    port,
    url: `nats://127.0.0.1:${port}`,
    cut() {
      isCut = true;
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    blackhole() {
      isCut = true;
      for (const s of sockets) {
        s.unpipe();
        s.removeAllListeners("data");
        s.on("data", () => {});
      }
    },
    restore() {
      if (!isCut) return;
      // Blackholed connections lost bytes both ways: their streams are out of step, so they go.
      for (const s of sockets) s.destroy();
      sockets.clear();
      isCut = false;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
