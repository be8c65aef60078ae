// The server role (SPEC 7, seed 002) alone: the machine runs with spies for its
// effects, and time arrives in the events' `at`. Default timings for a 400 ms
// lease: renew every 100 ms, margin 40 ms (a term granted on a request sent at
// t is valid until t + 360), stagger 25 ms, STATUS every 1 s, retry 100 ms
// doubling up to 2 s.
import { describe, expect, it } from "vitest";
import { createActor } from "xstate";
import { defaultElectionTimings } from "../../machines/electionTimings.js";
import type { RegistryAnswer } from "../../machines/registry.js";
import {
  candidateRank,
  holdsValidLease,
  initialServer,
  type OutgoingServerMessage,
  onPeerMessage,
  type PeerMessage,
  type ServerContext,
  type ServerEvent,
  type ServerInput,
  type ServerOutput,
  type ServerState,
  serverMachine,
  serverTickDue,
} from "../../machines/server.js";
import { decode, encode } from "../../protocol/codec.js";
import type { HeldFile, NodeId, ServerType } from "../../protocol/messages.js";

const timings = defaultElectionTimings(400);
const SELF = 3;
const input = (type: ServerType = "active"): ServerInput => ({
  self: SELF,
  incarnation: 1,
  type,
  timings,
  at: 0,
});

/** A server actor whose effects are recorded; `send` returns what it did for those events, in order. */
function server(type: ServerType = "active") {
  const outputs: ServerOutput[] = [];
  const spy =
    <K extends ServerOutput["type"]>(kind: K) =>
    (_: unknown, params: Extract<ServerOutput, { type: K }>["params"]) => {
      outputs.push({ type: kind, params } as ServerOutput);
    };
  const machine = serverMachine.provide({
    actions: {
      askRegistry: spy("askRegistry"),
      startElection: spy("startElection"),
      broadcast: spy("broadcast"),
      replyAlive: spy("replyAlive"),
      renewLease: spy("renewLease"),
      releaseLease: spy("releaseLease"),
      announce: spy("announce"),
    },
  });
  const actor = createActor(machine, { input: input(type) }).start();
  const started = [...outputs];
  return {
    started,
    send(...events: ServerEvent[]): ServerOutput[] {
      outputs.length = 0;
      for (const event of events) actor.send(event);
      return [...outputs];
    },
    get context(): ServerContext {
      return actor.getSnapshot().context;
    },
    get state() {
      return actor.getSnapshot().value;
    },
    get status() {
      return actor.getSnapshot().status;
    },
  };
}

// ---- events ----
const tick = (at: number): ServerEvent => ({ type: "clock.tick", at });
/** The registry's answer to a request sent at `sentAt`, arriving 5 ms later unless told. */
const answer = (a: RegistryAnswer, sentAt: number, at = sentAt + 5): ServerEvent => ({
  type: "registry.answer",
  answer: a,
  sentAt,
  at,
});
const COORD = (epoch: number, revision = epoch): RegistryAnswer => ({ type: "COORD", epoch, revision });
const OK = (coordinator: NodeId, epoch: number): RegistryAnswer => ({ type: "OK", coordinator, epoch });
const NOTHING: RegistryAnswer = { type: "NOTHING" };
const view = (coordinator: NodeId | null, epoch: number, live: boolean, at: number): ServerEvent => ({
  type: "registry.view",
  coordinator,
  epoch,
  live,
  at,
});
const peer = (message: PeerMessage, at: number, reply: string | null = null): ServerEvent => ({
  type: "peer.message",
  message,
  reply,
  at,
});
const renewed = (revision: number, sentAt: number, at = sentAt + 5): ServerEvent => ({
  type: "lease.renewed",
  revision,
  sentAt,
  at,
});

// ---- messages from other servers ----
const signal = (
  kind: "STATUS" | "PING" | "ELECTION" | "ELECTED",
  from: NodeId,
  epoch: number,
): PeerMessage => ({
  kind,
  from,
  incarnation: 1,
  epoch,
});
const hello = (from: NodeId, server: ServerType = "active", incarnation = 1): PeerMessage => ({
  kind: "SERVER",
  from,
  incarnation,
  epoch: 0,
  server,
});
const alive = (from: NodeId, files: HeldFile[]): PeerMessage => ({
  kind: "ALIVE",
  from,
  incarnation: 1,
  epoch: 0,
  server: "active",
  coordinator: null,
  files,
});

