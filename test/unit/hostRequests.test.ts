import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { silentLogger } from "../../actors/logger.js";
import { type CommandsConfig, commandsConfigSchema } from "../../daemon/host/command.js";
import { createHostHandlers } from "../../daemon/hostRequests.js";
import { REQUEST_GROUPS, type Rqst } from "../../protocol/messages.js";
import { systemClock } from "../../transport/clock.js";

describe("host request handlers", () => {
  it("answer every type of the host group", () => {
    const host = createHostHandlers({
      clock: systemClock,
      logger: silentLogger,
      commands: commandsConfigSchema.parse({}),
    });
    expect(Object.keys(host).sort()).toEqual([...REQUEST_GROUPS.host].sort());
  });

  it("a failure nobody foresaw is logged and answered EINVAL instead of escaping", async () => {
    const logs: { level: number; msg: string }[] = [];
    const logger = pino({ level: "info" }, { write: (line: string) => void logs.push(JSON.parse(line)) });
    const broken = { allowed: null, killGraceMs: 0 } as unknown as CommandsConfig;
    const host = createHostHandlers({ clock: systemClock, logger, commands: broken });
    const out = await host.COMMAND({
      v: 1,
      type: "COMMAND",
      src: "t",
      dst: 1,
      seq: 1,
      params: { command: "x" },
    } as Rqst);
    expect(out).toMatchObject({
      error: "EINVAL",
      message: expect.stringMatching(/^COMMAND failed on the node/),
    });
    expect(logs.some((l) => l.level === 50 && l.msg === "host request failed")).toBe(true);
  });

  it("log every refused KILL and COMMAND with the requester", async () => {
    const logs: Record<string, unknown>[] = [];
    const logger = pino({ level: "info" }, { write: (line: string) => void logs.push(JSON.parse(line)) });
    const host = createHostHandlers({ clock: systemClock, logger, commands: commandsConfigSchema.parse({}) });
    await host.KILL({ v: 1, type: "KILL", src: "ops", dst: 1, seq: 1, params: { pid: 1 } } as Rqst);
    expect(logs).toContainEqual(expect.objectContaining({ msg: "KILL refused", src: "ops" }));
  });
});
