// The sim's record of what happened, as plain data: two runs with the same seed
// produce deep-equal traces, which is how a test tells that a run repeats.

export type TraceKind =
  | "connect"
  | "close"
  | "crash"
  | "fault"
  | "publish"
  | "deliver"
  | "drop"
  | "noResponders"
  | "timeout"
  | "status"
  | "handlerError"
  | "listenerError";

/** One thing that happened, as plain data: two runs with the same seed produce deep-equal traces. */
export interface TraceEntry {
  readonly time: number;
  readonly kind: TraceKind;
  readonly from?: string;
  readonly to?: string;
  readonly subject?: string;
  readonly bytes?: number;
  /** FNV-1a of the payload, 8 hex digits. */
  readonly hash?: string;
  /** Why (drops), which status, which error, how many receivers. */
  readonly detail?: string;
}

/** FNV-1a, 32 bits: enough to tell payloads apart in a trace. */
export function contentHash(data: Uint8Array): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < data.length; i++) {
    h ^= data[i]!;
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, "0");
}