// ---- what the server does ----
const announce = (coordinator: NodeId | null, epoch: number, cause: string): ServerOutput => ({
  type: "announce",
  params: { coordinator, epoch, cause },
});
const broadcast = (message: OutgoingServerMessage, epoch: number): ServerOutput => ({
  type: "broadcast",
  params: { message, epoch },
});
const askRegistry = (message: "SERVER" | "ELECTED", sentAt: number): ServerOutput => ({
  type: "askRegistry",
  params: { message, sentAt },
});
const renewLease = (expected: number, sentAt: number, epoch = 7): ServerOutput => ({
  type: "renewLease",
  params: { expected, epoch, sentAt },
});

/** A server that asked at 0 and was granted epoch 7 (store revision 7): lease valid until 360. */
function coordinator() {
  const s = server();
  s.send(tick(0), answer(COORD(7), 0));
  return s;
}

/** A server that asked at 0 and was told node 2 coordinates epoch 7. */
function worker() {
  const s = server();
  s.send(tick(0), view(2, 7, true, 1), answer(OK(2, 7), 0));
  return s;
}

describe("server: joining", () => {
  it("a starting server broadcasts SERVER and, on the first tick, asks the registry with SERVER", () => {
    const s = server();
    expect(s.started).toEqual([broadcast("SERVER", 0)]);
    expect(s.state).toBe("starting");
    expect(s.send(tick(0))).toEqual([askRegistry("SERVER", 0)]);
    // One question at a time.
    expect(s.send(tick(20), tick(500))).toEqual([]);
  });

  it("COORD makes it coordinator with a lease valid until sentAt + leaseMs - marginMs", () => {
    const s = server();
    s.send(tick(100));
    expect(s.send(answer(COORD(7, 9), 100, 130))).toEqual([
      announce(SELF, 7, "elected"),
      broadcast("ELECTED", 7),
      broadcast("STATUS", 7),
    ]);
    expect(s.state).toBe("coordinator");
    expect(s.context).toMatchObject({ coordinator: SELF, epoch: 7, highestEpoch: 7, stepDown: null });
    expect(s.context.lease).toEqual({ revision: 9, validUntil: 460, renewing: false, lastRenewAt: 100 });
    expect(holdsValidLease(s.context, 459)).toBe(true);
    expect(holdsValidLease(s.context, 460)).toBe(false);
  });

  it("OK naming another server makes it a worker", () => {
    const s = server();
    s.send(tick(0));
    expect(s.send(answer(OK(2, 7), 0))).toEqual([]);
    expect(s.state).toBe("worker");
    expect(s.context.lease).toBeNull();
  });

  it("OK naming another server makes it follow that coordinator and its epoch", () => {
    const s = server();
    s.send(tick(0), answer(OK(2, 7), 0));
    expect(s.context).toMatchObject({ coordinator: 2, epoch: 7, highestEpoch: 7 });
  });

  it("NOTHING makes it retry later with a doubling delay capped at retryMaxMs", () => {
    const s = server();
    const delays: number[] = [];
    let at = 0;
    for (let i = 0; i < 7; i++) {
      expect(s.send(tick(at))).toEqual([askRegistry("SERVER", at)]);
      s.send(answer(NOTHING, at));
      const retryAt = s.context.askAt;
      expect(s.send(tick(retryAt - 1))).toEqual([]);
      delays.push(retryAt - (at + 5));
      at = retryAt;
    }
    expect(delays).toEqual([100, 200, 400, 800, 1_000, 1_000, 1_000]);
    expect(s.state).toBe("starting");
  });

  it("a late COORD that reaches a worker still makes it coordinator", () => {
    const s = worker();
    expect(s.send(answer(COORD(9), 0, 50))).toEqual([
      announce(SELF, 9, "elected"),
      broadcast("ELECTED", 9),
      broadcast("STATUS", 9),
    ]);
    expect(s.state).toBe("coordinator");
    expect(s.context.lease?.validUntil).toBe(360);
  });

  it("a COORD that arrives after the lease it grants has run out announces no term", () => {
    const s = worker();
    const outputs = s.send(answer(COORD(9), 0, 400));
    expect(outputs).not.toContainEqual(announce(SELF, 9, "elected"));
    expect(outputs).not.toContainEqual(broadcast("ELECTED", 9));
  });
});

