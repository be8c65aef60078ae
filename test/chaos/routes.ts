// The routes of a local nats-server cluster, each through a TCP proxy the
// chaos run can cut: server i reaches server j only through proxy (i→j), so a
// cut of the pair closes both directions and no route goes around it (the
// servers advertise no real cluster address; see natsCluster's hideClusterAddress).
import { freePort } from "../../daemon/natsServer.js";
import { startTcpProxy, type TcpProxy } from "../support/tcpProxy.js";

export interface RouteProxies extends AsyncDisposable {
  readonly clusterPorts: readonly number[];
  /** For startNatsCluster's routeUrl: the proxy server `from` dials to reach `to`. */
  routeUrl(from: number, to: number): string;
  cut(a: number, b: number): void;
  restore(a: number, b: number): void;
  /** Every route of `server`. */
  isolate(server: number): void;
  restoreAll(): void;
  /** Pairs currently cut, as "a-b" with a < b. */
  cutPairs(): string[];
  close(): Promise<void>;
}

export async function startRouteProxies(servers: number): Promise<RouteProxies> {
  const clusterPorts: number[] = [];
  for (let i = 0; i < servers; i++) clusterPorts.push(await freePort());
  const proxies = new Map<string, TcpProxy>();
  const key = (from: number, to: number) => `${from}>${to}`;
  for (let from = 1; from <= servers; from++) {
    for (let to = 1; to <= servers; to++) {
      if (from !== to) proxies.set(key(from, to), await startTcpProxy(clusterPorts[to - 1] as number));
    }
  }
  const cut = new Set<string>();
  const pair = (a: number, b: number) => `${Math.min(a, b)}-${Math.max(a, b)}`;
  const proxy = (from: number, to: number) => {
    const p = proxies.get(key(from, to));
    if (!p) throw new RangeError(`no route s${from}→s${to} among ${servers} servers`);
    return p;
  };
  const close = async () => {
    await Promise.all([...proxies.values()].map((p) => p.close()));
  };
  const routes: RouteProxies = {
    clusterPorts,
    routeUrl: (from, to) => `nats://127.0.0.1:${proxy(from, to).port}`,
    cut(a, b) {
      proxy(a, b).cut();
      proxy(b, a).cut();
      cut.add(pair(a, b));
    },
    restore(a, b) {
      proxy(a, b).restore();
      proxy(b, a).restore();
      cut.delete(pair(a, b));
    },
    isolate(server) {
      for (let other = 1; other <= servers; other++) if (other !== server) routes.cut(server, other);
    },
    restoreAll() {
      for (let a = 1; a <= servers; a++) for (let b = a + 1; b <= servers; b++) routes.restore(a, b);
    },
    cutPairs: () => [...cut].sort(),
    close,
    [Symbol.asyncDispose]: close,
  };
  return routes;
}
