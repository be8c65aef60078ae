// The file rows' baseline: the same bytes through bare JetStream on the run's
// nats-server, with no dvsd code in the path. A file-storage stream made for
// the row keeps the newest message per subject (one subject per file name, as
// the store keeps the newest version per name); a COMMIT's counterpart is an
// awaited `js.publish`, an UPDATE's a direct get of the subject's last message.
import { createHash } from "node:crypto";
import {
  DiscardPolicy,
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
} from "@nats-io/jetstream";
import { UnexpectedReplyError } from "../errors.js";
import type { BenchContext } from "../row.js";
import type { BenchFile } from "./fileWorkload.js";

/** Printed with each file row: what the raw side does and does not do. */
export const RAW_FILE_NOTE =
  "raw: nats.js (connection defaults) to a file-storage JetStream stream (1 replica, newest message per subject, direct get allowed); JetStream acks once the message is in its block file, handed to the OS but not fsynced (nats-server fsyncs stream files every 2 min by default; docs/operations.md, Sync policy)";

export class RawFileStream {
  readonly #js: JetStreamClient;
  readonly #jsm: JetStreamManager;

  private constructor(
    readonly stream: string,
    readonly prefix: string,
    js: JetStreamClient,
    jsm: JetStreamManager,
  ) {
    this.#js = js;
    this.#jsm = jsm;
  }

  /** Creates the stream `BENCH_FILES_<id>` on subjects `bench.files.<id>.>`; deleted when the row ends. */
  static async create(ctx: BenchContext, id: string): Promise<RawFileStream> {
    const nc = await ctx.connectRaw(`bench-files-${id}-raw`);
    const jsm = await ctx.within(5_000, "JetStream manager", jetstreamManager(nc));
    const stream = `BENCH_FILES_${id.toUpperCase().replace(/[^A-Z0-9]/g, "_")}`;
    const prefix = `bench.files.${id}`;
    await ctx.within(
      5_000,
      `stream ${stream}`,
      jsm.streams.add({
        name: stream,
        subjects: [`${prefix}.>`],
        storage: StorageType.File,
        retention: RetentionPolicy.Limits,
        discard: DiscardPolicy.Old,
        max_msgs_per_subject: 1,
        num_replicas: 1,
        allow_direct: true,
      }),
    );
    ctx.defer(() => (nc.isClosed() ? undefined : jsm.streams.delete(stream)));
    return new RawFileStream(stream, prefix, jetstream(nc), jsm);
  }

  /** Publishes the file's bytes and waits for the stream's ack. */
  async publish(file: BenchFile): Promise<void> {
    const ack = await this.#js.publish(this.#subject(file), file.bytes);
    if (ack.stream !== this.stream) {
      throw new UnexpectedReplyError(this.#subject(file), `ack from stream ${ack.stream}`);
    }
  }

  /** Reads the subject's newest message and checks its SHA-256 against `expected`. */
  async get(file: BenchFile, expected: string): Promise<void> {
    const subject = this.#subject(file);
    const msg = await this.#jsm.direct.getMessage(this.stream, { last_by_subj: subject });
    if (msg === null) throw new UnexpectedReplyError(subject, "no message");
    const actual = createHash("sha256").update(msg.data).digest("hex");
    if (actual !== expected) {
      throw new UnexpectedReplyError(subject, `${msg.data.byteLength} B with SHA-256 ${actual}`);
    }
  }

  #subject(file: BenchFile): string {
    return `${this.prefix}.${file.token}`;
  }
}