describe("server: holding a term", () => {
  it("a coordinator renews every renewMs with the last revision as expected, one renewal at a time", () => {
    const s = coordinator();
    expect(s.send(tick(99))).toEqual([]);
    expect(s.send(tick(100))).toEqual([renewLease(7, 100)]);
    expect(s.send(tick(200), tick(300))).toEqual([]);
    s.send(renewed(12, 100, 310));
    expect(s.send(tick(320))).toEqual([renewLease(12, 320)]);
  });

  it("an acknowledged renewal extends the lease from its sentAt", () => {
    const s = coordinator();
    s.send(tick(100), renewed(12, 100, 250));
    expect(s.context.lease).toEqual({ revision: 12, validUntil: 460, renewing: false, lastRenewAt: 100 });
    expect(s.send(tick(459))).toEqual([renewLease(12, 459)]);
    expect(s.state).toBe("coordinator");
  });

  it("a coordinator steps down on the first tick at or after validUntil even if renewals are stuck", () => {
    const s = coordinator();
    s.send(tick(100));
    expect(s.send(tick(359))).toEqual([]);
    expect(s.send(tick(360))).toEqual([announce(null, 7, "lease expired")]);
    expect(s.state).toBe("worker");
    expect(s.context).toMatchObject({ lease: null, coordinator: null, stepDown: "lease expired" });
  });

  it("a lost renewal compare-and-set makes it step down as replaced", () => {
    const s = coordinator();
    s.send(tick(100));
    expect(s.send({ type: "lease.conflict", at: 110 })).toEqual([announce(null, 7, "replaced")]);
    expect(s.state).toBe("worker");
    expect(s.context.stepDown).toBe("replaced");
  });

  it("a renewal the store could not take is tried again on the next tick due", () => {
    const s = coordinator();
    s.send(tick(100), { type: "lease.unavailable", at: 150 });
    expect(s.send(tick(199))).toEqual([]);
    expect(s.send(tick(200))).toEqual([renewLease(7, 200)]);
  });

  it("a coordinator sends STATUS every statusMs", () => {
    const s = coordinator();
    for (let at = 100; at <= 1_000; at += 100) s.send(tick(at), renewed(at, at));
    expect(s.send(tick(1_004))).toEqual([]);
    expect(s.send(tick(1_005))).toEqual([broadcast("STATUS", 7)]);
  });

  it.each(["STATUS", "ELECTED"] as const)("a %s from a newer epoch makes a coordinator step down", (kind) => {
    const s = coordinator();
    // A STATUS without a reply subject is answered with an ALIVE to every server.
    const alive = kind === "STATUS" ? [broadcast("ALIVE", 9)] : [];
    expect(s.send(peer(signal(kind, 4, 9), 50))).toEqual([announce(null, 7, "replaced"), ...alive]);
    expect(s.state).toBe("worker");
    expect(s.context).toMatchObject({ coordinator: 4, epoch: 9, highestEpoch: 9, lease: null });
  });

  it("a registry view of a newer epoch makes a coordinator step down", () => {
    const s = coordinator();
    expect(s.send(view(4, 9, true, 50))).toEqual([announce(null, 7, "replaced")]);
    expect(s.state).toBe("worker");
    expect(s.context).toMatchObject({ coordinator: 4, epoch: 9 });
  });

  it("a coordinator stopping gives the term back and announces it stepped down", () => {
    const s = coordinator();
    s.send(tick(100), renewed(12, 100));
    expect(s.send({ type: "server.stop", at: 150 })).toEqual([
      { type: "releaseLease", params: { expected: 12, epoch: 7 } },
      announce(null, 7, "stopped"),
    ]);
    expect(s.state).toBe("stopped");
    expect(s.status).toBe("done");
  });
});

