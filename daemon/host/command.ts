// COMMAND: runs a command the node's config allow-lists, by name, never through
// a shell: the configured argv (plus the request's arguments when the command
// allows them, never an option) goes to the kernel as is, in a clean
// environment, with a timeout on the injected clock (SIGTERM to its process
// group, then SIGKILL) and stdout/stderr capped.
import { type ChildProcess, spawn } from "node:child_process";
import { z } from "zod";
import type { Params } from "../../protocol/messages.js";
import type { Clock, TimerHandle } from "../../transport/clock.js";
import { CappedOutput, signalGroup } from "../childProcess.js";
import { childEnvironment } from "./childEnvironment.js";
import type { HostContext } from "./context.js";
import {
  ArgumentsNotAllowedError,
  CommandNotAllowedError,
  CommandSpawnError,
  OptionArgumentError,
} from "./errors.js";

/** The largest per-stream cap: two capped streams must still fit a 1 MB NATS message. */
export const MAX_OUTPUT_CAP = 256 * 1024;

const allowedCommandSchema = z.strictObject({
  /** The program (an absolute path: no PATH lookup) and its fixed arguments. */
  argv: z.tuple(
    [z.string().startsWith("/", "the program must be an absolute path, e.g. /usr/bin/uptime")],
    z.string(),
  ),
  /**
   * Whether a request may append arguments; without it, a request with args is
   * EINVAL. An appended argument starting with `-` is EINVAL too, unless argv
   * ends with `--` (see requesterArguments).
   */
  allowArgs: z.boolean().default(false),
  /** A run longer than this is sent SIGTERM, then SIGKILL after commands.killGraceMs. */
  timeoutMs: z.number().int().min(10).max(600_000).default(10_000),
  /** stdout and stderr are each kept up to this many bytes; the rest is dropped and flagged. */
  maxOutputBytes: z.number().int().min(0).max(MAX_OUTPUT_CAP).default(65_536),
});

/** The `commands` section of the node config. */
export const commandsConfigSchema = z.strictObject({
  /** Commands by the name a COMMAND request gives (letters, digits, `.`, `_`, `-`; at most 64). */
  allowed: z
    .record(
      z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, "a command name is 1-64 letters, digits, '.', '_' or '-'"),
      allowedCommandSchema,
    )
    .default({}),
  /** Between the SIGTERM of a timed-out command and the SIGKILL. */
  killGraceMs: z.number().int().min(0).max(60_000).default(2_000),
});

export type CommandsConfig = z.output<typeof commandsConfigSchema>;
export type CommandsConfigInput = z.input<typeof commandsConfigSchema>;
export type AllowedCommand = z.output<typeof allowedCommandSchema>;

/** COMMAND's reply data. The command's own exit status is here; the RPLY's rcode is 0 once it ran. */
export interface CommandResult {
  readonly command: string;
  /** What was run: the configured argv, then the request's args. */
  readonly argv: readonly string[];
  /** Null when it ended by a signal. */
  readonly exitCode: number | null;
  readonly signal: string | null;
  /** It ran past timeoutMs and was killed. */
  readonly timedOut: boolean;
  readonly durationMs: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly stdoutTruncated: boolean;
  readonly stderrTruncated: boolean;
}

/** Runs one allow-listed command for a COMMAND request. */
export async function runCommand(ctx: HostContext, params: Params<"COMMAND">): Promise<CommandResult> {
  // Own-property lookup: a name such as "constructor" must not find Object.prototype's.
  const allowed = Object.hasOwn(ctx.commands.allowed, params.command)
    ? ctx.commands.allowed[params.command]
    : undefined;
  if (!allowed) throw new CommandNotAllowedError(params.command);
  const args = requesterArguments(params.command, allowed, params.args ?? []);
  const run = await runProgram([...allowed.argv, ...args], {
    clock: ctx.clock,
    timeoutMs: allowed.timeoutMs,
    maxOutputBytes: allowed.maxOutputBytes,
    killGraceMs: ctx.commands.killGraceMs,
    env: childEnvironment(),
  });
  return { command: params.command, ...run };
}

