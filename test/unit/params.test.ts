import { describe, expect, it } from "vitest";
import { ParamError, parseParams } from "../../client/params.js";

describe("--param parsing", () => {
  it("types numbers and booleans, nests dotted keys and reads JSON values", () => {
    expect(parseParams(["dcid=3", "name=web", 'priv.rqsts=["PS"]', "on=true"])).toEqual({
      dcid: 3,
      name: "web",
      priv: { rqsts: ["PS"] },
      on: true,
    });
  });

  it("merges --param over --params-json", () => {
    expect(parseParams(["a=2"], '{"a":1,"b":2}')).toEqual({ a: 2, b: 2 });
  });

  it("refuses malformed pairs, prototype keys and bad JSON with ParamError", () => {
    expect(() => parseParams(["novalue"])).toThrow(ParamError);
    expect(() => parseParams(["__proto__.x=1"])).toThrow(ParamError);
    expect(() => parseParams([], "[1]")).toThrow(ParamError);
    expect(() => parseParams(["a={oops"])).toThrow(ParamError);
  });
});
