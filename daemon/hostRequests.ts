// The host requests of SPEC 5 (PS, VMSTAT, IFCONFIG, NETSTAT, DF, MOUNT, KILL,
// PIDSTAT, CONTAINER, CONTROLLER, COMMAND) as handlers over the probes of
// daemon/host/. A list reply's rcode is how many the host had; no handler
// throws: a refusal answers its named error, anything else EINVAL (logged).

import type { Logger } from "../actors/logger.js";
import type { Outcome, RequestHandler, RequestHandlers } from "../actors/requestServer.js";
import type { ErrorName, Params, RequestType, Rqst } from "../protocol/messages.js";
import type { Clock } from "../transport/clock.js";
import { ConfigError } from "./errors.js";
import { listControllers } from "./host/cgroups.js";
import { type CommandsConfig, runCommand } from "./host/command.js";
import { listContainers } from "./host/containers.js";
import type { HostContext } from "./host/context.js";
import { HostRequestError } from "./host/errors.js";
import { listFilesystems, listMounts } from "./host/filesystems.js";
import type { Listing } from "./host/listing.js";
import { vmstat } from "./host/memory.js";
import { listInterfaces, listSockets } from "./host/network.js";
import { killProcess, listProcesses, pidstat } from "./host/ps.js";
import { type SharedProbes, sharedProbes } from "./host/sharedProbes.js";

export interface HostRequestOptions {
  readonly clock: Clock;
  readonly logger: Logger;
  /** The `commands` section of the node config: COMMAND's allow-list. */
  readonly commands: CommandsConfig;
  /** The daemon's pid, which KILL refuses with all its threads; default process.pid. */
  readonly selfPid?: number;
  /**
   * Other pids KILL refuses with all their threads: the nats-server `dvsd up`
   * started (see protectedPidsFromEnv). Default none.
   */
  readonly protectedPids?: readonly number[];
  /** Default /proc; tests point it at fixtures. */
  readonly procRoot?: string;
  /** Default /sys/fs/cgroup. */
  readonly cgroupRoot?: string;
  /** The probes shared between concurrent requests; default one set per handlers, on `clock`. */
  readonly probes?: SharedProbes;
}

/** The environment variable that names the pids KILL protects besides the daemon's own. */
export const PROTECTED_PIDS_ENV = "DVS_PROTECTED_PIDS";

/**
 * The pids of DVS_PROTECTED_PIDS (comma-separated, e.g. "4242,4243"), for the
 * `protectedPids` option; none when unset or empty. A malformed list is a
 * ConfigError: a typo must not silently leave a process unprotected.
 */
export function protectedPidsFromEnv(env: NodeJS.ProcessEnv): number[] {
  const raw = env[PROTECTED_PIDS_ENV]?.trim();
  if (!raw) return [];
  const parts = raw.split(",").map((p) => p.trim());
  const bad = parts.filter((p) => !/^[1-9]\d{0,9}$/.test(p));
  if (bad.length > 0) {
    throw new ConfigError(`${PROTECTED_PIDS_ENV} must be pids separated by commas`, [
      { path: PROTECTED_PIDS_ENV, message: `not a pid: ${bad.map((b) => JSON.stringify(b)).join(", ")}` },
    ]);
  }
  return parts.map(Number);
}

type HostType =
  | "PS"
  | "VMSTAT"
  | "IFCONFIG"
  | "NETSTAT"
  | "DF"
  | "MOUNT"
  | "KILL"
  | "PIDSTAT"
  | "CONTAINER"
  | "CONTROLLER"
  | "COMMAND";

export function createHostHandlers(options: HostRequestOptions): Required<Pick<RequestHandlers, HostType>> {
  const ctx: HostContext = {
    clock: options.clock,
    logger: options.logger,
    commands: options.commands,
    selfPid: options.selfPid ?? process.pid,
    protectedPids: options.protectedPids ?? [],
    procRoot: options.procRoot ?? "/proc",
    cgroupRoot: options.cgroupRoot ?? "/sys/fs/cgroup",
    probes: options.probes ?? sharedProbes(options.clock),
  };
  const handle = <T extends HostType>(
    type: T,
    serve: (params: Params<T>, rqst: Rqst<T>) => Promise<Outcome>,
  ) => guarded(ctx, type, serve);
  return {
    PS: handle("PS", (p) => listProcesses(ctx, p).then(listed)),
    VMSTAT: handle("VMSTAT", () => vmstat(ctx).then((data) => ({ rcode: 0, data }))),
    IFCONFIG: handle("IFCONFIG", (p) => listInterfaces(ctx, p).then(listed)),
    NETSTAT: handle("NETSTAT", (p) => listSockets(ctx, p).then(listed)),
    DF: handle("DF", (p) => listFilesystems(ctx, p).then(listed)),
    MOUNT: handle("MOUNT", (p) => listMounts(ctx, p).then(listed)),
    PIDSTAT: handle("PIDSTAT", (p) => pidstat(ctx, p).then(listed)),
    CONTAINER: handle("CONTAINER", (p) => listContainers(ctx, p).then(listed)),
    CONTROLLER: handle("CONTROLLER", () => listControllers(ctx).then(listed)),
    KILL: handle("KILL", async (p, rqst) => {
      const data = await killProcess(ctx, p);
      ctx.logger.info({ ...data, src: rqst.src, action: rqst.action }, "KILL sent a signal");
      return { rcode: 0, data };
    }),
    COMMAND: handle("COMMAND", async (p, rqst) => {
      const data = await runCommand(ctx, p);
      const { stdout: _o, stderr: _e, ...summary } = data;
      ctx.logger.info({ ...summary, src: rqst.src, action: rqst.action }, "COMMAND ran");
      return { rcode: 0, data };
    }),
  };
}

/** A list reply: rcode is how many the host had, `data` the ones that fit the limit (count). */
function listed<T>(listing: Listing<T>): Outcome {
  return { rcode: listing.total, data: listing.items };
}

/** The handler of one type: never throws, and says why it refused. */
function guarded<T extends RequestType>(
  ctx: HostContext,
  type: T,
  serve: (params: Params<T>, rqst: Rqst<T>) => Promise<Outcome>,
): RequestHandler {
  return async (rqst) => {
    const own = rqst as Rqst<T>;
    try {
      return await serve(own.params, own);
    } catch (error) {
      if (error instanceof HostRequestError) {
        if (type === "KILL" || type === "COMMAND")
          ctx.logger.warn({ err: error, src: rqst.src, params: rqst.params }, `${type} refused`);
        return refusal(error.code, error.message);
      }
      ctx.logger.error({ err: error, type, src: rqst.src }, "host request failed");
      return refusal("EINVAL", `${type} failed on the node: ${(error as Error).message ?? String(error)}`);
    }
  };
}

function refusal(error: ErrorName, message: string): Outcome {
  return { error, message };
}
