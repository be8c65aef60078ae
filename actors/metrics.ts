// What a node's parts report to the node's metrics: a few hooks they call
// inline, one counter step each, through narrow ports. The default does
// nothing, so the simulated cluster and the model tests pay nothing and see
// nothing. The daemon implements them with prom-client (daemon/metrics.ts) and
// reads the gauges (view, coordinator, bytes held, mailboxes) from the running
// node only when it is scraped.

/** Where a request came in: a public subject (full or read-only), or passed on by another node. */
export type RequestSource = "public" | "readonly" | "multicast" | "forward";

/** The membership messages a node counts, sent and received. */
export type MembershipMessageKind = "heartbeat" | "probe" | "hello" | "leave" | "alert" | "beacon";

export type Direction = "sent" | "received";

/**
 * The file store's operations: the clients' COMMIT, UPDATE and LS at the
 * coordinator, and the sessions servers run for one another (an active
 * server's placement of a commit, a holder's replica, an active server's
 * search for a holder, a repair's copies).
 */
export type FileOperation = "commit" | "update" | "ls" | "place" | "replica" | "find" | "repair";

export interface RequestMetrics {
  /**
   * A reply to a request of `type` went out from here with `rcode`, `ms` after
   * the request came in (a refusal too). `type` is as the requester sent it.
   */
  requestAnswered(type: string, rcode: number, source: RequestSource, ms: number): void;
}

export interface GatherMetrics {
  /** A `dst: ALL` gather ended: members expected, members silent at the timeout, members that left the view. */
  gathered(expected: number, timedOut: number, left: number): void;
}

export interface MembershipMetrics {
  membershipMessage(kind: MembershipMessageKind, direction: Direction): void;
}

export interface ViewMetrics {
  /** This node announced a view change (JOIN, DISCONNECT, PARTITION, MERGE). */
  viewChanged(event: string): void;
}

export interface ElectionMetrics {
  /** This node's server won a term (became coordinator) with `epoch`. */
  termWon(epoch: number): void;
}

export interface FileMetrics {
  /** A file store operation ended: `outcome` is "ok", "busy" or the error's name. */
  fileOperation(operation: FileOperation, outcome: string): void;
}

export interface NodeMetrics
  extends RequestMetrics,
    GatherMetrics,
    MembershipMetrics,
    ViewMetrics,
    ElectionMetrics,
    FileMetrics {}

/** Measures nothing: the default of every part. */
export const noMetrics: NodeMetrics = {
  requestAnswered: () => {},
  gathered: () => {},
  membershipMessage: () => {},
  viewChanged: () => {},
  termWon: () => {},
  fileOperation: () => {},
};

/** A file answer's outcome for `FileMetrics`: "ok", "busy", or its error's name. */
export function fileOutcome(answer: { readonly type: string; readonly error?: string }): string {
  if (answer.type === "ERROR") return answer.error ?? "error";
  return answer.type === "BUSY" ? "busy" : "ok";
}
