// The Transport contract: one suite that every implementation runs unchanged
// (the NATS transport against a real nats-server, and the simulated network).
// Time is only ever waited through env.sleep, so the sim can run it on its clock.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  InvalidSubjectError,
  NoRespondersError,
  PayloadTooLargeError,
  TimeoutError,
  TransportClosedError,
} from "../../../transport/errors.js";
import type { Message, Transport, TransportStatus } from "../../../transport/transport.js";

export interface ContractEnv {
  connect(name: string): Promise<Transport>;
  cutLink(transport: Transport): Promise<void>;
  restoreLink(transport: Transport): Promise<void>;
  sleep(ms: number): Promise<void>;
  close(): Promise<void>;
}

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

export function transportContract(name: string, makeEnv: () => Promise<ContractEnv>): void {
  describe(`Transport contract: ${name}`, () => {
    let env: ContractEnv;

    beforeEach(async () => {
      env = await makeEnv();
    });
    afterEach(async () => {
      await env.close();
    });

    /** Polls `check` until it returns true or `timeoutMs` of env time has passed. */
    async function eventually(check: () => boolean, timeoutMs = 5_000, stepMs = 10): Promise<void> {
      for (let waited = 0; waited <= timeoutMs; waited += stepMs) {
        if (check()) return;
        await env.sleep(stepMs);
      }
      expect(check(), `condition not met within ${timeoutMs} ms`).toBe(true);
    }

    /** A subscription is known to the server once a round trip through it has completed. */
    async function settle(...transports: Transport[]): Promise<void> {
      for (const t of transports) await t.flush();
    }

    it("delivers a published message with its exact bytes and headers", async () => {
      const a = await env.connect("a");
      const b = await env.connect("b");
      const got: Message[] = [];
      b.subscribe("dvs.test.one", (m) => got.push(m));
      await settle(b);
      const payload = new Uint8Array([0, 1, 2, 255, 128, 7]);
      a.publish("dvs.test.one", payload, { headers: { "Content-Type": "application/json" } });
      await eventually(() => got.length === 1);
      expect([...(got[0]?.data ?? [])]).toEqual([...payload]);
      expect(got[0]?.subject).toBe("dvs.test.one");
      expect(got[0]?.headers?.["Content-Type"]).toBe("application/json");
      // Whatever a message's fields are made of, a copy or a log line keeps them all.
      expect({ ...got[0] }).toMatchObject({ subject: "dvs.test.one", reply: undefined });
      expect(Object.keys(got[0] ?? {}).sort()).toEqual(["data", "headers", "reply", "subject"]);
      expect(JSON.parse(JSON.stringify(got[0])).subject).toBe("dvs.test.one");
    });

    it("matches * to one token and > to one or more trailing tokens", async () => {
      const a = await env.connect("a");
      const b = await env.connect("b");
      const star: string[] = [];
      const tail: string[] = [];
      b.subscribe("dvs.*.rqst", (m) => star.push(m.subject));
      b.subscribe("dvs.c.>", (m) => tail.push(m.subject));
      await settle(b);
      for (const s of ["dvs.x.rqst", "dvs.x.y.rqst", "dvs.c", "dvs.c.node.1.rqst", "dvs.c.rqst"])
        a.publish(s, bytes(s));
      await a.flush();
      await eventually(() => star.length + tail.length === 4);
      await env.sleep(50);
      expect(star.sort()).toEqual(["dvs.c.rqst", "dvs.x.rqst"]);
      expect(tail.sort()).toEqual(["dvs.c.node.1.rqst", "dvs.c.rqst"]);
    });

    it("gives each message of a queue group to exactly one member, and every message to plain subscribers", async () => {
      const pub = await env.connect("pub");
      const q1 = await env.connect("q1");
      const q2 = await env.connect("q2");
      const queued: string[] = [];
      const plain: string[] = [];
      q1.subscribe("dvs.work", (m) => queued.push(text(m.data)), { queue: "workers" });
      q2.subscribe("dvs.work", (m) => queued.push(text(m.data)), { queue: "workers" });
      q2.subscribe("dvs.work", (m) => plain.push(text(m.data)));
      await settle(q1, q2);
      const sent = Array.from({ length: 50 }, (_, i) => String(i));
      for (const s of sent) pub.publish("dvs.work", bytes(s));
      await pub.flush();
      await eventually(() => queued.length >= 50 && plain.length >= 50);
      await env.sleep(50);
      expect(queued.sort()).toEqual([...sent].sort());
      expect(plain).toEqual(sent);
    });

    it("answers a request with the first reply, through an inbox", async () => {
      const client = await env.connect("client");
      const server = await env.connect("server");
      server.subscribe("dvs.echo", (m) => {
        if (m.reply) server.publish(m.reply, m.data, { headers: { "X-From": "server" } });
      });
      await settle(server);
      const reply = await client.request("dvs.echo", bytes("ping"), { timeoutMs: 2_000 });
      expect(text(reply.data)).toBe("ping");
      expect(reply.headers?.["X-From"]).toBe("server");
    });

    it("answers requests in flight together each with its own reply, whatever order the replies come in", async () => {
      const client = await env.connect("client");
      const server = await env.connect("server");
      const held: { reply: string; data: Uint8Array }[] = [];
      server.subscribe("dvs.batch", (m) => {
        if (m.reply) held.push({ reply: m.reply, data: m.data });
        // Answered last first once all have come.
        if (held.length === 10) for (const h of held.reverse()) server.publish(h.reply, h.data);
      });
      await settle(server);
      const replies = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          client.request("dvs.batch", bytes(`n${i}`), { timeoutMs: 2_000 }),
        ),
      );
      expect(replies.map((r) => text(r.data))).toEqual(Array.from({ length: 10 }, (_, i) => `n${i}`));
    });

    it("fails a request still waiting when its transport closes, with TransportClosedError and before its timeout", async () => {
      const client = await env.connect("client");
      const server = await env.connect("server");
      server.subscribe("dvs.never", () => {});
      await settle(server);
      const waiting = client.request("dvs.never", bytes("x"), { timeoutMs: 30_000 }).catch((e: unknown) => e);
      await env.sleep(50);
      const closing = client.close();
      const error = await Promise.race([waiting, env.sleep(5_000).then(() => "still waiting")]);
      await closing;
      expect(error).toBeInstanceOf(TransportClosedError);
    });

    it("rejects a request with NoRespondersError when nobody subscribes to its subject", async () => {
      const client = await env.connect("client");
      await expect(
        client.request("dvs.nobody.home", bytes("x"), { timeoutMs: 2_000 }),
      ).rejects.toBeInstanceOf(NoRespondersError);
    });

    it("rejects a request with TimeoutError when the responder stays silent", async () => {
      const client = await env.connect("client");
      const server = await env.connect("server");
      server.subscribe("dvs.silent", () => {});
      await settle(server);
      const error = await client
        .request("dvs.silent", bytes("x"), { timeoutMs: 200 })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TimeoutError);
      expect((error as TimeoutError).timeoutMs).toBe(200);
    });

    it("keeps one publisher's messages in order at a receiver", async () => {
      const a = await env.connect("a");
      const b = await env.connect("b");
      const got: number[] = [];
      b.subscribe("dvs.order", (m) => got.push(Number(text(m.data))));
      await settle(b);
      for (let i = 0; i < 300; i++) a.publish("dvs.order", bytes(String(i)));
      await a.flush();
      await eventually(() => got.length === 300);
      expect(got).toEqual(Array.from({ length: 300 }, (_, i) => i));
    });

    it("stops delivering after unsubscribe", async () => {
      const a = await env.connect("a");
      const b = await env.connect("b");
      const got: string[] = [];
      const sub = b.subscribe("dvs.unsub", (m) => got.push(text(m.data)));
      await settle(b);
      a.publish("dvs.unsub", bytes("1"));
      await eventually(() => got.length === 1);
      sub.unsubscribe();
      await settle(b);
      a.publish("dvs.unsub", bytes("2"));
      await a.flush();
      await env.sleep(100);
      expect(got).toEqual(["1"]);
    });

    it("keeps delivering after a handler throws", async () => {
      const a = await env.connect("a");
      const b = await env.connect("b");
      const got: string[] = [];
      b.subscribe("dvs.throw", (m) => {
        got.push(text(m.data));
        throw new Error("handler failure");
      });
      await settle(b);
      a.publish("dvs.throw", bytes("1"));
      a.publish("dvs.throw", bytes("2"));
      await eventually(() => got.length === 2);
      expect(got).toEqual(["1", "2"]);
    });

    it("refuses invalid subjects and oversize payloads with named errors", async () => {
      const a = await env.connect("a");
      expect(() => a.publish("dvs..bad", bytes("x"))).toThrow(InvalidSubjectError);
      expect(() => a.publish("dvs.*", bytes("x"))).toThrow(InvalidSubjectError);
      expect(() => a.subscribe("dvs.>.x", () => {})).toThrow(InvalidSubjectError);
      expect(() => a.publish("dvs.big", new Uint8Array(a.maxPayload + 1))).toThrow(PayloadTooLargeError);
      await expect(
        a.request("dvs.big", new Uint8Array(a.maxPayload + 1), { timeoutMs: 100 }),
      ).rejects.toBeInstanceOf(PayloadTooLargeError);
    });

    it("reports link loss as status events, times out requests while cut, and resumes after restore", async () => {
      const a = await env.connect("a");
      const b = await env.connect("b");
      const statuses: TransportStatus["type"][] = [];
      a.onStatus((s) => statuses.push(s.type));
      const got: string[] = [];
      a.subscribe("dvs.link", (m) => got.push(text(m.data)));
      b.subscribe("dvs.link.echo", (m) => {
        if (m.reply) b.publish(m.reply, m.data);
      });
      await settle(a, b);

      await env.cutLink(a);
      await eventually(() => statuses.includes("disconnected"));
      expect(a.status).not.toBe("connected");
      await expect(a.request("dvs.link.echo", bytes("x"), { timeoutMs: 300 })).rejects.toBeInstanceOf(
        TimeoutError,
      );

      await env.restoreLink(a);
      await eventually(() => a.status === "connected");
      expect(statuses.indexOf("disconnected")).toBeLessThan(statuses.lastIndexOf("connected"));
      // Subscriptions made before the cut are live again.
      await eventually(() => {
        b.publish("dvs.link", bytes("after"));
        return got.includes("after");
      });
      const reply = await a.request("dvs.link.echo", bytes("back"), { timeoutMs: 2_000 });
      expect(text(reply.data)).toBe("back");
    });

    it("withdraws the interest of a client whose link is cut, so its subjects get no responders", async () => {
      const client = await env.connect("client");
      const server = await env.connect("server");
      server.subscribe("dvs.only", (m) => {
        if (m.reply) server.publish(m.reply, m.data);
      });
      await settle(server);
      await env.cutLink(server);
      let last: unknown;
      for (let i = 0; i < 50 && !(last instanceof NoRespondersError); i++) {
        last = await client.request("dvs.only", bytes("x"), { timeoutMs: 100 }).catch((e: unknown) => e);
        if (!(last instanceof NoRespondersError)) await env.sleep(50);
      }
      expect(last).toBeInstanceOf(NoRespondersError);
      await env.restoreLink(server);
    });

    it("after close, reports closed once and refuses further use with TransportClosedError", async () => {
      const a = await env.connect("a");
      const statuses: TransportStatus["type"][] = [];
      a.onStatus((s) => statuses.push(s.type));
      await a.close();
      await a.closed();
      await eventually(() => statuses.includes("closed"));
      expect(statuses.filter((s) => s === "closed")).toHaveLength(1);
      expect(a.status).toBe("closed");
      expect(() => a.publish("dvs.after", bytes("x"))).toThrow(TransportClosedError);
      await expect(a.request("dvs.after", bytes("x"), { timeoutMs: 100 })).rejects.toBeInstanceOf(
        TransportClosedError,
      );
      await a.close();
    });
  });
}
