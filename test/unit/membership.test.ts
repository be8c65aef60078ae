// The membership reducer in isolation (SPEC 4, 9): `step` over a plain context,
// time carried by the events, no network. Default timings: heartbeat 200 ms,
// suspect after 600 ms, unreachable after 1 s, down 5 s later, probe after
// 250 ms, join window 300 ms; the driver ticks every 25 ms.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  componentWins,
  defaultTimings,
  downList,
  initialContext,
  MAX_LOCAL_HEALTH,
  type Member,
  type MembershipContext,
  type MembershipEvent,
  type MembershipOutput,
  membersDigest,
  step,
  summarize,
  type View,
  type ViewChange,
  type ViewSummary,
} from "../../machines/membership.js";
import { encode } from "../../protocol/codec.js";
import { heartbeatSchema } from "../../protocol/membershipMessages.js";
import { PROTOCOL_VERSION } from "../../protocol/messages.js";

const timings = defaultTimings();
/** How often the driver ticks (the runtime ticks only when something is due; ticking more often changes nothing). */
const TICK_MS = 25;
const self: Member = { node: 1, incarnation: 1 };
const peer = (node: number, incarnation = 1): Member => ({ node, incarnation });

/** Drives one node's context through time: regular ticks, and heartbeats from the peers that talk. */
class Driver {
  /** The context after the last event: each step returns the next one. */
  ctx: MembershipContext;
  now = 0;

  constructor(options: { quorum?: boolean; viewId?: number } = {}) {
    this.ctx = initialContext({
      self,
      timings,
      quorum: options.quorum ?? false,
      at: 0,
      ...(options.viewId !== undefined ? { viewId: options.viewId } : {}),
    });
  }

  send(event: MembershipEvent): MembershipOutput[] {
    const { context, outputs } = step(this.ctx, event);
    this.ctx = context;
    return outputs;
  }

  hear(from: Member, options: { view?: View; down?: readonly Member[] } = {}): MembershipOutput[] {
    return this.send({
      type: "peer.heartbeat",
      from,
      view: summarize(options.view ?? { id: 0, members: [from.node] }, from.node),
      down: options.down ?? [],
      at: this.now,
    });
  }

  /** Ticks every tickMs for `ms`; each peer in `talking` heartbeats on every heartbeat period. */
  advance(ms: number, talking: readonly Member[] = []): MembershipOutput[] {
    const out: MembershipOutput[] = [];
    const until = this.now + ms;
    while (this.now + TICK_MS <= until) {
      const before = this.now;
      this.now += TICK_MS;
      if (Math.floor(this.now / timings.heartbeatMs) > Math.floor(before / timings.heartbeatMs)) {
        for (const m of talking) out.push(...this.hear(m));
      }
      out.push(...this.send({ type: "clock.tick", at: this.now, due: this.now }));
    }
    return out;
  }

  /** Hears `peers` at once, then lets the join window close with them talking. */
  joinWith(peers: readonly Member[]): ViewChange {
    for (const m of peers) this.hear(m);
    const joined = announced(this.advance(timings.joinWindowMs, peers));
    expect(joined).toHaveLength(1);
    return joined[0]!;
  }
}

const announced = (outputs: readonly MembershipOutput[]): ViewChange[] =>
  outputs.flatMap((o) => (o.type === "announce" ? [o.change] : []));

