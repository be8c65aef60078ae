// Turns `--param key=value` flags into request params: dotted keys nest,
// numbers and booleans are typed, `[…]`/`{…}` values are read as JSON.

export class ParamError extends Error {
  override name = "ParamError";
}

export function parseParams(pairs: readonly string[], json?: string): Record<string, unknown> {
  let params: Record<string, unknown> = {};
  if (json !== undefined) {
    try {
      const parsed: unknown = JSON.parse(json);
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
        throw new Error("not an object");
      params = parsed as Record<string, unknown>;
    } catch (error) {
      throw new ParamError(`--params-json must be a JSON object: ${(error as Error).message}`);
    }
  }
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new ParamError(`--param expects key=value, got ${JSON.stringify(pair)}`);
    const path = pair.slice(0, eq).split(".");
    if (path.some((k) => k.length === 0 || k === "__proto__" || k === "constructor" || k === "prototype")) {
      throw new ParamError(`bad param key ${JSON.stringify(pair.slice(0, eq))}`);
    }
    let target = params;
    for (const key of path.slice(0, -1)) {
      const next = target[key];
      if (typeof next !== "object" || next === null || Array.isArray(next)) target[key] = {};
      target = target[key] as Record<string, unknown>;
    }
    target[path[path.length - 1] as string] = parseValue(pair.slice(eq + 1));
  }
  return params;
}

function parseValue(raw: string): unknown {
  if (/^-?\d+(\.\d+)?$/.test(raw)) return Number(raw);
  if (raw === "true") return true;
  if (raw === "false") return false;
  if (raw === "null") return null;
  if (raw.startsWith("[") || raw.startsWith("{")) {
    try {
      return JSON.parse(raw);
    } catch {
      throw new ParamError(`value ${JSON.stringify(raw)} looks like JSON but does not parse`);
    }
  }
  return raw;
}
