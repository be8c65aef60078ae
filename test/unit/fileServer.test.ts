// The file store's server side (SPEC 8) alone: peer sessions are admitted up
// to maxSessions and one more is refused (BUSY), a held replica's hash is due
// for a check once verifyEveryMs has passed, and a stopped server stays so.
import { describe, expect, it } from "vitest";
import { createActor } from "xstate";
import {
  checkDue,
  type FileServerEvent,
  type FileServerInput,
  fileServerMachine,
} from "../../machines/fileServer.js";
import { NotProvidedError } from "../../machines/notProvided.js";
import { decode, encode } from "../../protocol/codec.js";

const input: FileServerInput = { maxSessions: 2, verifyEveryMs: 1_000 };

/** A server actor whose effects are recorded; `send` returns what it did for those events, in order. */
function server() {
  const effects: string[] = [];
  const machine = fileServerMachine.provide({
    actions: {
      runSession: (_, { ref }) => effects.push(`run:${ref}`),
      refuseSession: (_, { ref }) => effects.push(`busy:${ref}`),
    },
  });
  const actor = createActor(machine, { input }).start();
  return {
    send(...events: FileServerEvent[]): string[] {
      effects.length = 0;
      for (const event of events) actor.send(event);
      return [...effects];
    },
    get snapshot() {
      return actor.getSnapshot();
    },
  };
}

const offer = (ref: string): FileServerEvent => ({ type: "session.offered", ref });

describe("file server machine", () => {
  it("runs sessions up to maxSessions and answers one more BUSY", () => {
    const s = server();
    expect(s.send(offer("1"), offer("2"), offer("3"))).toEqual(["run:1", "run:2", "busy:3"]);
    expect(s.snapshot.context.running).toBe(2);
  });

  it("a session that ends makes room for the next", () => {
    const s = server();
    s.send(offer("1"), offer("2"));
    expect(s.send({ type: "session.ended" }, offer("3"))).toEqual(["run:3"]);
  });

  it("a replica never checked is due for a check, and one checked lately is not until verifyEveryMs passed", () => {
    const s = server();
    expect(checkDue(s.snapshot.context, "a/1", 0)).toBe(true);
    s.send({ type: "replica.checked", key: "a/1", at: 100 });
    expect(checkDue(s.snapshot.context, "a/1", 1_099)).toBe(false);
    expect(checkDue(s.snapshot.context, "a/1", 1_100)).toBe(true);
  });

  it("a dropped replica is forgotten: a copy pulled again is checked again", () => {
    const s = server();
    s.send({ type: "replica.checked", key: "a/1", at: 100 }, { type: "replica.dropped", key: "a/1" });
    expect(checkDue(s.snapshot.context, "a/1", 101)).toBe(true);
    expect(s.snapshot.context.verifiedAt).toEqual({});
  });

  it("a replica keyed like an Object.prototype key is due until it is checked", () => {
    const s = server();
    expect(checkDue(s.snapshot.context, "constructor", 0)).toBe(true);
  });

  it("a stopped server stays stopped and still ends the sessions it admitted", () => {
    const s = server();
    s.send(offer("1"), { type: "files.stop" }, { type: "session.ended" });
    expect(s.snapshot.value).toBe("stopped");
    expect(s.snapshot.context.running).toBe(0);
  });

  it("its context survives a CBOR round trip", () => {
    const s = server();
    s.send(offer("1"), { type: "replica.checked", key: "a/1", at: 5 });
    expect(decode(encode(s.snapshot.context), "cbor")).toEqual({ ok: true, value: s.snapshot.context });
  });

  it("an effect the runtime forgot to provide fails loudly", () => {
    const actor = createActor(fileServerMachine, { input });
    const errors: unknown[] = [];
    actor.subscribe({ error: (e) => errors.push(e) });
    actor.start();
    actor.send(offer("1"));
    expect(errors[0]).toBeInstanceOf(NotProvidedError);
  });
});