/**
 * The request's arguments, checked: none unless the command has allowArgs,
 * and none that starts with `-`, so a requester cannot turn an allow-listed
 * command into another one with an option (`--output=/etc/x`, `-exec`).
 *
 * Why a per-argument rule rather than appending `--`: `--` only helps with
 * programs that parse options with getopt and honour it; others (echo, find,
 * dd, most scripts) take it as an ordinary argument or ignore it, and GNU
 * getopt's permutation makes option position no defence either. Refusing a
 * leading `-` holds for every program and keeps the configured argv meaning
 * what its author wrote. An operator whose program does honour `--` and needs
 * such arguments (a negative number) ends argv with `--`; then they pass.
 */
export function requesterArguments(
  command: string,
  allowed: AllowedCommand,
  args: readonly string[],
): readonly string[] {
  if (args.length === 0) return args;
  if (!allowed.allowArgs) throw new ArgumentsNotAllowedError(command);
  if (allowed.argv.at(-1) === "--") return args;
  const option = args.findIndex((a) => a.startsWith("-"));
  if (option >= 0) throw new OptionArgumentError(command, option);
  return args;
}

export interface RunLimits {
  readonly clock: Clock;
  readonly timeoutMs: number;
  readonly maxOutputBytes: number;
  readonly killGraceMs: number;
  /** The program's whole environment: nothing of the daemon's is inherited (see childEnvironment). */
  readonly env: Readonly<Record<string, string>>;
}

/** After the program exits, how long its stdout/stderr may stay open (held by a child it left behind). */
const STDIO_GRACE_MS = 500;

/**
 * Runs argv without a shell, in its own process group, with no stdin and only
 * the environment `limits.env` gives (the daemon's own variables hold
 * secrets). Rejects with CommandSpawnError when the program cannot start.
 */
export function runProgram(
  argv: readonly string[],
  limits: RunLimits,
): Promise<Omit<CommandResult, "command">> {
  const { clock } = limits;
  const [program, ...args] = argv;
  if (program === undefined) return Promise.reject(new CommandSpawnError(argv));
  const startedAt = clock.now();
  const stdout = new CappedOutput(limits.maxOutputBytes);
  const stderr = new CappedOutput(limits.maxOutputBytes);
  let child: ChildProcess;
  try {
    child = spawn(program, args, {
      shell: false,
      // Its own process group, so the timeout also kills what the command started.
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: limits.env,
    });
  } catch (cause) {
    return Promise.reject(new CommandSpawnError(argv, { cause }));
  }
  let timedOut = false;
  const timers: (TimerHandle | undefined)[] = [];
  child.stdout?.on("data", (chunk: Buffer) => stdout.push(chunk));
  child.stderr?.on("data", (chunk: Buffer) => stderr.push(chunk));

  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (exitCode: number | null, signal: NodeJS.Signals | null) => {
      if (settled) return;
      settled = true;
      for (const t of timers) clock.clearTimeout(t);
      resolve({
        argv,
        exitCode,
        signal,
        timedOut,
        durationMs: clock.now() - startedAt,
        stdout: stdout.text(),
        stderr: stderr.text(),
        stdoutTruncated: stdout.truncated,
        stderrTruncated: stderr.truncated,
      });
    };
    child.on("error", (cause) => {
      if (child.pid !== undefined || settled) return;
      settled = true;
      for (const t of timers) clock.clearTimeout(t);
      reject(new CommandSpawnError(argv, { cause }));
    });
    child.on("exit", (code, signal) => {
      if (settled) return;
      // A background child of the command may hold stdout open; do not wait for it for long.
      timers.push(
        clock.setTimeout(() => {
          child.stdout?.destroy();
          child.stderr?.destroy();
          settle(code, signal);
        }, STDIO_GRACE_MS),
      );
    });
    child.on("close", (code, signal) => settle(code, signal));
    timers.push(
      clock.setTimeout(() => {
        timedOut = true;
        signalGroup(child, "SIGTERM");
        timers.push(clock.setTimeout(() => signalGroup(child, "SIGKILL"), limits.killGraceMs));
      }, limits.timeoutMs),
    );
  });
}