describe("server: when the next tick is due", () => {
  type Server = ReturnType<typeof server>;
  const due = (s: Server) => serverTickDue(s.state as ServerState, s.context);

  /** A tick just before the instant due changes nothing; the tick at it does something. */
  function tickAtDue(s: Server): ServerOutput[] {
    const at = due(s);
    if (at === undefined) throw new Error("no tick is due");
    const before = { state: s.state, context: s.context };
    expect(s.send(tick(at - 1))).toEqual([]);
    expect({ state: s.state, context: s.context }).toEqual(before);
    return s.send(tick(at));
  }

  it("a starting server is due when it asks, and not while its question is under way", () => {
    const s = server();
    expect(due(s)).toBe(0);
    expect(s.send(tick(0))).toEqual([askRegistry("SERVER", 0)]);
    expect(due(s)).toBeUndefined();
    s.send(answer(NOTHING, 0));
    expect(due(s)).toBe(105);
    expect(tickAtDue(s)).toEqual([askRegistry("SERVER", 105)]);
  });

  it("a worker waits for an event: no tick is due", () => {
    expect(due(worker())).toBeUndefined();
  });

  it("a coordinator is due at its next renewal, STATUS or the end of its lease, whichever comes first", () => {
    const s = coordinator();
    expect(due(s)).toBe(100);
    expect(tickAtDue(s)).toEqual([renewLease(7, 100)]);
    // The renewal is under way: the lease's end (360) comes before the next STATUS (1,005).
    expect(due(s)).toBe(360);
    s.send(renewed(8, 100, 110));
    expect(due(s)).toBe(200);
    for (let at = 200; at <= 1_000; at += 100) {
      expect(tickAtDue(s)).toEqual([renewLease(at / 100 + 6, at)]);
      s.send(renewed(at / 100 + 7, at, at + 5));
    }
    expect(due(s)).toBe(1_005);
    expect(tickAtDue(s)).toEqual([broadcast("STATUS", 7)]);
  });

  it("a coordinator whose renewals are stuck is due when its lease runs out, and steps down then", () => {
    const s = coordinator();
    s.send(tick(100));
    expect(tickAtDue(s)).toEqual([announce(null, 7, "lease expired")]);
    expect(s.state).toBe("worker");
    expect(due(s)).toBeUndefined();
  });

  it("a candidate is due when its rank's stagger has passed", () => {
    const s = worker();
    s.send(peer(hello(1), 10), view(2, 7, false, 400));
    expect(s.state).toBe("candidate");
    expect(due(s)).toBe(400 + timings.staggerMs);
    expect(tickAtDue(s)).toEqual([askRegistry("ELECTED", 400 + timings.staggerMs)]);
    expect(due(s)).toBeUndefined();
  });

  it("a late tick does what every tick it stands for would have done first", () => {
    const s = coordinator();
    // Stalled from 50 to 2,000: the lease ran out, so it steps down before it renews or sends STATUS.
    expect(s.send(tick(2_000))).toEqual([announce(null, 7, "lease expired")]);
    expect(due(s)).toBeUndefined();
  });

  it("a stopped server is never due", () => {
    const s = coordinator();
    s.send({ type: "server.stop", at: 50 });
    expect(due(s)).toBeUndefined();
  });
});

describe("server: other servers", () => {
  it("STATUS and ELECTED from an epoch older than highestEpoch are dropped", () => {
    for (const s of [worker(), coordinator()]) {
      const before = { coordinator: s.context.coordinator, epoch: s.context.epoch };
      expect(s.send(peer(signal("STATUS", 5, 4), 50, "inbox.1"), peer(signal("ELECTED", 5, 4), 60))).toEqual(
        [],
      );
      expect(s.context).toMatchObject({ ...before, dropped: 2 });
    }
  });

  it("STATUS and PING with a reply subject are answered with ALIVE", () => {
    const s = worker();
    expect(
      s.send(peer(signal("STATUS", 2, 7), 50, "inbox.1"), peer(signal("PING", 4, 7), 60, "inbox.2")),
    ).toEqual([
      { type: "replyAlive", params: { reply: "inbox.1" } },
      { type: "replyAlive", params: { reply: "inbox.2" } },
    ]);
    expect(s.send(peer(signal("PING", 4, 7), 70))).toEqual([]);
  });

  it("SERVER and ALIVE add and refresh the server list, and a server ignores its own messages", () => {
    const s = server();
    s.send(peer(hello(4, "passive"), 10), peer(hello(SELF), 10));
    expect(s.context.servers).toEqual({ 4: { type: "passive", incarnation: 1, files: [], seenAt: 10 } });
    s.send(peer(alive(4, [{ name: "a", version: 2, sha256: "0".repeat(64) }]), 20));
    expect(s.context.servers["4"]).toEqual({
      type: "active",
      incarnation: 1,
      files: [{ name: "a", version: 2, sha256: "0".repeat(64) }],
      seenAt: 20,
    });
    // A SERVER from a restart keeps the files last heard; any message refreshes.
    s.send(peer(hello(4, "active", 2), 30), peer(signal("PING", 4, 0), 40));
    expect(s.context.servers["4"]).toMatchObject({
      incarnation: 2,
      files: [{ name: "a", version: 2, sha256: "0".repeat(64) }],
      seenAt: 40,
    });
    s.send({ type: "peer.gone", node: 4, at: 50 });
    expect(s.context.servers).toEqual({});
  });

  it("ELECTION removes the old coordinator from the list, unless it is for an older epoch", () => {
    const s = worker();
    s.send(peer(hello(2), 10), peer(hello(4), 10));
    s.send(peer(signal("ELECTION", 4, 6), 20));
    expect(Object.keys(s.context.servers)).toEqual(["2", "4"]);
    s.send(peer(signal("ELECTION", 4, 7), 30));
    expect(Object.keys(s.context.servers)).toEqual(["4"]);
  });

  it("onPeerMessage leaves the context it is given untouched", () => {
    const context = initialServer(input());
    const step = onPeerMessage(context, hello(4), null, 10);
    expect(context.servers).toEqual({});
    expect(Object.keys(step.context.servers)).toEqual(["4"]);
  });
});

