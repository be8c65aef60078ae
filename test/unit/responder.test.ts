// The one responder path: answers go only into the inbox namespace.
import { describe, expect, it } from "vitest";
import { inboxPrefixFor, isInboxReply, Responder } from "../../protocol/responder.js";

describe("reply subjects", () => {
  it("an inbox under a user's prefix is a reply subject dvsd answers", () => {
    expect(isInboxReply("_INBOX.viewer.abc123.7")).toBe(true);
    expect(isInboxReply("_INBOX.abc")).toBe(true);
    expect(isInboxReply(`_INBOX.${"a".repeat(128)}.b`)).toBe(true);
  });

  it("JetStream API, KV keys, action records and dvs subjects are never answered", () => {
    for (const reply of [
      "$JS.API.STREAM.PURGE.DVS_ACTIONS_dvs",
      "$JS.API.STREAM.MSG.DELETE.DVS_ACTIONS_dvs",
      "$KV.DVS_REGISTRY_dvs.coordinator",
      "$KV.DVS_REGISTRY_dvs.file.a",
      "dvs.dvs.actions.1.01J.outcome",
      "dvs.dvs._hb.2",
      "_INBOX",
      "_INBOX.",
      "_INBOX.*",
      "_INBOX.>",
      "_INBOX.a..b",
      "_INBOX.a.",
      "_INBOX.a b",
      "_INBOX.a\tb",
      "_INBOX.a\nb",
      "x._INBOX.a",
      `_INBOX.${"a".repeat(129)}`,
      "_INBOXES.a",
      `_INBOX.${"a".repeat(300)}`,
    ])
      expect(isInboxReply(reply), reply).toBe(false);
  });

  it("a user's inbox prefix is one subject token", () => {
    expect(inboxPrefixFor("viewer")).toBe("_INBOX.viewer");
    expect(inboxPrefixFor("node-3")).toBe("_INBOX.node-3");
    expect(inboxPrefixFor("a.b>*")).toBe("_INBOX.a_b__");
    expect(inboxPrefixFor(undefined)).toBe("_INBOX");
  });

  it("a responder publishes to an inbox and drops, counting, any other reply subject", () => {
    const published: string[] = [];
    const refused: string[] = [];
    const responder = new Responder(
      { publish: (subject: string) => void published.push(subject) },
      { onRefused: (reply) => void refused.push(reply) },
    );
    const data = new Uint8Array([1]);
    expect(responder.answer({ subject: "s", reply: "_INBOX.admin.x.1" }, data)).toBe("sent");
    expect(responder.answer({ subject: "s", reply: "$JS.API.STREAM.PURGE.X" }, data)).toBe("refused");
    expect(responder.answer({ subject: "s", reply: undefined }, data)).toBe("no-reply");
    expect(
      responder.answer({ subject: "s", reply: "dvs.dvs._gather.2" }, data, {
        alsoAllow: (r) => r === "dvs.dvs._gather.2",
      }),
    ).toBe("sent");
    expect(published).toEqual(["_INBOX.admin.x.1", "dvs.dvs._gather.2"]);
    expect(refused).toEqual(["$JS.API.STREAM.PURGE.X"]);
    expect(responder.refused).toBe(1);
  });
});
