// After a heal, how long nats-server takes to make the registry's KV stream
// usable again (a stream leader, every replica current), sampled with
// STREAM.INFO. The settle time after a heal splits into this part (the
// server's Raft: election timeouts of 4–9 s on 2.9.10) and the part after it
// (dvsd's: the registries read the record and the servers elect).
import { setTimeout as sleepMs } from "node:timers/promises";
import { type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";

export interface StreamReady {
  /** From the start of the watch to the first sample with a leader and every replica current; undefined if never. */
  readonly readyMs: number | undefined;
  /** The leader then, and each replica as `name:current/lag`. */
  readonly state: string;
  readonly samples: number;
}

export interface StreamWatch {
  stop(): Promise<StreamReady>;
}

/**
 * Samples `stream`'s info every `pollMs` from now until stopped (each call
 * bounded by `timeoutMs`), through each of `connections` in turn after a
 * failure: a server that was just killed or cut off does not hide the others'.
 */
export function watchStream(
  connections: readonly NatsConnection[],
  stream: string,
  pollMs = 100,
  timeoutMs = 500,
): StreamWatch {
  const started = performance.now();
  let readyMs: number | undefined;
  let state = "no answer yet";
  let samples = 0;
  let stopped = false;
  let turn = 0;
  // One manager per connection, made once (making one asks the server for account info).
  const managers = new Map<NatsConnection, Promise<JetStreamManager>>();
  const managerOf = (nc: NatsConnection) => {
    let jsm = managers.get(nc);
    if (jsm === undefined) {
      jsm = jetstreamManager(nc, { timeout: timeoutMs });
      managers.set(nc, jsm);
      // A failed one is made again on that connection's next turn.
      jsm.catch(() => managers.delete(nc));
    }
    return jsm;
  };
  const loop = (async () => {
    while (!stopped && readyMs === undefined) {
      const nc = connections[turn % connections.length] as NatsConnection;
      try {
        const jsm = await managerOf(nc);
        const info = await jsm.streams.info(stream);
        samples++;
        const leader = info.cluster?.leader;
        const replicas = info.cluster?.replicas ?? [];
        state = `leader ${leader ?? "none"}; ${replicas.map((r) => `${r.name}:${r.current ? "current" : "behind"}/${r.lag ?? 0}`).join(" ")}`;
        if (leader !== undefined && replicas.every((r) => r.current && (r.lag ?? 0) === 0))
          readyMs = Math.round(performance.now() - started);
      } catch (error) {
        samples++;
        state = `info failed: ${(error as Error).message}`;
        turn++;
      }
      if (readyMs === undefined) await sleepMs(pollMs);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return { readyMs, state, samples };
    },
  };
}
