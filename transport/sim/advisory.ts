// What a simulated server says when a client connection ends: nats-server's
// DISCONNECT advisory, published on `$SYS.ACCOUNT.<account>.DISCONNECT` with the
// body of its `DisconnectEventMsg`, so code that reads the real one
// (protocol/advisories.ts) reads this one.
import { DISCONNECT_ADVISORY_TYPE } from "../../protocol/advisories.js";

/** The server's record of one attached session (a reconnect is a new session, with a new client id). */
export interface SimSession {
  /** The client id, numbered per server from 1 as nats-server's `cid`. */
  readonly cid: number;
  /** Simulated ms when the server accepted it. */
  readonly start: number;
  /** What the client sent (nats-server's `in_msgs`, `in_bytes`) and what it was sent. */
  inMsgs: number;
  inBytes: number;
  outMsgs: number;
  outBytes: number;
}

/** nats-server's reasons (ClosedState strings) for the two ways a sim session ends. */
export type DisconnectReason = "Client Closed" | "Stale Connection";

export interface SimServerInfo {
  readonly name: string;
  readonly id: string;
}

export interface DisconnectFacts {
  /** Unique per network. */
  readonly id: string;
  /** Simulated ms when the server let the session go. */
  readonly at: number;
  readonly server: SimServerInfo;
  /** The server's count of the events it published, as ServerInfo's `seq`. */
  readonly serverSeq: number;
  readonly account: string;
  /** The connection's `name` option. */
  readonly clientName: string;
  readonly session: SimSession;
  readonly reason: DisconnectReason;
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** The advisory's JSON body, fields as nats-server names them (empty optional ones left out, as it does). */
export function disconnectAdvisory(f: DisconnectFacts): Uint8Array {
  const { session } = f;
  const body = {
    type: DISCONNECT_ADVISORY_TYPE,
    id: f.id,
    timestamp: iso(f.at),
    server: {
      name: f.server.name,
      host: "sim",
      id: f.server.id,
      ver: "sim",
      seq: f.serverSeq,
      jetstream: false,
      time: iso(f.at),
    },
    client: {
      start: iso(session.start),
      stop: iso(f.at),
      host: "sim",
      id: session.cid,
      acc: f.account,
      name: f.clientName,
      kind: "Client",
      client_type: "nats",
    },
    sent: { msgs: session.inMsgs, bytes: session.inBytes },
    received: { msgs: session.outMsgs, bytes: session.outBytes },
    reason: f.reason,
  };
  return new TextEncoder().encode(JSON.stringify(body));
}
