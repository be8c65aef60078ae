// What a refused or failed process operation answers: an error name and a
// message, as a request's reply or a process's `dvs.error` event carries them,
// and how a transport failure reads in those terms.
import type { ErrorName } from "../../protocol/messages.js";
import { NoRespondersError, PayloadTooLargeError, TimeoutError } from "../../transport/errors.js";

export type Failure = { readonly error: ErrorName; readonly message: string };

export function fail(error: ErrorName, message: string): Failure {
  return { error, message };
}

/** An error's message, short enough for a reply. */
export function describe(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).slice(0, 200);
}

/** A transport failure as the error a reply carries. */
export function transportFailure(error: unknown, who: string): Failure {
  if (error instanceof TimeoutError) return { error: "ETIMEDOUT", message: `${who} did not answer in time` };
  if (error instanceof NoRespondersError) return { error: "EHOSTDOWN", message: `${who} is not listening` };
  if (error instanceof PayloadTooLargeError) return { error: "EMSGSIZE", message: describe(error) };
  return { error: "EHOSTDOWN", message: `${who} could not be reached: ${describe(error)}` };
}
