// SPEC 8: UPDATE latency of one file, 1 KiB and ~1 MB, held by 3 of 5 dvsd
// processes — from the client's call to the bytes in memory with their
// SHA-256 checked — against a raw JetStream direct get of the same bytes from
// the same nats-server, hashed the same way. Sequential reads of a few names
// committed beforehand, raw and ours alternating in blocks after a warm-up of
// each. Reported for information: there is no target.
import { memorySink } from "../../client/fileClient.js";
import { UnexpectedReplyError } from "../errors.js";
import type { BenchRow } from "../row.js";
import { describeReady, FILE_CLUSTER_NOTE, REPLICATION_FACTOR, startFileCluster } from "./fileCluster.js";
import { RAW_FILE_NOTE, RawFileStream } from "./fileJetStream.js";
import { FILE_SIZES, fileRounds, latencyReport, type Plan } from "./fileRounds.js";
import { type BenchFile, benchFiles, describeSize } from "./fileWorkload.js";

interface UpdateRowOptions {
  readonly name: string;
  readonly size: number;
  readonly full: Plan;
  readonly quick: Plan;
}

function fileUpdateRow(options: UpdateRowOptions): BenchRow {
  const { name, size } = options;
  return {
    name,
    title: `UPDATE of ${describeSize(size)} from 5 dvsd processes (rf ${REPLICATION_FACTOR}) vs raw JetStream direct get (informational)`,
    async run(ctx) {
      const plan = ctx.quick ? options.quick : options.full;
      const all = benchFiles(size);
      // One content per name, the newest on both sides.
      const files = [...new Map(all.map((f) => [f.name, f])).values()];
      const raw = await RawFileStream.create(ctx, name);
      const store = await startFileCluster(ctx, name, all[0] as BenchFile);
      const versions = new Map<string, number>();
      for (const file of files) {
        const committed = await ctx.within(
          30_000,
          `COMMIT ${file.name}`,
          store.client.commit(file.name, file.source),
        );
        versions.set(file.name, committed.version);
        await ctx.within(5_000, `publish ${file.token}`, raw.publish(file));
      }

      const sources = new Map<number, number>();
      const ours = async (i: number) => {
        const file = files[i % files.length] as BenchFile;
        const sink = memorySink(size);
        const read = await store.client.update(file.name, () => sink);
        if (
          read.sha256 !== file.source.sha256 ||
          read.version !== versions.get(file.name) ||
          sink.bytes().byteLength !== size
        ) {
          throw new UnexpectedReplyError(
            "UPDATE",
            `${file.name} version ${read.version} (${read.sha256.slice(0, 12)}, ${sink.bytes().byteLength} B)`,
          );
        }
        sources.set(read.source, (sources.get(read.source) ?? 0) + 1);
      };
      const rawGet = (i: number) => {
        const file = files[i % files.length] as BenchFile;
        return raw.get(file, file.source.sha256);
      };

      const { ours: o, raw: r } = await fileRounds(ctx, plan, { label: "update", ours, raw: rawGet });
      const servedBy = [...sources]
        .sort(([a], [b]) => a - b)
        .map(([node, n]) => `${node} ×${n}`)
        .join(", ");
      const { measurements, ratios } = latencyReport(
        o,
        r,
        { ours: "updates", raw: "gets" },
        "ours.p50 / raw.p50 (no target)",
      );
      return {
        measurements,
        ratios,
        notes: [
          FILE_CLUSTER_NOTE,
          RAW_FILE_NOTE,
          `${describeSize(size)} per file, ${files.length} names; ours: client call → bytes in memory, SHA-256 checked (UPDATE to the coordinator, then READ from the holder it names); raw: direct get of the subject's last message, SHA-256 checked`,
          `${plan.warmup} warm-up of each, then ${plan.blocks} alternating blocks of ${plan.perBlock}; read from node ${servedBy}`,
          describeReady(store),
        ],
      };
    },
  };
}

export const fileUpdate1k = fileUpdateRow({ name: "file-update-1k", ...FILE_SIZES["1k"] });
export const fileUpdate1m = fileUpdateRow({ name: "file-update-1m", ...FILE_SIZES["1m"] });
