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

const input: FileServerInput = { maxSessions: 2 };

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
    expect(checkDue(undefined, 0, 1_000)).toBe(true);
    expect(checkDue(100, 1_099, 1_000)).toBe(false);
    expect(checkDue(100, 1_100, 1_000)).toBe(true);
  });

  it("a stopped server stays stopped and still ends the sessions it admitted", () => {
    const s = server();
    s.send(offer("1"), { type: "files.stop" }, { type: "session.ended" });
    expect(s.snapshot.value).toBe("stopped");
    expect(s.snapshot.context.running).toBe(0);
  });

  it("its context survives a CBOR round trip", () => {
    const s = server();
    s.send(offer("1"));
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
