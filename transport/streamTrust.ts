// A stream dvsd writes to is trusted only if it keeps its messages to itself.
// Whoever creates a stream first chooses its config: one made with `republish`
// would copy every record onto a subject of the creator's choosing (a heartbeat
// subject, say) as JetStream, past the publish permissions; `sources` or
// `mirror` would pour another stream's messages in. A node refuses such a
// stream rather than write to it (docs/security.md, property 4).

/** The parts of a stream config that decide where its messages go. */
export interface StreamRouting {
  readonly subjects?: readonly string[] | undefined;
  readonly republish?: unknown;
  readonly sources?: readonly unknown[] | undefined;
  readonly mirror?: unknown;
}

/** Why a stream may not be used, or an empty list when it may. */
export function untrustedStream(config: StreamRouting, expectedSubjects: readonly string[]): string[] {
  const reasons: string[] = [];
  if (config.republish !== undefined && config.republish !== null)
    reasons.push("it republishes its messages");
  if ((config.sources?.length ?? 0) > 0) reasons.push("it sources other streams");
  if (config.mirror !== undefined && config.mirror !== null) reasons.push("it mirrors another stream");
  const subjects = config.subjects ?? [];
  const extra = subjects.filter((s) => !expectedSubjects.includes(s));
  if (extra.length > 0) reasons.push(`it also takes subjects ${extra.join(", ")}`);
  return reasons;
}

/** A stream dvsd will not write to. */
export class UntrustedStreamError extends Error {
  override readonly name = "UntrustedStreamError";
  constructor(
    readonly stream: string,
    readonly reasons: readonly string[],
  ) {
    super(
      `stream ${stream} is not as dvsd makes it (${reasons.join("; ")}): an operator must delete and recreate it`,
    );
  }
}
