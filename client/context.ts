// A client's context file: where a production cluster is and how to log in to
// it (servers, user, password or nkey seed file, TLS files, admin key), kept in
// one YAML or JSON file so dvsctl needs no long command lines. One zod schema
// checks it; relative paths are taken from the file's own directory.
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, extname, isAbsolute, join, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { describeIssues, withIssues } from "../protocol/messages.js";
import { isClusterName } from "../protocol/subjects.js";

/** The context file could not be used; `file` names it and `issues` every bad key with its path. */
export class ContextError extends Error {
  override name = "ContextError";
  constructor(
    readonly file: string,
    message: string,
    readonly issues: readonly { path: string; message: string }[] = [],
    options?: ErrorOptions,
  ) {
    super(withIssues(message, issues), options);
  }
}

const natsUrl = z
  .string()
  .refine((s) => /^(nats|tls|ws|wss):\/\/[^\s,]+$/.test(s) || /^[^\s:/,]+:\d+$/.test(s), {
    message: "expected a NATS URL such as tls://dvs1.example.net:4222",
  });

const path = z.string().trim().min(1, "expected a file path");

/** The keys of a context file; the names are those of a node config's `nats` section where they exist. */
export const contextSchema = z
  .strictObject({
    /** One URL or a list; like dvsctl --nats (a comma-separated string is split too). */
    servers: z
      .union([z.string(), z.array(natsUrl).min(1)])
      .transform((s) => (typeof s === "string" ? s.split(",").map((u) => u.trim()) : s))
      .pipe(z.array(natsUrl).min(1)),
    cluster: z.string().refine(isClusterName, "letters, digits, - and _, at most 32"),
    user: z.string().min(1),
    /** The password's file (first line); a password itself is never kept in a context file. */
    passFile: path,
    nkeySeedFile: path,
    tls: z
      .strictObject({ caFile: path, certFile: path, keyFile: path })
      .partial()
      .refine((t) => (t.certFile === undefined) === (t.keyFile === undefined), {
        message: "certFile and keyFile go together",
      }),
    /** The admin signing key's seed file, or `none`. */
    adminKey: path,
    role: z.enum(["admin", "viewer"]),
    /** Like dvsctl --timeout: milliseconds to wait for answers. */
    timeout: z.number().int().min(1).max(600_000),
  })
  .partial()
  .refine((c) => c.passFile === undefined || c.nkeySeedFile === undefined, {
    message: "passFile and nkeySeedFile exclude each other (a password or an nkey, not both)",
  });

export type ClientContext = z.output<typeof contextSchema>;

/** `~/x` is in the home directory; any other relative path is relative to the context file's directory. */
function resolvePath(base: string, file: string): string {
  if (file === "~" || file.startsWith("~/")) return join(homedir(), file.slice(1));
  return isAbsolute(file) ? file : resolve(base, file);
}

/** Reads and checks a context file (YAML, or JSON for a `.json` name); throws ContextError. */
export function loadContext(file: string): ClientContext {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : (error as Error).message;
    throw new ContextError(file, `cannot read context file ${file}: ${why}`, [], { cause: error });
  }
  const json = extname(file) === ".json";
  let value: unknown;
  try {
    value = json ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    const what = json ? "JSON" : "YAML";
    throw new ContextError(
      file,
      `context file ${file} is not valid ${what}: ${(error as Error).message}`,
      [],
      {
        cause: error,
      },
    );
  }
  if (value === null || value === undefined) value = {};
  if (typeof value !== "object" || Array.isArray(value))
    throw new ContextError(file, `context file ${file} must hold a mapping of keys to values`);
  const parsed = contextSchema.safeParse(value);
  if (!parsed.success)
    throw new ContextError(file, `invalid context file ${file}`, describeIssues(parsed.error));
  const c = parsed.data;
  const base = dirname(resolve(file));
  const at = (p: string | undefined) => (p === undefined ? undefined : resolvePath(base, p));
  return dropUndefined({
    ...c,
    passFile: at(c.passFile),
    nkeySeedFile: at(c.nkeySeedFile),
    adminKey: c.adminKey === "none" ? "none" : at(c.adminKey),
    tls:
      c.tls &&
      dropUndefined({ caFile: at(c.tls.caFile), certFile: at(c.tls.certFile), keyFile: at(c.tls.keyFile) }),
  });
}

function dropUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
