// A stream dvsd writes to must keep its messages to itself: one created first
// by someone else with `republish` (or sources, a mirror, extra subjects) is
// refused, never written to (docs/security.md, property 4).
import { jetstream, jetstreamManager, StorageType } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEV_USERS } from "../../client/credentials.js";
import { actionStreamName, JetStreamActionLog } from "../../transport/actionLogJetStream.js";
import { JetStreamCasStore } from "../../transport/kvJetStream.js";
import { UntrustedStreamError, untrustedStream } from "../../transport/streamTrust.js";
import { startTestNatsServer, type TestNatsServer } from "../support/natsServer.js";

let server: TestNatsServer;
let nc: NatsConnection;

beforeAll(async () => {
  server = await startTestNatsServer();
  nc = await connect({ servers: server.url, ...DEV_USERS.admin });
});

afterAll(async () => {
  await nc?.close();
  await server?.stop();
});

/** The cause chain of an error, outermost first. */
function causes(error: unknown): unknown[] {
  const chain: unknown[] = [];
  for (let e = error; e !== undefined && chain.length < 8; e = (e as { cause?: unknown }).cause)
    chain.push(e);
  return chain;
}

describe("streams dvsd does not trust", () => {
  it("a stream config that republishes, sources, mirrors or takes other subjects is named as such", () => {
    expect(untrustedStream({ subjects: ["a.>"] }, ["a.>"])).toEqual([]);
    expect(untrustedStream({ subjects: ["a.>"], republish: { src: ">", dest: "x" } }, ["a.>"])).toHaveLength(
      1,
    );
    expect(untrustedStream({ subjects: ["a.>"], sources: [{ name: "s" }] }, ["a.>"])).toHaveLength(1);
    expect(untrustedStream({ subjects: ["a.>"], mirror: { name: "m" } }, ["a.>"])).toHaveLength(1);
    expect(untrustedStream({ subjects: ["a.>", "dvs.*._hb.*"] }, ["a.>"])).toHaveLength(1);
  });

  it("an action log stream made first with republish onto a heartbeat subject is refused, and nothing is republished", async () => {
    const cluster = "trust";
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({
      name: actionStreamName(cluster),
      subjects: [`dvs.${cluster}.actions.>`],
      storage: StorageType.Memory,
      republish: { src: `dvs.${cluster}.actions.>`, dest: `dvs.${cluster}._hb.>` },
    });
    const republished: string[] = [];
    const sub = nc.subscribe(`dvs.${cluster}._hb.>`, {
      callback: (_e, m) => void republished.push(m.subject),
    });
    const log = new JetStreamActionLog(nc, { cluster });
    const record = {
      v: 1,
      kind: "request",
      action: "01JTRUST000000000000000000",
      at: 1,
      node: 1,
      role: "admin",
      src: "t",
      type: "GETDVSINFO",
      dst: 1,
      seq: 1,
      params: {},
    } as const;
    const error = await log.append(record as never).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(causes(error).some((e) => e instanceof UntrustedStreamError)).toBe(true);
    await nc.flush();
    sub.unsubscribe();
    expect(republished).toEqual([]);
  });

  it("a KV bucket whose stream republishes is refused by the coordinator store", async () => {
    const bucket = "DVS_REGISTRY_trust";
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({
      name: `KV_${bucket}`,
      subjects: [`$KV.${bucket}.>`],
      storage: StorageType.Memory,
      max_msgs_per_subject: 1,
      allow_rollup_hdrs: true,
      deny_delete: true,
      republish: { src: `$KV.${bucket}.>`, dest: "dvs.trust._hb.>" },
    });
    // The bucket exists: Kvm opens it as it is.
    await new Kvm(jetstream(nc)).open(bucket);
    const store = new JetStreamCasStore(nc, { bucket });
    const error = await store.get("coordinator").then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(causes(error).some((e) => e instanceof UntrustedStreamError)).toBe(true);
    await store.close();
  });
});
