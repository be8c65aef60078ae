// The web console `dvsd up` starts beside its nodes: `dvsd console` as a child
// process (a viewer, on loopback), so a console that fails never takes the
// cluster down. Resolves with its URL once it listens, or with why it did not.
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";

export interface ConsoleProcessOptions {
  /** The compiled dvsd entry (dist/bin/dvsd.js). */
  readonly bin: string;
  readonly nats: string;
  readonly cluster: string;
  readonly port: number;
  /** Where its stderr goes. */
  readonly log: string;
  readonly env: NodeJS.ProcessEnv;
  /** How long it may take to listen. */
  readonly timeoutMs?: number;
}

export type ConsoleStart =
  | { readonly ok: true; readonly process: ChildProcess; readonly url: string }
  | { readonly ok: false; readonly process: ChildProcess; readonly reason: string };

export function startConsoleProcess(o: ConsoleProcessOptions): Promise<ConsoleStart> {
  const logFd = openSync(o.log, "a");
  const child = spawn(
    process.execPath,
    [o.bin, "console", "--nats", o.nats, "--cluster", o.cluster, "--port", String(o.port)],
    { stdio: ["ignore", "pipe", logFd], env: o.env },
  );
  closeSync(logFd);
  return new Promise((resolve) => {
    let out = "";
    const done = (result: ConsoleStart) => {
      clearTimeout(timer);
      child.stdout?.off("data", onData);
      child.off("exit", onExit);
      child.stdout?.resume();
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const url = /console (http:\/\/\S+)/.exec(out)?.[1];
      if (url !== undefined) done({ ok: true, process: child, url });
    };
    const onExit = (code: number | null, signal: string | null) =>
      done({ ok: false, process: child, reason: `it exited (${signal ?? `code ${code}`}); see ${o.log}` });
    const timer = setTimeout(
      () =>
        done({
          ok: false,
          process: child,
          reason: `it did not listen within ${o.timeoutMs ?? 10_000} ms; see ${o.log}`,
        }),
      o.timeoutMs ?? 10_000,
    );
    child.stdout?.on("data", onData);
    child.once("exit", onExit);
  });
}
