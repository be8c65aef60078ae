// COMMAND's allowArgs: a requester appends operands, never options, so it cannot
// turn an allow-listed command into another one (`--output=/tmp/x`, `-exec`).
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  type CommandResult,
  type CommandsConfigInput,
  commandsConfigSchema,
} from "../../daemon/host/command.js";
import { hostHandlers, hostRqst, succeeded } from "../support/hostHandlers.js";

const config: CommandsConfigInput = {
  allowed: {
    // `sort -o FILE` writes its output to FILE: an injected option would write anywhere.
    sort: { argv: ["/usr/bin/sort"], allowArgs: true },
    echo: { argv: ["/bin/echo"], allowArgs: true },
    // The operator ended argv with `--`: the program reads what follows as operands.
    names: { argv: ["/usr/bin/basename", "-a", "--"], allowArgs: true },
  },
};

const command = (name: string, args: string[]) =>
  hostHandlers({ commands: commandsConfigSchema.parse(config) }).COMMAND(
    hostRqst("COMMAND", { command: name, args }),
  );

describe("COMMAND arguments", () => {
  it("an injected --output=FILE style option is refused with EINVAL and nothing is written", async () => {
    const target = join(mkdtempSync(join(tmpdir(), "dvs-args-")), "x");
    for (const args of [
      [`--output=${target}`, "/etc/hostname"],
      ["-o", target, "/etc/hostname"],
      ["/dev/null", `-o${target}`],
    ]) {
      expect(await command("sort", args)).toMatchObject({ error: "EINVAL" });
    }
    expect(existsSync(target)).toBe(false);
  });

  it("a lone '-' and '--' are options too", async () => {
    expect(await command("echo", ["-"])).toMatchObject({ error: "EINVAL" });
    expect(await command("echo", ["--", "-n"])).toMatchObject({ error: "EINVAL" });
  });

  it("arguments that are not options reach the program unchanged, after the configured argv", async () => {
    const r = succeeded<CommandResult>(await command("echo", ["a-b", "x--y", " -leading-space"]));
    expect(r.data.argv).toEqual(["/bin/echo", "a-b", "x--y", " -leading-space"]);
    expect(r.data.stdout).toBe("a-b x--y  -leading-space\n");
  });

  it("after a configured argv that ends with '--', arguments starting with '-' pass as operands", async () => {
    const r = succeeded<CommandResult>(await command("names", ["-5", "--output=/tmp/x"]));
    expect(r.data.argv).toEqual(["/usr/bin/basename", "-a", "--", "-5", "--output=/tmp/x"]);
    expect(r.data.stdout).toBe("-5\nx\n");
  });
});
