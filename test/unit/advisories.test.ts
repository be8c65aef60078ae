// The server's DISCONNECT advisory read as hostile input, and the client names
// that tell which node of which cluster a connection was (protocol/advisories.ts).
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  DISCONNECT_ADVISORIES,
  DISCONNECT_ADVISORY_TYPE,
  disconnectAdvisorySubject,
  nodeClientName,
  nodeOfClientName,
  parseDisconnectAdvisory,
} from "../../protocol/advisories.js";
import { isClusterName } from "../../protocol/subjects.js";
import { subjectMatches } from "../../transport/transport.js";

/** What nats-server 2.9.10 published when a node's process was SIGKILLed (nats.conf, node-2's connection). */
const REAL = {
  type: "io.nats.server.advisory.v1.client_disconnect",
  id: "TOQooArmS3OHR3CR9nVECi",
  timestamp: "2026-12-07T03:21:12.819676788Z",
  server: {
    name: "dvs-local",
    host: "127.0.0.1",
    id: "ND4HTAGTFLRXFS3TMHB72E37SCU66NMI5EPDHYGYU63MGMOW42K5ZSED",
    ver: "2.9.10",
    seq: 23,
    jetstream: true,
    time: "2026-12-07T03:21:12.819703509Z",
  },
  client: {
    start: "2026-12-07T03:21:12.803808941Z",
    host: "127.0.0.1",
    id: 7,
    acc: "DVS",
    user: "node-2",
    name: "dvsd-dvs-2",
    lang: "nats.js",
    ver: "3.4.0",
    rtt: 6979303,
    stop: "2026-12-07T03:21:12.819676788Z",
    kind: "Client",
    client_type: "nats",
  },
  sent: { msgs: 0, bytes: 0 },
  received: { msgs: 0, bytes: 0 },
  reason: "Client Closed",
};

const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

describe("parseDisconnectAdvisory", () => {
  it("reads the advisory nats-server publishes, keeping the fields dvsd uses", () => {
    const advisory = parseDisconnectAdvisory(json(REAL));
    expect(advisory).toMatchObject({
      type: DISCONNECT_ADVISORY_TYPE,
      client: { acc: "DVS", user: "node-2", name: "dvsd-dvs-2" },
      server: { name: "dvs-local" },
      reason: "Client Closed",
    });
    expect(advisory).not.toHaveProperty("sent");
  });

  it("reads an advisory of a client that gave no name, which names no node", () => {
    const { name: _, ...client } = REAL.client;
    expect(parseDisconnectAdvisory(json({ ...REAL, client }))?.client.name).toBeUndefined();
  });

  it("returns nothing for hostile bodies, and never throws", () => {
    const long = "x".repeat(2_000);
    const hostile: Uint8Array[] = [
      new Uint8Array(),
      new Uint8Array([0xff, 0xfe, 0x00]),
      new TextEncoder().encode("{not json"),
      new TextEncoder().encode('{"type":'),
      json(null),
      json(42),
      json("io.nats.server.advisory.v1.client_disconnect"),
      json([REAL]),
      json({}),
      json({ ...REAL, type: "io.nats.server.advisory.v1.client_connect" }),
      json({ ...REAL, type: 1 }),
      json({ ...REAL, client: undefined }),
      json({ ...REAL, client: "dvsd-dvs-2" }),
      json({ ...REAL, client: { ...REAL.client, name: 2 } }),
      json({ ...REAL, client: { ...REAL.client, name: ["dvsd-dvs-2"] } }),
      json({ ...REAL, client: { ...REAL.client, name: long } }),
      json({ ...REAL, reason: { toString: "x" } }),
      // Larger than any advisory: refused before it is parsed.
      json({ ...REAL, padding: "x".repeat(70_000) }),
    ];
    for (const body of hostile) expect(() => parseDisconnectAdvisory(body)).not.toThrow();
    for (const body of hostile) expect(parseDisconnectAdvisory(body)).toBeUndefined();
  });

  it("does not let a __proto__ key reach the objects it returns", () => {
    const body = `{"type":"${DISCONNECT_ADVISORY_TYPE}","__proto__":{"polluted":true},"client":{"name":"dvsd-dvs-2","__proto__":{"polluted":true}}}`;
    const advisory = parseDisconnectAdvisory(new TextEncoder().encode(body));
    if (advisory === undefined) throw new Error("the advisory was refused");
    expect(advisory.client.name).toBe("dvsd-dvs-2");
    expect((advisory as Record<string, unknown>).polluted).toBeUndefined();
    expect((advisory.client as Record<string, unknown>).polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("takes any account's advisory subject, and only the advisory subjects", () => {
    expect(subjectMatches(DISCONNECT_ADVISORIES, disconnectAdvisorySubject("DVS"))).toBe(true);
    expect(subjectMatches(DISCONNECT_ADVISORIES, "$SYS.ACCOUNT.DVS.CONNECT")).toBe(false);
    expect(subjectMatches(DISCONNECT_ADVISORIES, "$SYS.ACCOUNT.DVS.SERVER.CONNS")).toBe(false);
  });
});

describe("node client names", () => {
  it("name node N of cluster C dvsd-C-N, and read it back", () => {
    expect(nodeClientName("dvs", 3)).toBe("dvsd-dvs-3");
    expect(nodeOfClientName("dvs", "dvsd-dvs-3")).toBe(3);
    expect(nodeOfClientName("dvs", "dvsd-dvs-0")).toBe(0);
    expect(nodeOfClientName("dvs", "dvsd-dvs-65535")).toBe(65_535);
  });

  it("refuse what is not a node id alone after the cluster's own prefix", () => {
    for (const name of [
      "dvsd-dvs-",
      "dvsd-dvs-03",
      "dvsd-dvs-3x",
      "dvsd-dvs--3",
      "dvsd-dvs-3.0",
      "dvsd-dvs-1e3",
      "dvsd-dvs- 3",
      "dvsd-dvs-65536",
      "dvsd-dvs-999999999999",
      "dvsd-other-3",
      "dvsd-DVS-3",
      "dvsctl-dvs-3",
      "dvs-3",
      "",
    ]) {
      expect(nodeOfClientName("dvs", name), name).toBeUndefined();
    }
  });

  it("never take a node of a cluster whose name holds '-' for one of another cluster", () => {
    expect(nodeOfClientName("a-1", "dvsd-a-1-2")).toBe(2);
    expect(nodeOfClientName("a", "dvsd-a-1-2")).toBeUndefined();
    expect(nodeOfClientName("a-1", "dvsd-a-1")).toBeUndefined();
    const cluster = fc.stringMatching(/^[A-Za-z0-9_-]{1,32}$/).filter(isClusterName);
    fc.assert(
      fc.property(cluster, cluster, fc.integer({ min: 0, max: 65_535 }), (named, reader, node) => {
        const read = nodeOfClientName(reader, nodeClientName(named, node));
        expect(read).toBe(named === reader ? node : undefined);
      }),
    );
  });
});
