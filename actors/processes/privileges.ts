// What a process may do (SETPRIV/GETPRIV): which requests it may make and
// which endpoints it may send to. The default is everything; the runtime checks
// each `dvs.send` and `dvs.rqst` a process emits against its privileges.

import { isRequestType, type RequestType } from "../../protocol/messages.js";
import type { Privileges } from "../../protocol/processes.js";
import { ANY_ENDPOINT, ANY_RQST } from "../../protocol/processes.js";
import { type Failure, fail } from "./failures.js";

export function allowsEndpoint(priv: Privileges, endpoint: number): boolean {
  return priv.endpoints.includes(ANY_ENDPOINT) || priv.endpoints.includes(endpoint);
}

export function allowsRqst(priv: Privileges, type: RequestType): boolean {
  return priv.rqsts.includes(ANY_RQST) || priv.rqsts.includes(type);
}

/** Whether `priv` is the default (a process may do everything). */
export function isUnrestricted(priv: Privileges): boolean {
  return priv.rqsts.includes(ANY_RQST) && priv.endpoints.includes(ANY_ENDPOINT);
}

/**
 * SETPRIV's privileges as stored: request types without their `RQST_` prefix,
 * each once and sorted, endpoints each once and sorted; an unknown type refuses them.
 */
export function normalizePrivileges(priv: Privileges): Privileges | Failure {
  const rqsts: string[] = [];
  for (const r of priv.rqsts) {
    const type = r.startsWith("RQST_") ? r.slice(5) : r;
    if (type !== ANY_RQST && !isRequestType(type)) return fail("EINVAL", `unknown request type ${r}`);
    if (!rqsts.includes(type)) rqsts.push(type);
  }
  const endpoints = [...new Set(priv.endpoints)].sort((a, b) => a - b);
  return { rqsts: rqsts.sort(), endpoints };
}
