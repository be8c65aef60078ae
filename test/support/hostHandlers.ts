// The host request handlers as the unit tests call them: directly, with the
// real clock, a silent logger and an empty COMMAND allow-list unless told.

import { silentLogger } from "../../actors/logger.js";
import type { Outcome } from "../../actors/requestServer.js";
import { commandsConfigSchema } from "../../daemon/host/command.js";
import { createHostHandlers, type HostRequestOptions } from "../../daemon/hostRequests.js";
import type { RequestType, Rqst } from "../../protocol/messages.js";
import { systemClock } from "../../transport/clock.js";

export function hostHandlers(options: Partial<HostRequestOptions> = {}) {
  return createHostHandlers({
    clock: systemClock,
    logger: silentLogger,
    commands: commandsConfigSchema.parse({}),
    ...options,
  });
}

export function hostRqst(type: RequestType, params: Record<string, unknown> = {}): Rqst {
  return { v: 1, type, src: "test", dst: 1, seq: 1, params } as Rqst;
}

/** The outcome of a handler that must have succeeded, typed; a failure throws with its error. */
export function succeeded<T>(outcome: Outcome): { rcode: number; data: T } {
  if ("error" in outcome) throw new Error(`${outcome.error}: ${outcome.message}`);
  return outcome as { rcode: number; data: T };
}
