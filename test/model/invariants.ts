// The invariants of the membership model (SPEC 4, 9), as pure checks over what
// the harness recorded: the events each node handed to its script queue, the
// events seen on the wire, and the views the nodes hold now. Each failure is an
// InvariantViolation naming the invariant and the observing incarnation.
import type { View } from "../../machines/membership.js";
import type { EventMessage } from "../../protocol/messages.js";

export class InvariantViolation extends Error {
  override name = "InvariantViolation";
  constructor(
    readonly invariant: string,
    readonly detail: string,
  ) {
    super(`${invariant}: ${detail}`);
  }
}

/** `node/incarnation`, the key of one observing (or observed) incarnation. */
export const incarnationKey = (node: number, incarnation: number): string => `${node}/${incarnation}`;

type Tracked = { incarnation: number; state: "in" | "unreachable" | "down" };

interface Replay {
  members: number[];
  viewId: number;
  /** What this incarnation's own events say about each peer. */
  peers: Map<number, Tracked>;
}

const sameList = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((n, i) => n === b[i]);

const fmtMembers = (m: readonly number[]) => `[${m.join(",")}]`;

export const describeEvent = (e: EventMessage): string =>
  `t=${e.at} n${e.node}/${e.incarnation} ${e.event} ${e.changed
    .map((m) => `${m.node}/${m.incarnation}`)
    .join(",")} => v${e.view.id} ${fmtMembers(e.view.members)} (${e.cause})`;

/**
 * Replays every observing incarnation's events in the order the script queues
 * got them and checks that they tell one consistent story:
 * - the first event of an incarnation is its own JOIN (cause "started") whose
 *   view is exactly the members it names, itself included;
 * - every later view is the previous one with the change applied: JOIN and
 *   MERGE add the changed nodes, PARTITION and DISCONNECT remove them;
 * - JOIN never names a node already in the view, nor an incarnation this
 *   observer already announced; MERGE names only a member this observer
 *   announced as PARTITIONed (same incarnation, not since DISCONNECTed);
 *   PARTITION names only current members; DISCONNECT names only incarnations
 *   this observer announced and has not DISCONNECTed yet;
 * - view ids strictly increase along a node's lineage (a rejoin continues it;
 *   a start after a crash or stop begins a new one);
 * - members are sorted, unique, and include the observer.
 * Returns the view each incarnation's events end on.
 */
export function replayEvents(
  events: readonly EventMessage[],
  freshStarts: ReadonlySet<string>,
): Map<string, View> {
  const replays = new Map<string, Replay>();
  const lineageId = new Map<number, number>();
  for (const e of events) {
    const key = incarnationKey(e.node, e.incarnation);
    const fail = (invariant: string, why: string): never => {
      throw new InvariantViolation(invariant, `${why}\n  at event ${describeEvent(e)}`);
    };
    const members = e.view.members;
    for (let i = 1; i < members.length; i++) {
      if (members[i - 1]! >= members[i]!) fail("views are sorted sets", `members ${fmtMembers(members)}`);
    }
    if (!members.includes(e.node)) fail("a node is a member of its own view", `n${e.node} missing`);

    let replay = replays.get(key);
    if (replay === undefined) {
      if (freshStarts.has(key)) lineageId.delete(e.node);
      if (e.event !== "JOIN" || e.cause !== "started") {
        fail("an incarnation's first event is its own JOIN", `first event is ${e.event} (${e.cause})`);
      }
      if (!e.changed.some((m) => m.node === e.node && m.incarnation === e.incarnation)) {
        fail("an incarnation's first event is its own JOIN", "it does not name the node itself");
      }
      const named = e.changed.map((m) => m.node).sort((a, b) => a - b);
      if (!sameList(named, members)) {
        fail(
          "events are consistent with views",
          `first view ${fmtMembers(members)} ≠ joined ${fmtMembers(named)}`,
        );
      }
      replay = { members: [...members], viewId: e.view.id, peers: new Map() };
      for (const m of e.changed) {
        if (m.node !== e.node) replay.peers.set(m.node, { incarnation: m.incarnation, state: "in" });
      }
      replays.set(key, replay);
    } else {
      if (e.event === "JOIN" && e.cause === "started")
        fail("one start per incarnation", "a second JOIN started");
      const next = new Set(replay.members);
      for (const m of e.changed) {
        const known = replay.peers.get(m.node);
        const label = `${m.node}/${m.incarnation}`;
        switch (e.event) {
          case "JOIN":
            if (next.has(m.node)) fail("no JOIN of a node already in the view", `${label} already a member`);
            if (known !== undefined && known.incarnation >= m.incarnation) {
              fail("no JOIN of an incarnation already announced", `${label}, known as ${known.incarnation}`);
            }
            next.add(m.node);
            replay.peers.set(m.node, { incarnation: m.incarnation, state: "in" });
            break;
          case "MERGE":
            if (known?.incarnation !== m.incarnation || known.state !== "unreachable") {
              fail(
                "MERGE only of a member PARTITIONed before",
                `${label} was ${known ? `${known.incarnation}:${known.state}` : "never announced"}`,
              );
            }
            next.add(m.node);
            replay.peers.set(m.node, { incarnation: m.incarnation, state: "in" });
            break;
          case "PARTITION":
            if (!next.has(m.node) || known?.incarnation !== m.incarnation || known.state !== "in") {
              fail("PARTITION only of a current member", `${label} was not in the view`);
            }
            next.delete(m.node);
            replay.peers.set(m.node, { incarnation: m.incarnation, state: "unreachable" });
            break;
          case "DISCONNECT":
            if (known?.incarnation !== m.incarnation || known.state === "down") {
              fail(
                "DISCONNECT only of an announced member",
                `${label} was ${known ? `${known.incarnation}:${known.state}` : "never announced"}`,
              );
            }
            next.delete(m.node);
            replay.peers.set(m.node, { incarnation: m.incarnation, state: "down" });
            break;
        }
      }
      const expected = [...next].sort((a, b) => a - b);
      if (!sameList(expected, members)) {
        fail(
          "events are consistent with views",
          `${fmtMembers(replay.members)} with ${e.event} gives ${fmtMembers(expected)}, event says ${fmtMembers(members)}`,
        );
      }
      replay.members = [...members];
      replay.viewId = e.view.id;
    }
    const last = lineageId.get(e.node);
    if (last !== undefined && e.view.id <= last) {
      fail("view ids strictly increase along a lineage", `v${e.view.id} after v${last}`);
    }
    lineageId.set(e.node, e.view.id);
  }
  const views = new Map<string, View>();
  for (const [key, r] of replays) views.set(key, { id: r.viewId, members: r.members });
  return views;
}

