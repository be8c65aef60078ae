// How a bench command (run.ts, scale.ts) starts when it is the program node
// runs, and not when a test imports it: its exit code, and no hang on a
// stray handle once everything was closed.
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";

export async function runIfMain(moduleUrl: string, main: (argv: string[]) => Promise<number>): Promise<void> {
  const entry = process.argv[1];
  if (!entry) return;
  try {
    if (realpathSync(entry) !== realpathSync(fileURLToPath(moduleUrl))) return;
  } catch {
    return;
  }
  const code = await main(process.argv.slice(2));
  process.exitCode = code;
  setTimeout(() => process.exit(code), 2_000).unref();
}
