// `dvsd console`: its flags, the credentials and admin key they name, and the
// run until SIGINT/SIGTERM. The console itself is console/server.ts.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { type Command, InvalidArgumentError, Option } from "commander";
import { ADMIN_KEY_FILE, AdminKeyError, loadAdminSigner } from "../../client/adminKey.js";
import { DEV_USERS, devPassword, readSecretFile } from "../../client/credentials.js";
import type { AdminSigner } from "../../client/wire.js";
import { startConsole } from "../../console/server.js";

/** The console's default port: the original DVSD's. */
export const CONSOLE_PORT = 7000;
const DEFAULT_MAX_FILE_BYTES = 64 * 1024 * 1024;

interface ConsoleFlags {
  nats: string;
  cluster: string;
  host: string;
  port: number;
  admin: boolean;
  user?: string;
  pass?: string;
  passFile?: string;
  adminKey?: string;
  maxFileBytes: number;
}

function integer(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === "" || !Number.isInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
    return n;
  };
}

/** A console flag that cannot be used: exit status 2. */
export class ConsoleUsageError extends Error {
  override name = "ConsoleUsageError";
}

function passwordOf(f: ConsoleFlags, user: string): string | undefined {
  if (f.pass !== undefined) return f.pass;
  if (f.passFile !== undefined) {
    try {
      return readSecretFile(f.passFile);
    } catch (error) {
      throw new ConsoleUsageError(`cannot read --pass-file ${f.passFile}: ${(error as Error).message}`);
    }
  }
  return devPassword(user);
}

/** An admin console signs what changes nodes: --admin-key, else ./data/admin.nk; `none` signs nothing. */
function signerOf(f: ConsoleFlags): AdminSigner | undefined {
  const named = f.adminKey?.trim();
  if (named === "none") return undefined;
  const file = named ?? join("data", ADMIN_KEY_FILE);
  if (named === undefined && !existsSync(file)) {
    throw new ConsoleUsageError(
      `--admin needs the admin signing key: no ${file} (\`dvsd up\` writes it; name another with --admin-key, or --admin-key none to send unsigned requests, which only the node addressed serves)`,
    );
  }
  try {
    return loadAdminSigner(file);
  } catch (error) {
    if (error instanceof AdminKeyError) throw new ConsoleUsageError(`--admin-key: ${error.message}`);
    throw error;
  }
}

export function addConsoleCommand(program: Command): void {
  program
    .command("console")
    .description(
      "serve the web console on loopback: the cluster live, requests, the action log, files, hosts",
    )
    .addOption(
      new Option("--nats <urls>", "NATS server URL(s), comma-separated")
        .env("DVS_NATS")
        .default("nats://127.0.0.1:4222"),
    )
    .addOption(new Option("--cluster <name>", "cluster name").env("DVS_CLUSTER").default("dvs"))
    .option("--host <address>", "address to listen on; keep it loopback (see docs/security.md)", "127.0.0.1")
    .option("--port <port>", "HTTP port (0: any free port)", integer(0, 65_535), CONSOLE_PORT)
    .option(
      "--admin",
      "act as admin: send requests that change nodes (signed), read the action log, commit files",
      false,
    )
    .addOption(
      new Option("--user <user>", "NATS user (default: viewer, or admin with --admin)").env(
        "DVS_CONSOLE_USER",
      ),
    )
    .addOption(
      new Option("--pass <password>", "NATS password (default: the development password of --user)").env(
        "DVS_CONSOLE_PASS",
      ),
    )
    .option("--pass-file <file>", "read the NATS password from a file (first line)")
    .addOption(
      new Option(
        "--admin-key <file>",
        "with --admin: the admin's nkey seed that signs requests that change nodes (default: ./data/admin.nk; `none`: do not sign)",
      ).env("DVS_ADMIN_KEY_FILE"),
    )
    .option(
      "--max-file-bytes <n>",
      "largest file the console uploads or downloads (it holds it in memory)",
      integer(1, 2 ** 31),
      DEFAULT_MAX_FILE_BYTES,
    )
    .addHelpText(
      "after",
      [
        "",
        "The console is a NATS client with one user's rights and nothing more: viewer unless started with",
        "--admin. A viewer console shows everything but the action log, and the nodes refuse (EPERM) any",
        "request that would change them, whoever calls the console. It listens on 127.0.0.1 and refuses",
        "requests from other origins; anyone who can reach its port acts with its user's rights.",
        "DVS_CONSOLE_USER and DVS_CONSOLE_PASS stand for --user and --pass (not dvsctl's DVS_USER, so a shell",
        "set up for an admin dvsctl does not make an admin console by accident).",
        "",
        "Examples:",
        "  $ dvsd console                      # viewer, http://127.0.0.1:7000/",
        "  $ dvsd console --admin --port 7001  # admin, signing with ./data/admin.nk",
        "  $ dvsd console --nats nats://10.0.0.1:4222 --user viewer --pass-file /etc/dvs/viewer.pass",
      ].join("\n"),
    )
    .action(async (f: ConsoleFlags) => {
      const role = f.admin ? "admin" : "viewer";
      const user = f.user ?? (f.admin ? DEV_USERS.admin.user : DEV_USERS.viewer.user);
      let signer: AdminSigner | undefined;
      let pass: string | undefined;
      try {
        signer = f.admin ? signerOf(f) : undefined;
        pass = passwordOf(f, user);
      } catch (error) {
        if (!(error instanceof ConsoleUsageError)) throw error;
        process.stderr.write(`dvsd console: ${error.message}\n`);
        process.exitCode = 2;
        return;
      }
      if (!["127.0.0.1", "::1", "localhost"].includes(f.host)) {
        process.stderr.write(
          `dvsd console: warning: listening on ${f.host}, not loopback: whoever reaches it acts as ${user} (${role})\n`,
        );
      }
      let running: Awaited<ReturnType<typeof startConsole>>;
      try {
        running = await startConsole({
          nats: f.nats.split(","),
          cluster: f.cluster,
          user,
          ...(pass !== undefined ? { pass } : {}),
          role,
          ...(signer !== undefined ? { signer } : {}),
          host: f.host,
          port: f.port,
          maxFileBytes: f.maxFileBytes,
          log: (line) => process.stderr.write(`${line}\n`),
        });
      } catch (error) {
        // Unreachable NATS, refused credentials, a port in use: say which, exit 1.
        process.stderr.write(`dvsd console: ${(error as Error).message}\n`);
        process.exitCode = 1;
        return;
      }
      process.stdout.write(`console ${running.url} (${user}, ${role})\n`);
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off("SIGINT", stop);
          process.off("SIGTERM", stop);
          resolve();
        };
        process.on("SIGINT", stop);
        process.on("SIGTERM", stop);
      });
      await running.close();
    });
}
