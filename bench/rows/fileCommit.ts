// SPEC 8: COMMIT latency of one file, 1 KiB and ~1 MB, with replication factor
// 3 — from the client's call to its SUCCESS — against an awaited raw
// JetStream publish of the same bytes on the same nats-server. Sequential
// commits, each a new version of one of a few names, raw and ours alternating
// in blocks after a warm-up of each. No target is set: a SUCCESS means three
// servers fsynced the bytes, a JetStream ack does not, so the ratio is
// reported for information, never judged.

import { UnexpectedReplyError } from "../errors.js";
import type { BenchRow, Measurement, Ratio } from "../row.js";
import { ratio, summarize } from "../stats.js";
import { describeReady, FILE_CLUSTER_NOTE, REPLICATION_FACTOR, startFileCluster } from "./fileCluster.js";
import { RAW_FILE_NOTE, RawFileStream } from "./fileJetStream.js";
import { FILE_SIZES, fileRounds, type Plan } from "./fileRounds.js";
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
      const os = summarize(o);
      const rs = summarize(r);
      const measurements: Measurement[] = [
        { name: "ours.p50", value: os.p50, unit: "ms" },
        { name: "ours.p90", value: os.p90, unit: "ms" },
        { name: "ours.max", value: os.max, unit: "ms" },
        { name: "raw.p50", value: rs.p50, unit: "ms" },
        { name: "raw.p90", value: rs.p90, unit: "ms" },
        { name: "raw.max", value: rs.max, unit: "ms" },
        { name: "ours.commits", value: os.count, unit: "requests" },
        { name: "raw.publishes", value: rs.count, unit: "requests" },
      ];
      const ratios: Ratio[] = [
        {
          name: "p50",
          of: "ours.p50 / raw.p50 (no target: not like for like)",
          value: ratio(os.p50, rs.p50),
        },
        { name: "p90", of: "ours.p90 / raw.p90", value: ratio(os.p90, rs.p90) },
      ];
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
