// The gate that acts on the minority mark (actors/quorumGate.ts) and its
// configuration key, membership.minorityRefuses (daemon/config.ts).
import { describe, expect, it } from "vitest";
import {
  composeGates,
  DEFAULT_MINORITY_REFUSES,
  MINORITY_REFUSABLE,
  QuorumGate,
} from "../../actors/quorumGate.js";
import { parseConfig } from "../../daemon/config.js";
import { ConfigError } from "../../daemon/errors.js";
import { PROTOCOL_VERSION, REQUEST_GROUPS, type RequestType, type Rqst } from "../../protocol/messages.js";

const rqst = (type: RequestType): Rqst => ({
  v: PROTOCOL_VERSION,
  type,
  src: "t",
  dst: 1,
  seq: 1,
  params: {},
});

describe("the quorum gate", () => {
  it("refuses the listed requests with EROFS only while the node is in a minority", () => {
    let minority = false;
    const gate = new QuorumGate({ minority: () => minority });
    expect(gate.request(rqst("DCINIT"))).toBeUndefined();
    expect(gate.readOnly()).toBe(false);
    minority = true;
    expect(gate.readOnly()).toBe(true);
    for (const type of DEFAULT_MINORITY_REFUSES) {
      expect(gate.request(rqst(type))).toMatchObject({ error: "EROFS" });
    }
  });

  it("answers reads, host requests and unlisted requests in a minority", () => {
    const gate = new QuorumGate({ minority: () => true });
    for (const type of ["GETDVSINFO", "GETDCINFO", "GETNODEINFO", "GETPROCINFO", "SPAWN"] as const) {
      expect(gate.request(rqst(type))).toBeUndefined();
    }
    for (const type of REQUEST_GROUPS.host) expect(gate.request(rqst(type))).toBeUndefined();
  });

  it("refuses what the configured list names instead of the default", () => {
    const gate = new QuorumGate({ minority: () => true, refuses: ["SPAWN"] });
    expect(gate.request(rqst("SPAWN"))).toMatchObject({ error: "EROFS" });
    expect(gate.request(rqst("DCINIT"))).toBeUndefined();
  });

  it("composed gates answer with the first refusal, in order", () => {
    const notInit = (r: Rqst) =>
      r.type === "DVSINIT" ? undefined : { error: "ENOTINIT" as const, message: "not initialised" };
    const gate = composeGates(notInit, new QuorumGate({ minority: () => true }).request);
    expect(gate(rqst("DCINIT"))).toMatchObject({ error: "ENOTINIT" });
    expect(gate(rqst("DVSINIT"))).toMatchObject({ error: "EROFS" });
  });
});

describe("membership.minorityRefuses", () => {
  it("defaults to the DVS and DC requests that need the whole DVS", () => {
    const config = parseConfig({ node: 1 });
    expect(config.membership.minorityRefuses).toEqual([...DEFAULT_MINORITY_REFUSES]);
    expect(config.membership.minorityRefuses).toEqual([
      "DVSINIT",
      "DVSEND",
      "DCINIT",
      "DCEND",
      "ADDNODE",
      "DELNODE",
    ]);
  });

  it("takes any mutating request type that is not a host request", () => {
    const config = parseConfig({
      node: 1,
      membership: { quorum: true, minorityRefuses: ["SPAWN", "MIGRATE"] },
    });
    expect(config.membership.minorityRefuses).toEqual(["SPAWN", "MIGRATE"]);
    expect(MINORITY_REFUSABLE).not.toContain("KILL");
    expect(MINORITY_REFUSABLE).not.toContain("GETDVSINFO");
  });

  it("refuses reads, host requests and unknown types: a minority always answers those", () => {
    for (const bad of ["GETDVSINFO", "KILL", "PS", "COMMIT", "NOPE", 7]) {
      expect(() => parseConfig({ node: 1, membership: { minorityRefuses: [bad] } })).toThrow(ConfigError);
    }
    expect(() => parseConfig({ node: 1, membership: { minorityRefuses: "DCINIT" } })).toThrow(ConfigError);
  });
});
