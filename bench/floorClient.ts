// One process of the transport floor (`npm run scale -- --only floor`,
// bench/scaleFloor.ts): a bare nats.js connection, made by the same
// `connectNats` and V8 flags as a dvsd node, doing only the traffic that
// SPEC 4's default membership settings imply for one node and nothing else:
// a heartbeat every `periodMs` on its own subject, and a subscription to the
// heartbeats of the `observers` nodes it watches on a ring. No decoding, no
// machine, no timers beyond the heartbeat's. What it costs is the least any
// node on nats.js pays for those defaults on this machine.
import { connectNats } from "../transport/nats.js";

interface FloorClientArgs {
  readonly url: string;
  readonly user: string;
  readonly pass: string;
  readonly id: number;
  readonly processes: number;
  /** Nodes this one watches (their heartbeats it receives); 0: connected and silent. */
  readonly observers: number;
  readonly periodMs: number;
  /** Heartbeats at wall-clock multiples of the period (all processes in step) or each at its own phase. */
  readonly aligned: boolean;
  readonly prefix: string;
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? "{}") as FloorClientArgs;
  const transport = await connectNats({
    servers: [args.url],
    name: `dvs-floor-${args.id}`,
    user: args.user,
    pass: args.pass,
  });
  const parentPid = Number(process.env.DVS_PARENT_PID);
  const stop = () => {
    transport.close().finally(() => process.exit(0));
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  // Should the bench die without cleaning up, this stops by itself (checked with the heartbeat).
  const orphaned = () => parentPid > 0 && !isAlive(parentPid);
  if (args.observers === 0) {
    setInterval(() => orphaned() && stop(), 10_000);
    return;
  }
  for (let k = 1; k <= Math.min(args.observers, args.processes - 1); k++) {
    transport.subscribe(`${args.prefix}.${(args.id + k) % args.processes}`, () => {});
  }
  const body = new Uint8Array(48);
  const subject = `${args.prefix}.${args.id}`;
  let beats = 0;
  const next = () => (args.aligned ? args.periodMs - (Date.now() % args.periodMs) : args.periodMs);
  const beat = () => {
    transport.publish(subject, body);
    if (++beats % 50 === 0 && orphaned()) return stop();
    setTimeout(beat, next());
  };
  setTimeout(beat, args.aligned ? next() : Math.random() * args.periodMs);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`floor client: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
