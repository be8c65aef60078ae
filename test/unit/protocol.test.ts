import { describe, expect, it } from "vitest";
import { PARAMS, REQUEST_GROUPS, REQUEST_TYPES, rqstEnvelopeSchema } from "../../protocol/messages.js";
import { subjects } from "../../protocol/subjects.js";

describe("protocol", () => {
  it("lists every request type of the specification, each with a params schema", () => {
    expect(REQUEST_TYPES).toHaveLength(29);
    expect(Object.keys(REQUEST_GROUPS)).toEqual(["dvs", "dc", "node", "process", "host"]);
    for (const t of REQUEST_TYPES) expect(PARAMS[t]).toBeDefined();
    expect(REQUEST_TYPES).toEqual(
      expect.arrayContaining(["DVSINIT", "MIGRATE", "GETPROXYSTS", "CONTROLLER", "COMMAND"]),
    );
  });

  it("takes a node id or ALL as the destination, and a node id or client id as the source", () => {
    const base = { v: 1, type: "PS", seq: 1, params: {} };
    expect(rqstEnvelopeSchema.safeParse({ ...base, src: 3, dst: "ALL" }).success).toBe(true);
    expect(rqstEnvelopeSchema.safeParse({ ...base, src: "dvsctl.12", dst: 2 }).success).toBe(true);
    expect(rqstEnvelopeSchema.safeParse({ ...base, src: "bad id!", dst: 2 }).success).toBe(false);
    expect(rqstEnvelopeSchema.safeParse({ ...base, src: 1, dst: "all nodes" }).success).toBe(false);
    expect(rqstEnvelopeSchema.safeParse({ ...base, src: 1, dst: -1 }).success).toBe(false);
  });

  it("names the public subjects of a cluster and refuses a bad cluster name", () => {
    const s = subjects("dvs");
    expect(s.nodeRqst(1)).toBe("dvs.dvs.node.1.rqst");
    expect(s.anyRqst).toBe("dvs.dvs.rqst");
    expect(s.events).toBe("dvs.dvs.events.*");
    expect(s.nodeEvents(3)).toBe("dvs.dvs.events.3");
    expect(s.eventsJson).toBe("dvs.dvs.events.json.*");
    expect(s.nodeEventsJson(3)).toBe("dvs.dvs.events.json.3");
    expect(s.dnsWho).toBe("dvs.dvs.dns.who");
    expect(() => subjects("a.b")).toThrow(RangeError);
  });
});
