// SPEC 8: COMMIT latency of one file, 1 KiB and ~1 MB, with replication factor
// 3 — from the client's call to its SUCCESS — against an awaited raw
// JetStream publish of the same bytes on the same nats-server. Sequential
// commits, each a new version of one of a few names, raw and ours alternating
// in blocks after a warm-up of each. No target is set: a SUCCESS means three
// servers fsynced the bytes, a JetStream ack does not, so the ratio is
// reported for information, never judged.

import { UnexpectedReplyError } from "../errors.js";
import type { BenchRow } from "../row.js";
import { describeReady, FILE_CLUSTER_NOTE, REPLICATION_FACTOR, startFileCluster } from "./fileCluster.js";
import { RAW_FILE_NOTE, RawFileStream } from "./fileJetStream.js";
import { FILE_SIZES, fileRounds, latencyReport, type Plan } from "./fileRounds.js";
import { benchFiles, describeSize } from "./fileWorkload.js";

interface CommitRowOptions {
  readonly name: string;
  readonly size: number;
  readonly full: Plan;
  readonly quick: Plan;
}

function fileCommitRow(options: CommitRowOptions): BenchRow {
  const { name, size } = options;
  return {
    name,
    title: `COMMIT of ${describeSize(size)} to 5 dvsd processes (rf ${REPLICATION_FACTOR}, fsync) vs raw JetStream publish (informational)`,
    async run(ctx) {
      const plan = ctx.quick ? options.quick : options.full;
      const files = benchFiles(size);
      const probe = files[0] as (typeof files)[number];
      const raw = await RawFileStream.create(ctx, name);
      const store = await startFileCluster(ctx, name, probe);

      let holders = "";
      const ours = async (i: number) => {
        const file = files[i % files.length] as (typeof files)[number];
        const answer = await store.client.commit(file.name, file.source);
        if (answer.sha256 !== file.source.sha256 || answer.holders.length !== REPLICATION_FACTOR) {
          throw new UnexpectedReplyError(
            "COMMIT",
            `SUCCESS for ${answer.sha256.slice(0, 12)} with holders ${answer.holders.join(",")}`,
          );
        }
        holders = answer.holders.join(",");
      };
      const rawPublish = (i: number) => raw.publish(files[i % files.length] as (typeof files)[number]);

      const { ours: o, raw: r } = await fileRounds(ctx, plan, { label: "commit", ours, raw: rawPublish });
      const { measurements, ratios } = latencyReport(
        o,
        r,
        { ours: "commits", raw: "publishes" },
        "ours.p50 / raw.p50 (no target: not like for like)",
      );
      return {
        measurements,
        ratios,
        notes: [
          FILE_CLUSTER_NOTE,
          RAW_FILE_NOTE,
          `${describeSize(size)} per file, ${files.length} contents over 4 names; ours: client call → SUCCESS (the SHA-256 is computed beforehand); raw: publish → ack`,
          `${plan.warmup} warm-up of each, then ${plan.blocks} alternating blocks of ${plan.perBlock}; last holders ${holders}`,
          describeReady(store),
        ],
      };
    },
  };
}

export const fileCommit1k = fileCommitRow({ name: "file-commit-1k", ...FILE_SIZES["1k"] });
export const fileCommit1m = fileCommitRow({ name: "file-commit-1m", ...FILE_SIZES["1m"] });
