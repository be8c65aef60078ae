// The raw baseline of the RQST rows (bench/nodeEcho.ts), as a process of its
// own: a bare nats.js responder that answers every message with its own bytes
// (`msg.respond(msg.data)`), started with the V8 flags of a `dvsd run` node
// and connected by the same `connectNats` options and user as one. So the only
// difference left against a node is what dvsd does between receiving a request
// and answering it. Prints "ready" on stdout once its subscription is flushed.
import { connectNats } from "../transport/nats.js";

interface EchoResponderArgs {
  readonly url: string;
  readonly user: string;
  readonly pass: string;
  readonly subject: string;
}

/** How often it checks that the bench is still there (it is SIGKILLed when the row ends). */
const ORPHAN_CHECK_MS = 5_000;

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? "{}") as EchoResponderArgs;
  const transport = await connectNats({
    servers: [args.url],
    name: "bench-echo-responder",
    user: args.user,
    pass: args.pass,
  });
  // nats.js directly, not the Transport: the baseline must not go through our code.
  transport.connection.subscribe(args.subject, {
    callback: (error, msg) => {
      if (!error) msg.respond(msg.data);
    },
  });
  await transport.connection.flush();
  process.stdout.write("ready\n");
  const parentPid = Number(process.env.DVS_PARENT_PID);
  const stop = () => {
    transport.close().finally(() => process.exit(0));
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  setInterval(() => {
    if (parentPid > 0 && !isAlive(parentPid)) stop();
  }, ORPHAN_CHECK_MS).unref();
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
  process.stderr.write(`echo responder: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
