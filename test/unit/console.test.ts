// The console's own decisions, without a cluster: which calls it lets through
// (Host, Origin, its header), how it checks a request before sending it, how
// it reads the nodes' views into components and IFCONFIG into an address.
import type { IncomingMessage } from "node:http";
import { describe, expect, it } from "vitest";
import { actionQuerySchema, queryOf } from "../../console/actions.js";
import { addressOf, componentsOf, type NodeView } from "../../console/clusterFeed.js";
import { BadInputError, ForbiddenOriginError, NotFoundError } from "../../console/errors.js";
import { allowedHosts, checkRequest } from "../../console/http.js";
import { checkedRequest, paramsSchemaOf, requestCatalog } from "../../console/requests.js";

const hosts = allowedHosts("127.0.0.1", 7000);
const req = (method: string, headers: Record<string, string>) =>
  ({ method, headers }) as unknown as IncomingMessage;

describe("the console's door", () => {
  it("answers its own loopback names and no other Host", () => {
    expect(() => checkRequest(req("GET", { host: "127.0.0.1:7000" }), hosts)).not.toThrow();
    expect(() => checkRequest(req("GET", { host: "localhost:7000" }), hosts)).not.toThrow();
    expect(() => checkRequest(req("GET", { host: "evil.example:7000" }), hosts)).toThrow(
      ForbiddenOriginError,
    );
    expect(() => checkRequest(req("GET", { host: "127.0.0.1:7001" }), hosts)).toThrow(ForbiddenOriginError);
  });

  it("lets a call that acts through only from its own origin and with its header", () => {
    const own = { host: "127.0.0.1:7000", "x-dvs-console": "1" };
    expect(() => checkRequest(req("POST", { ...own, origin: "http://127.0.0.1:7000" }), hosts)).not.toThrow();
    expect(() => checkRequest(req("POST", own), hosts)).not.toThrow();
    expect(() => checkRequest(req("POST", { ...own, origin: "http://evil.example" }), hosts)).toThrow(
      ForbiddenOriginError,
    );
    expect(() => checkRequest(req("POST", { ...own, origin: "null" }), hosts)).toThrow(ForbiddenOriginError);
    expect(() => checkRequest(req("POST", { host: "127.0.0.1:7000" }), hosts)).toThrow(ForbiddenOriginError);
  });

  it("does not answer loopback names when it listens on another address", () => {
    expect([...allowedHosts("10.0.0.5", 7000)]).toEqual(["10.0.0.5:7000"]);
  });
});

describe("a request the page asks for", () => {
  it("is checked against the nodes' own params schema", () => {
    expect(checkedRequest({ type: "RQST_PS", dst: 1, params: { limit: 3 } })).toEqual({
      type: "PS",
      params: { limit: 3 },
    });
    expect(() => checkedRequest({ type: "PS", dst: 1, params: { limit: 0 } })).toThrow(BadInputError);
    expect(() => checkedRequest({ type: "PS", dst: 1, params: { extra: 1 } })).toThrow(BadInputError);
    expect(() => checkedRequest({ type: "FROB", dst: 1 })).toThrow(BadInputError);
  });

  it("refuses ALL and EACH for a type that acts on one node", () => {
    expect(() => checkedRequest({ type: "KILL", dst: "ALL", params: { pid: 10 } })).toThrow(BadInputError);
    expect(() => checkedRequest({ type: "KILL", dst: "EACH", params: { pid: 10 } })).toThrow(BadInputError);
    expect(checkedRequest({ type: "KILL", dst: 2, params: { pid: 10 } }).type).toBe("KILL");
  });

  it("serves each type's params as JSON Schema, and 404 for an unknown type", () => {
    expect(paramsSchemaOf("KILL")).toMatchObject({
      type: "object",
      required: ["pid"],
      properties: { pid: { type: "integer", minimum: 1 } },
    });
    expect(() => paramsSchemaOf("FROB")).toThrow(NotFoundError);
  });

  it("says why a viewer's console disables the mutating types", () => {
    expect(requestCatalog("viewer").mutatingDisabled).toMatch(/viewer/);
    expect(requestCatalog("admin").mutatingDisabled).toBeNull();
    expect(requestCatalog("viewer").mutating).toContain("KILL");
  });
});

describe("the action log's query", () => {
  it("takes numbers and a type, and refuses anything else", () => {
    const url = new URL("http://x/api/actions?type=RQST_KILL&node=2&limit=10");
    expect(actionQuerySchema.parse(queryOf(url))).toEqual({ type: "KILL", node: 2, limit: 10 });
    expect(actionQuerySchema.safeParse({ node: "-1" }).success).toBe(false);
    expect(actionQuerySchema.safeParse({ limit: "100000" }).success).toBe(false);
    expect(actionQuerySchema.safeParse({ evil: "1" }).success).toBe(false);
    expect(() => queryOf(new URL("http://x/?node=1&node=2"))).toThrow(BadInputError);
  });
});

const node = (id: number, members: number[], extra: Partial<NodeView> = {}): NodeView => ({
  node: id,
  incarnation: 1,
  state: "member",
  view: { id: members.length, members },
  minority: false,
  pid: 100 + id,
  address: null,
  answering: true,
  seenAt: 0,
  ...extra,
});

describe("the Cluster page's picture", () => {
  it("groups the nodes by view and names the majority", () => {
    const parts = componentsOf([node(1, [1, 2, 3]), node(2, [1, 2, 3]), node(3, [1, 2, 3])]);
    expect(parts).toEqual([{ viewId: 3, members: [1, 2, 3], holders: [1, 2, 3], majority: true }]);
  });

  it("shows a partitioned node as a minority component, and a silent one in none", () => {
    const parts = componentsOf([
      node(1, [1, 2]),
      node(2, [1, 2]),
      node(3, [3]),
      node(4, [1, 2, 4], { answering: false }),
    ]);
    expect(parts.map((c) => [c.members, c.majority])).toEqual([
      [[1, 2], false],
      [[3], false],
    ]);
    const three = componentsOf([node(1, [1, 2]), node(2, [1, 2]), node(3, [3])]);
    expect(three.map((c) => [c.members, c.majority])).toEqual([
      [[1, 2], true],
      [[3], false],
    ]);
  });

  it("takes a host's address from its default route's interface", () => {
    const ifconfig = [
      { name: "lo", internal: true, default: false, addresses: [{ family: "IPv4", address: "127.0.0.1" }] },
      { name: "eth1", internal: false, default: false, addresses: [{ family: "IPv4", address: "10.1.0.2" }] },
      {
        name: "eth0",
        internal: false,
        default: true,
        addresses: [
          { family: "IPv6", address: "fe80::1" },
          { family: "IPv4", address: "192.0.2.7" },
        ],
      },
    ];
    expect(addressOf(ifconfig)).toBe("192.0.2.7");
    expect(addressOf(ifconfig.slice(0, 2))).toBe("10.1.0.2");
    expect(addressOf(ifconfig.slice(0, 1))).toBe("127.0.0.1");
    expect(addressOf({ error: "EPERM" })).toBeNull();
  });
});
