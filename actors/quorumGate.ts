// Quorum mode acting on the minority mark (SPEC 4, 5; docs/protocol.md 9.5):
// while this node's component holds no majority of the last full view, the
// requests that need the whole DVS and the file store's COMMIT are refused
// with EROFS; reads and host requests are answered as ever.
import { MUTATING_TYPES, REQUEST_GROUPS, type RequestType, type Rqst } from "../protocol/messages.js";
import type { Outcome } from "./requestServer.js";

/** The request types a minority may be told to refuse: the mutating ones that are not host requests. */
export const MINORITY_REFUSABLE: readonly RequestType[] = [...MUTATING_TYPES].filter(
  (t) => !(REQUEST_GROUPS.host as readonly string[]).includes(t),
);

/**
 * `membership.minorityRefuses` by default: the requests that change the DVS or
 * a DC for every node. Process requests (SPAWN, SEND, MIGRATE, PROCEND,
 * SETPRIV) act on this node's own processes and stay allowed unless listed.
 */
export const DEFAULT_MINORITY_REFUSES: readonly RequestType[] = [
  "DVSINIT",
  "DVSEND",
  "DCINIT",
  "DCEND",
  "ADDNODE",
  "DELNODE",
];

export interface QuorumGateOptions {
  /** Whether this node marks itself minority now (its membership's `minority`; false outside quorum mode). */
  readonly minority: () => boolean;
  /** The request types refused while in a minority (default DEFAULT_MINORITY_REFUSES). */
  readonly refuses?: readonly RequestType[];
}

/** A request gate: a refusal, or undefined to let the request through. */
export type RequestGate = (rqst: Rqst) => Outcome | undefined;

export class QuorumGate {
  readonly #minority: () => boolean;
  readonly #refuses: ReadonlySet<RequestType>;

  constructor(options: QuorumGateOptions) {
    this.#minority = options.minority;
    this.#refuses = new Set(options.refuses ?? DEFAULT_MINORITY_REFUSES);
  }

  /** True while this node is in a minority: its file store takes no COMMIT. */
  readOnly(): boolean {
    return this.#minority();
  }

  /** EROFS for a listed request type while in a minority. */
  readonly request: RequestGate = (rqst) =>
    this.#refuses.has(rqst.type) && this.readOnly()
      ? {
          error: "EROFS",
          message: `${rqst.type} needs the whole DVS: this node's component holds no majority of the last full view (quorum mode)`,
        }
      : undefined;
}

/** The first refusal of `gates`, in order. */
export function composeGates(...gates: readonly RequestGate[]): RequestGate {
  return (rqst) => {
    for (const gate of gates) {
      const refused = gate(rqst);
      if (refused) return refused;
    }
    return undefined;
  };
}