export interface CurrentView {
  readonly node: number;
  readonly incarnation: number;
  readonly view: View;
}

/** Replaying a member's events gives its current view: same members, and an id no lower (ids may be adopted silently). */
export function checkCurrentViews(
  current: readonly CurrentView[],
  replayed: ReadonlyMap<string, View>,
): void {
  for (const c of current) {
    const key = incarnationKey(c.node, c.incarnation);
    const last = replayed.get(key);
    if (last === undefined) {
      throw new InvariantViolation("every member announced its view", `n${key} is a member with no event`);
    }
    if (!sameList(last.members, c.view.members) || c.view.id < last.id) {
      throw new InvariantViolation(
        "replaying a node's events gives its current view",
        `n${key} holds v${c.view.id} ${fmtMembers(c.view.members)}, its events end on v${last.id} ${fmtMembers(last.members)}`,
      );
    }
  }
}

const sameEvent = (a: EventMessage, b: EventMessage) =>
  a.event === b.event &&
  a.at === b.at &&
  a.cause === b.cause &&
  a.view.id === b.view.id &&
  sameList(a.view.members, b.view.members) &&
  a.changed.length === b.changed.length &&
  a.changed.every((m, i) => m.node === b.changed[i]?.node && m.incarnation === b.changed[i]?.incarnation);

/**
 * Each event an incarnation published on `dvs.<c>.events` reached its script
 * queue exactly once and in the same order: the wire sequence (repeats of a
 * view id removed, since publication is at least once) is always a
 * prefix of the script sequence (it lags by the latency, and by the outbox
 * while the link is down), and equal to it for the incarnations in `complete`.
 */
export function checkScriptQueues(
  script: ReadonlyMap<string, readonly EventMessage[]>,
  wire: ReadonlyMap<string, readonly EventMessage[]>,
  complete: ReadonlySet<string>,
): void {
  for (const key of new Set([...wire.keys(), ...complete])) {
    const queued = script.get(key) ?? [];
    // Publication is at least once: an event not confirmed before a link loss
    // is published again after it, so the wire may repeat a view id.
    const seen = new Set<number>();
    const sent = (wire.get(key) ?? []).filter((e) => !seen.has(e.view.id) && seen.add(e.view.id));
    const n = Math.min(queued.length, sent.length);
    for (let i = 0; i < n; i++) {
      if (!sameEvent(queued[i]!, sent[i]!)) {
        throw new InvariantViolation(
          "each event reaches the script queue once, in order",
          `n${key} event #${i}: queued ${describeEvent(queued[i]!)}, published ${describeEvent(sent[i]!)}`,
        );
      }
    }
    if (sent.length > queued.length) {
      throw new InvariantViolation(
        "each event reaches the script queue once, in order",
        `n${key} published ${sent.length} events, queued only ${queued.length}; extra: ${describeEvent(sent[n]!)}`,
      );
    }
    if (complete.has(key) && sent.length < queued.length) {
      throw new InvariantViolation(
        "each event reaches the script queue once, in order",
        `n${key} queued ${queued.length} events, published ${sent.length}; missing: ${describeEvent(queued[n]!)}`,
      );
    }
  }
}

export interface MemberState {
  readonly node: number;
  readonly incarnation: number;
  /** Undefined while the node is still in its join window. */
  readonly view: View | undefined;
}

/** Every node of each component is a member holding the same view id, whose members are exactly the component. */
export function checkComponents(
  invariant: string,
  components: readonly (readonly number[])[],
  states: ReadonlyMap<number, MemberState>,
): void {
  for (const component of components) {
    const expected = [...component].sort((a, b) => a - b);
    let id: number | undefined;
    for (const node of expected) {
      const view = states.get(node)?.view;
      if (view === undefined) {
        throw new InvariantViolation(invariant, `n${node} of component ${fmtMembers(expected)} has no view`);
      }
      if (!sameList(view.members, expected)) {
        throw new InvariantViolation(
          invariant,
          `n${node} holds ${fmtMembers(view.members)}, its component is ${fmtMembers(expected)}`,
        );
      }
      if (id !== undefined && view.id !== id) {
        throw new InvariantViolation(
          invariant,
          `component ${fmtMembers(expected)} holds two view ids: v${id} and v${view.id} (n${node})`,
        );
      }
      id = view.id;
    }
  }
}
