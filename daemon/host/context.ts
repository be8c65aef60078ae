// What every host probe is given: the injected clock and logger, the pids KILL
// never signals, where /proc and the cgroup tree are (fixture directories in
// tests) and the COMMAND allow-list. daemon/hostRequests.ts fills in the defaults.

import type { Logger } from "../../actors/logger.js";
import type { Clock } from "../../transport/clock.js";
import type { CommandsConfig } from "./command.js";
import type { SharedProbes } from "./sharedProbes.js";

export interface HostContext {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly commands: CommandsConfig;
  /** The daemon's pid: KILL refuses it and every thread of it. */
  readonly selfPid: number;
  /** Other pids KILL refuses with their threads (the nats-server `dvsd up` started). */
  readonly protectedPids: readonly number[];
  /** Normally /proc. */
  readonly procRoot: string;
  /** Normally /sys/fs/cgroup. */
  readonly cgroupRoot: string;
  /** Expensive probes shared between concurrent and close requests; absent: every request probes. */
  readonly probes?: SharedProbes;
}

/** True when /proc is the live one, so a probe may also ask tools (ps, df) about the same host. */
export function isLiveProc(ctx: HostContext): boolean {
  return ctx.procRoot === "/proc";
}