describe("server: elections", () => {
  it("a worker whose registry view says the coordinator expired starts an election and becomes a candidate", () => {
    const s = worker();
    expect(s.send(view(2, 7, false, 400))).toEqual([{ type: "startElection", params: { epoch: 7 } }]);
    expect(s.state).toBe("candidate");
  });

  it("a worker whose registry view names no coordinator becomes a candidate without ELECTION", () => {
    const s = worker();
    expect(s.send(view(null, 7, false, 400))).toEqual([]);
    expect(s.state).toBe("candidate");
  });

  it("candidateRank puts live actives first, then the lowest id, within 3 × statusMs", () => {
    const seen = (type: ServerType, seenAt: number) => ({ type, incarnation: 1, files: [], seenAt });
    const context: ServerContext = {
      ...initialServer(input("passive")),
      servers: {
        0: seen("passive", 0),
        1: seen("active", 100),
        5: seen("active", 0),
        9: seen("active", 3_000),
      },
    };
    expect(candidateRank(context, 3_000, null)).toBe(4);
    // Seen more than three STATUS periods ago: not counted.
    expect(candidateRank(context, 3_001, null)).toBe(2);
    expect(candidateRank(context, 3_001, 1)).toBe(1);
  });

  it("a candidate waits rank × staggerMs before asking ELECTED, the expired coordinator excluded", () => {
    const s = worker();
    // Node 0 was last heard too long ago; node 2 is the coordinator that expired.
    s.send(peer(hello(0), 2));
    s.send(peer(hello(1), 500), peer(hello(2), 500), peer(hello(4), 500), peer(hello(6, "passive"), 500));
    s.send(view(2, 7, false, 3_003));
    expect(candidateRank(s.context, 3_003, 2)).toBe(1);
    expect(s.send(tick(3_027))).toEqual([]);
    expect(s.send(tick(3_028))).toEqual([askRegistry("ELECTED", 3_028)]);
    expect(s.send(answer(COORD(10), 3_028))).toContainEqual(announce(SELF, 10, "elected"));
    expect(s.state).toBe("coordinator");
  });

  it("a candidate told NOTHING asks again after retryMs", () => {
    const s = worker();
    s.send(view(2, 7, false, 400), tick(400), answer(NOTHING, 400));
    expect(s.send(tick(504))).toEqual([]);
    expect(s.send(tick(505))).toEqual([askRegistry("ELECTED", 505)]);
  });

  it("a candidate that learns of another live coordinator becomes a worker", () => {
    const s = worker();
    s.send(view(2, 7, false, 400));
    expect(s.send(view(4, 8, true, 410))).toEqual([]);
    expect(s.state).toBe("worker");
    expect(s.context).toMatchObject({ coordinator: 4, epoch: 8, highestEpoch: 8 });
  });
});

describe("server: the machine", () => {
  it("keeps a context that survives a CBOR round trip", () => {
    const s = coordinator();
    s.send(
      peer(hello(4, "passive"), 10),
      peer(alive(5, [{ name: "f", version: 3, sha256: "a".repeat(64) }]), 20),
      tick(100),
    );
    expect(s.context.lease?.renewing).toBe(true);
    expect(decode(encode(s.context), "cbor")).toEqual({ ok: true, value: s.context });
  });

  it("fails loudly when the runtime did not provide its effects", () => {
    const actor = createActor(serverMachine, { input: input() });
    const errors: unknown[] = [];
    actor.subscribe({ error: (e) => errors.push(e) });
    actor.start();
    expect(errors.map((e) => (e as Error).name)).toEqual(["NotProvidedError"]);
  });
});

describe("server: its own registry's PING", () => {
  it("answers a PING from its own node (a FAILED about this coordinator) with ALIVE", () => {
    const s = server();
    const out = s.send({
      type: "peer.message",
      message: { kind: "PING", from: SELF, incarnation: 1, epoch: 0 },
      reply: "_INBOX.self",
      at: 0,
    });
    expect(out).toEqual([{ type: "replyAlive", params: { reply: "_INBOX.self" } }]);
  });
});