describe("the membership reducer", () => {
  it("a starting node announces nothing during its join window, then one JOIN of itself and every peer it heard", () => {
    const d = new Driver();
    d.hear(peer(3));
    const quiet = d.advance(timings.joinWindowMs - TICK_MS, [peer(3)]);
    d.hear(peer(2));
    expect(announced(quiet)).toEqual([]);
    const changes = announced(d.advance(TICK_MS, [peer(2), peer(3)]));
    expect(changes).toEqual([
      {
        event: "JOIN",
        view: { id: 1, members: [1, 2, 3] },
        changed: [self, peer(2), peer(3)],
        cause: "started",
        at: timings.joinWindowMs,
      },
    ]);
    expect(d.ctx.phase).toBe("member");
  });

  it("a heartbeat from a node it has never heard is a JOIN of that node", () => {
    const d = new Driver();
    d.joinWith([peer(2)]);
    const changes = announced(d.hear(peer(5, 3)));
    expect(changes).toMatchObject([
      { event: "JOIN", view: { id: 2, members: [1, 2, 5] }, changed: [peer(5, 3)], cause: "new node" },
    ]);
  });

  it("a peer silent for longer than probeAfter is probed, then again once per heartbeat period", () => {
    const d = new Driver();
    d.joinWith([peer(2)]);
    const lastHeard = d.ctx.watch[2]!.lastHeard;
    const probes: number[] = [];
    for (let i = 0; i < 24; i++) {
      const out = d.advance(TICK_MS);
      if (out.some((o) => o.type === "probe" && o.peer.node === 2)) probes.push(d.now);
    }
    expect(probes.length).toBeGreaterThanOrEqual(2);
    expect(probes[0]! - lastHeard).toBeGreaterThanOrEqual(timings.probeAfterMs);
    expect(probes[0]! - lastHeard).toBeLessThan(timings.probeAfterMs + TICK_MS);
    for (let i = 1; i < probes.length; i++) {
      expect(probes[i]! - probes[i - 1]!).toBeGreaterThanOrEqual(timings.heartbeatMs);
    }
  });

  it("a probe that finds no responders makes the peer unreachable at once: a PARTITION", () => {
    const d = new Driver();
    d.joinWith([peer(2), peer(3)]);
    const changes = announced(d.send({ type: "probe.noResponders", peer: peer(2), at: d.now }));
    expect(changes).toMatchObject([{ event: "PARTITION", view: { members: [1, 3] }, changed: [peer(2)] }]);
    expect(d.ctx.peers[2]?.state).toBe("unreachable");
    // A second answer of the same kind changes nothing; the observer only says it again.
    expect(d.send({ type: "probe.noResponders", peer: peer(2), at: d.now })).toEqual([
      { type: "alert", about: peer(2), state: "unreachable", cause: "still unreachable" },
    ]);
    expect(d.ctx.peers[2]?.state).toBe("unreachable");
  });

  it("a silent peer is suspected without an event, then PARTITIONed, then DISCONNECTed after downAfter", () => {
    const d = new Driver();
    d.joinWith([peer(2), peer(3)]);
    const silentFrom = d.ctx.watch[2]!.lastHeard;
    const quiet = d.advance(silentFrom + timings.suspectAfterMissed * timings.heartbeatMs - d.now, [peer(3)]);
    expect(announced(quiet)).toEqual([]);
    expect(d.ctx.peers[2]?.state).toBe("suspect");
    expect(d.ctx.view.members).toEqual([1, 2, 3]);

    const partition = announced(
      d.advance(silentFrom + timings.unreachableAfterMissed * timings.heartbeatMs - d.now, [peer(3)]),
    );
    expect(partition).toMatchObject([
      { event: "PARTITION", view: { members: [1, 3] }, changed: [peer(2)], cause: "stopped answering" },
    ]);
    const partitionedAt = d.now;

    const beforeDown = announced(d.advance(timings.downAfterMs - TICK_MS, [peer(3)]));
    expect(beforeDown).toEqual([]);
    const down = announced(d.advance(TICK_MS, [peer(3)]));
    expect(down).toMatchObject([
      {
        event: "DISCONNECT",
        view: { members: [1, 3] },
        changed: [peer(2)],
        cause: "unreachable longer than downAfter",
        at: partitionedAt + timings.downAfterMs,
      },
    ]);
    expect(downList(d.ctx)).toEqual([peer(2)]);
  });

  it("a heartbeat from an unreachable peer of the same incarnation is a MERGE", () => {
    const d = new Driver();
    d.joinWith([peer(2), peer(3)]);
    d.send({ type: "probe.noResponders", peer: peer(2), at: d.now });
    const changes = announced(d.hear(peer(2)));
    expect(changes).toMatchObject([
      { event: "MERGE", view: { members: [1, 2, 3] }, changed: [peer(2)], cause: "reachable again" },
    ]);
    expect(d.ctx.peers[2]?.state).toBe("alive");
  });

  it("a probe answer from an unreachable peer of the same incarnation is a MERGE too", () => {
    const d = new Driver();
    d.joinWith([peer(2)]);
    d.send({ type: "probe.noResponders", peer: peer(2), at: d.now });
    const changes = announced(d.send({ type: "probe.answered", from: peer(2), at: d.now }));
    expect(changes).toMatchObject([{ event: "MERGE", changed: [peer(2)] }]);
  });

  it("a heartbeat from a peer declared down, same incarnation, is ignored", () => {
    const d = new Driver();
    d.joinWith([peer(2), peer(3)]);
    d.advance(timings.unreachableAfterMissed * timings.heartbeatMs + timings.downAfterMs, [peer(3)]);
    expect(d.ctx.peers[2]?.state).toBe("down");
    const view = d.ctx.view;
    expect(d.hear(peer(2))).toEqual([]);
    expect(d.ctx.peers[2]?.state).toBe("down");
    expect(d.ctx.view).toEqual(view);
    // It stays listed in our heartbeats, which is how it learns to rejoin.
    expect(downList(d.ctx)).toEqual([peer(2)]);
  });

  it("a new incarnation of a member is a DISCONNECT of the old one, then a JOIN of the new one", () => {
    const d = new Driver();
    d.joinWith([peer(2), peer(3)]);
    const changes = announced(d.hear(peer(2, 2)));
    expect(changes).toMatchObject([
      {
        event: "DISCONNECT",
        view: { id: 2, members: [1, 3] },
        changed: [peer(2, 1)],
        cause: "restarted as a new incarnation",
      },
      { event: "JOIN", view: { id: 3, members: [1, 2, 3] }, changed: [peer(2, 2)], cause: "restarted" },
    ]);
    // A late heartbeat of the old incarnation changes nothing.
    expect(d.hear(peer(2, 1))).toEqual([]);
  });

  it("a new incarnation of a peer already declared down is only a JOIN", () => {
    const d = new Driver();
    d.joinWith([peer(2), peer(3)]);
    d.advance(timings.unreachableAfterMissed * timings.heartbeatMs + timings.downAfterMs, [peer(3)]);
    const changes = announced(d.hear(peer(2, 2)));
    expect(changes).toMatchObject([
      { event: "JOIN", changed: [peer(2, 2)], cause: "rejoined as a new incarnation" },
    ]);
  });

  it("a graceful leave is a DISCONNECT at once", () => {
    const d = new Driver();
    d.joinWith([peer(2), peer(3)]);
    const changes = announced(d.send({ type: "peer.leave", from: peer(3), at: d.now }));
    expect(changes).toMatchObject([
      { event: "DISCONNECT", view: { members: [1, 2] }, changed: [peer(3)], cause: "left", at: d.now },
    ]);
    // A leave of an incarnation it does not know is ignored.
    expect(d.send({ type: "peer.leave", from: peer(2, 7), at: d.now })).toEqual([]);
  });

  it("losing its own link is one PARTITION of every peer, and no probes while it lasts", () => {
    const d = new Driver();
    d.joinWith([peer(2), peer(3)]);
    const changes = announced(d.send({ type: "link.down", at: d.now }));
    expect(changes).toMatchObject([
      {
        event: "PARTITION",
        view: { members: [1] },
        changed: [peer(2), peer(3)],
        cause: "lost own NATS link",
      },
    ]);
    expect(d.send({ type: "probe.noResponders", peer: peer(2), at: d.now })).toEqual([]);
    expect(d.advance(2_000).filter((o) => o.type === "probe")).toEqual([]);
  });

  it("a tick after a long stall credits the peers the stall instead of PARTITIONing them", () => {
    const d = new Driver();
    d.joinWith([peer(2), peer(3)]);
    d.now += 3 * timings.unreachableAfterMissed * timings.heartbeatMs;
    expect(d.send({ type: "clock.tick", at: d.now })).toEqual([]);
    expect(d.ctx.peers[2]?.state).toBe("alive");
    // The heartbeats queued during the stall arrive; nobody is partitioned.
    const after = d.advance(timings.heartbeatMs, [peer(2), peer(3)]);
    expect(announced(after)).toEqual([]);
    expect(d.ctx.view.members).toEqual([1, 2, 3]);
  });

  it("an overloaded node (its ticks come late) waits longer before it PARTITIONs a silent peer, but believes no responders at once", () => {
    const d = new Driver();
    d.joinWith([peer(2), peer(3)]);
    // Ticks each 100 ms later than the runtime meant them: local health worsens, up to its cap.
    for (let i = 0; i < 6; i++) {
      d.now += 150;
      d.send({ type: "clock.tick", at: d.now, due: d.now - 100 });
      d.hear(peer(2));
      d.hear(peer(3));
    }
    expect(d.ctx.localHealth).toBe(MAX_LOCAL_HEALTH);
    // Peer 2 falls silent: at the usual limit (5 heartbeats) it is still in the view.
    const silentFrom = d.now;
    const early = announced(d.advance(2 * timings.unreachableAfterMissed * timings.heartbeatMs, [peer(3)]));
    expect(early).toEqual([]);
    expect(d.ctx.peers[2]?.state).not.toBe("unreachable");
    // Punctual ticks mend local health one step a beacon period.
    expect(d.ctx.localHealth).toBeLessThan(MAX_LOCAL_HEALTH);
    // NATS's word is not slowed down.
    const changes = announced(d.send({ type: "probe.noResponders", peer: peer(2), at: d.now }));
    expect(changes).toMatchObject([{ event: "PARTITION", changed: [peer(2)] }]);
    expect(d.now - silentFrom).toBeGreaterThanOrEqual(timings.unreachableAfterMissed * timings.heartbeatMs);
  });

  describe("a heartbeat that lists this node as down", () => {
    it("in a mutual partition, the winning side declares the sender down and stays", () => {
      const d = new Driver();
      d.joinWith([peer(2), peer(3)]);
      d.send({ type: "probe.noResponders", peer: peer(2), at: d.now });
      const out = d.hear(peer(2), { view: { id: 9, members: [2] }, down: [self] });
      expect(out.filter((o) => o.type === "rejoin")).toEqual([]);
      expect(announced(out)).toMatchObject([
        { event: "DISCONNECT", view: { members: [1, 3] }, changed: [peer(2)] },
      ]);
      expect(d.ctx.peers[2]?.state).toBe("down");
    });

    it("in a mutual partition, the losing side is told to rejoin with its view id", () => {
      const d = new Driver();
      d.joinWith([peer(2)]);
      d.send({ type: "probe.noResponders", peer: peer(2), at: d.now });
      const out = d.hear(peer(2), { view: { id: 9, members: [2, 3] }, down: [self] });
      expect(out).toEqual([{ type: "rejoin", reason: "declared down by node 2", viewId: d.ctx.view.id }]);
    });

    it("from a peer it still hears, the node rejoins whatever the sizes", () => {
      const d = new Driver();
      d.joinWith([peer(2), peer(3)]);
      const out = d.hear(peer(2), { view: { id: 9, members: [2] }, down: [self] });
      expect(out.map((o) => o.type)).toEqual(["rejoin"]);
    });

    it("that names an older incarnation of this node is an ordinary heartbeat", () => {
      const d = new Driver();
      d.joinWith([peer(2)]);
      expect(d.hear(peer(2), { down: [{ node: 1, incarnation: 0 }] })).toEqual([]);
    });
  });

  it("a step never writes to the context it is given: it returns the next one", () => {
    const member = fc.record({
      node: fc.integer({ min: 1, max: 5 }),
      incarnation: fc.integer({ min: 1, max: 3 }),
    });
    const event = fc.oneof(
      fc.record({
        type: fc.constant("peer.heartbeat" as const),
        from: member,
        viewId: fc.integer({ min: 0, max: 6 }),
        down: fc.array(member, { maxLength: 2 }),
      }),
      fc.record({ type: fc.constantFrom("peer.leave" as const, "probe.answered" as const), from: member }),
      fc.record({ type: fc.constant("probe.noResponders" as const), peer: member }),
      fc.record({ type: fc.constant("clock.tick" as const), gap: fc.constantFrom(25, 25, 25, 400) }),
      fc.record({ type: fc.constantFrom("link.down" as const, "link.up" as const) }),
    );
    // Frozen all the way down: in strict mode any write to it throws.
    const deepFreeze = <T>(value: T): T => {
      if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
        Object.freeze(value);
        for (const inner of Object.values(value)) deepFreeze(inner);
      }
      return value;
    };
    fc.assert(
      fc.property(fc.array(event, { maxLength: 120 }), (events) => {
        let ctx = initialContext({ self, timings, quorum: true, at: 0 });
        let at = 0;
        for (const e of events) {
          at += e.type === "clock.tick" ? e.gap : 5;
          const before = structuredClone(deepFreeze(ctx));
          const input: MembershipEvent =
            e.type === "peer.heartbeat"
              ? {
                  type: e.type,
                  from: e.from,
                  view: summarize({ id: e.viewId, members: [e.from.node] }, e.from.node),
                  down: e.down,
                  at,
                }
              : e.type === "clock.tick" || e.type === "link.down" || e.type === "link.up"
                ? { type: e.type, at }
                : { ...e, at };
          const next = step(ctx, input).context;
          expect(ctx).toEqual(before);
          ctx = next;
        }
      }),
    );
  });

  it("exactly one of two components that declared each other down wins", () => {
    const members = fc.uniqueArray(fc.integer({ min: 1, max: 12 }), { maxLength: 6 }).map((m) => m.sort());
    fc.assert(
      fc.property(
        members,
        members,
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 12 }),
        fc.nat(),
        fc.nat(),
        (a, b, nodeA, nodeB, idA, idB) => {
          fc.pre(nodeA !== nodeB);
          const ours = summarize({ id: idA, members: a }, nodeA);
          const theirs = summarize({ id: idB, members: b }, nodeB);
          expect(componentWins(ours, nodeA, theirs, nodeB)).toBe(!componentWins(theirs, nodeB, ours, nodeA));
        },
      ),
    );
  });

  it("two member lists have the same digest only when they are the same list", () => {
    const list = fc
      .uniqueArray(fc.integer({ min: 0, max: 65_535 }), { maxLength: 40 })
      .map((m) => m.sort((x, y) => x - y));
    fc.assert(
      fc.property(list, list, (a, b) => {
        const same = a.length === b.length && a.every((n, i) => n === b[i]);
        expect(membersDigest(a) === membersDigest(b)).toBe(same);
      }),
    );
    // Lists that differ in one member, or by one member more, among 1,000.
    const all = Array.from({ length: 1_000 }, (_, i) => i + 1);
    const digests = new Set([
      membersDigest(all),
      membersDigest(all.slice(1)),
      membersDigest([0, ...all.slice(1)]),
    ]);
    expect(digests.size).toBe(3);
    expect(Number.isSafeInteger(membersDigest(all))).toBe(true);
  });

  it("a heartbeat's view summary is the same size for 3 members and for 1,000", () => {
    const small = summarize({ id: 7, members: [1, 2, 3] }, 1);
    const large = summarize({ id: 7, members: Array.from({ length: 1_000 }, (_, i) => i + 1) }, 1);
    expect(Object.keys(large)).toEqual(Object.keys(small));
    expect(large).toMatchObject({ id: 7, size: 1_000, first: 1 });
    // On the wire, as Membership publishes it and the schema accepts it: under 100 bytes either way.
    const wire = (view: ViewSummary) => {
      const hb = { v: PROTOCOL_VERSION, node: 1, incarnation: 3, seq: 123_456, view, down: [] };
      expect(heartbeatSchema.safeParse(hb).success).toBe(true);
      return encode(hb).byteLength;
    };
    expect(wire(small)).toBeLessThan(100);
    expect(wire(large)).toBeLessThan(100);
  });

  describe("view id sync", () => {
    it("a member adopts a higher view id from a peer with the same members, without an event", () => {
      const d = new Driver();
      d.joinWith([peer(2)]);
      expect(d.hear(peer(2), { view: { id: 42, members: [1, 2] } })).toEqual([]);
      expect(d.ctx.view).toEqual({ id: 42, members: [1, 2] });
      // Never backwards.
      d.hear(peer(2), { view: { id: 7, members: [1, 2] } });
      expect(d.ctx.view.id).toBe(42);
    });

    it("a view id from a peer with other members is not adopted", () => {
      const d = new Driver();
      d.joinWith([peer(2)]);
      d.hear(peer(2), { view: { id: 42, members: [1, 2, 3] } });
      expect(d.ctx.view.id).toBe(1);
    });

    it("a joining node numbers its first view after the highest view id it heard", () => {
      const d = new Driver();
      d.hear(peer(2), { view: { id: 42, members: [2] } });
      expect(d.ctx.view.id).toBe(0);
      const joined = announced(d.advance(timings.joinWindowMs));
      expect(joined).toMatchObject([{ event: "JOIN", cause: "started", view: { id: 43, members: [1, 2] } }]);
    });

    it("a joining node that heard the others announce its arrival takes that very view id", () => {
      const d = new Driver();
      d.hear(peer(2), { view: { id: 42, members: [2] } });
      d.hear(peer(2), { view: { id: 43, members: [1, 2] } });
      const joined = announced(d.advance(timings.joinWindowMs));
      expect(joined).toMatchObject([{ event: "JOIN", view: { id: 43, members: [1, 2] } }]);
    });
  });

  describe("quorum mode", () => {
    const five = [peer(2), peer(3), peer(4), peer(5)];

    it("a component without a majority of the last full view is a minority", () => {
      const d = new Driver({ quorum: true });
      d.joinWith(five);
      expect(d.ctx.minority).toBe(false);
      d.advance(timings.unreachableAfterMissed * timings.heartbeatMs + TICK_MS, [peer(2)]);
      expect(d.ctx.view.members).toEqual([1, 2]);
      expect(d.ctx.minority).toBe(true);
      // Declaring the others down does not make it the whole cluster.
      const down = announced(d.advance(timings.downAfterMs, [peer(2)]));
      expect(down).toMatchObject([{ event: "DISCONNECT", changed: [peer(3), peer(4), peer(5)] }]);
      expect(d.ctx.minority).toBe(true);
    });

    it("a component that keeps a majority is not a minority", () => {
      const d = new Driver({ quorum: true });
      d.joinWith(five);
      d.advance(timings.unreachableAfterMissed * timings.heartbeatMs + TICK_MS, [peer(2), peer(3)]);
      expect(d.ctx.view.members).toEqual([1, 2, 3]);
      expect(d.ctx.minority).toBe(false);
    });

    it("without quorum mode nobody is ever a minority", () => {
      const d = new Driver();
      d.joinWith(five);
      d.advance(timings.unreachableAfterMissed * timings.heartbeatMs + TICK_MS);
      expect(d.ctx.view.members).toEqual([1]);
      expect(d.ctx.minority).toBe(false);
    });
  });
});
