#!/usr/bin/env node
// dvsctl: inspect and command a DVS cluster over NATS. With no flags it talks to
// the local cluster that `dvsd up` starts (nats://127.0.0.1:4222, cluster dvs).
import { hostname } from "node:os";
import { Command, InvalidArgumentError, Option } from "commander";
import { collectStatus, formatMembers } from "../actors/clusterStatus.js";
import { discoverNodes } from "../actors/discovery.js";
import { ParamError, parseParams } from "../actors/params.js";
import { formatTable } from "../actors/table.js";
import { VERSION } from "../actors/version.js";
import { DvsClient } from "../transport/client.js";
import { decode, encodingOf } from "../transport/codec.js";
import { connectNats, type NatsTransport } from "../transport/nats.js";
import {
  type EventMessage,
  errorName,
  eventSchema,
  REQUEST_TYPES,
  type Rply,
} from "../transport/protocol.js";
import { subjects } from "../transport/subjects.js";

/** Exit codes: 0 all answered OK, 1 a node answered an error, 2 bad usage, 3 cluster unreachable. */
const EXIT = { ok: 0, replyError: 1, usage: 2, unreachable: 3 } as const;

interface GlobalOptions {
  nats: string;
  cluster: string;
  user?: string;
  pass?: string;
  json: boolean;
  timeout: number;
}

function positive(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError("expected a positive integer");
  return n;
}

function nodeTarget(value: string): number | "ALL" {
  if (value.toLowerCase() === "all") return "ALL";
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65_535)
    throw new InvalidArgumentError("expected a node id or 'all'");
  return n;
}

const program = new Command()
  .name("dvsctl")
  .description("inspect and command a DVS cluster")
  .version(VERSION)
  .addOption(
    new Option("--nats <urls>", "NATS server URL(s), comma-separated")
      .env("DVS_NATS")
      .default("nats://127.0.0.1:4222"),
  )
  .addOption(new Option("--cluster <name>", "cluster name").env("DVS_CLUSTER").default("dvs"))
  .option("--user <user>", "NATS user")
  .option("--pass <password>", "NATS password")
  .option("--json", "machine-readable output", false)
  .option("--timeout <ms>", "how long to wait for answers", positive, 5_000)
  .showHelpAfterError()
  // Set before the subcommands are added, so they inherit it: usage errors exit 2.
  .exitOverride((err) => {
    const ok = ["commander.helpDisplayed", "commander.version", "commander.help"].includes(err.code);
    process.exit(ok ? EXIT.ok : EXIT.usage);
  })
  .addHelpText(
    "after",
    "\nExit status: 0 every answer OK, 1 a node answered an error, 2 bad usage, 3 cluster or node unreachable.",
  );

async function withConnection<T>(fn: (t: NatsTransport, g: GlobalOptions) => Promise<T>): Promise<T> {
  const g = program.opts<GlobalOptions>();
  const transport = await connectNats({
    servers: g.nats.split(","),
    name: `dvsctl@${hostname()}`,
    connectTimeoutMs: Math.min(g.timeout, 5_000),
    ...(g.user !== undefined ? { user: g.user } : {}),
    ...(g.pass !== undefined ? { pass: g.pass } : {}),
  });
  try {
    return await fn(transport, g);
  } finally {
    await transport.close();
  }
}

program
  .command("nodes")
  .description("list the nodes that answer discovery ($SRV.PING.dvsd)")
  .action(async () => {
    await withConnection(async (t, g) => {
      const nodes = await discoverNodes(t.connection, g.cluster, Math.min(g.timeout, 1_000));
      if (g.json) process.stdout.write(`${JSON.stringify(nodes)}\n`);
      else
        process.stdout.write(
          `${formatTable(
            ["node", "incarnation", "pid", "version", "service id"],
            nodes.map((n) => [n.node, n.incarnation, n.pid, n.version, n.id]),
          )}\n`,
        );
      if (nodes.length === 0) process.exitCode = EXIT.unreachable;
    });
  });

program
  .command("members")
  .description("every node's status and view (each node answers on dvs.<c>._status)")
  .addHelpText(
    "after",
    "\nWaits until every node named in an answer's view has answered, at most --timeout (here 1000 ms unless given).\nExit status 3 when no node answers.",
  )
  .action(async () => {
    await withConnection(async (t, g) => {
      const timeoutMs = program.getOptionValueSource("timeout") === "default" ? 1_000 : g.timeout;
      const status = await collectStatus(t, { cluster: g.cluster, timeoutMs });
      if (g.json) process.stdout.write(`${JSON.stringify(status.nodes)}\n`);
      else if (status.nodes.length > 0) process.stdout.write(`${formatMembers(status.nodes)}\n`);
      if (status.nodes.length === 0) {
        process.stderr.write(`dvsctl: no node of cluster "${g.cluster}" answered within ${timeoutMs} ms\n`);
        process.exitCode = EXIT.unreachable;
        return;
      }
      if (status.missing.length > 0) {
        process.stderr.write(
          `dvsctl: in a view but did not answer within ${timeoutMs} ms: node ${status.missing.join(", ")}\n`,
        );
      }
      if (status.malformed > 0)
        process.stderr.write(`dvsctl: ignored ${status.malformed} malformed answer(s)\n`);
    });
  });

program
  .command("watch")
  .description("print membership events (dvs.<c>.events) as they happen, until Ctrl-C")
  .addHelpText(
    "after",
    "\nOne line per event and observing node: time, observer node/incarnation, event, view id, members, changed, cause.\nWith --json, one JSON object per line.",
  )
  .action(async () => {
    await withConnection(async (t, g) => {
      const subject = subjects(g.cluster).events;
      const stopped = new Promise<void>((resolveStop) => {
        const onSignal = () => {
          process.off("SIGINT", onSignal);
          process.off("SIGTERM", onSignal);
          resolveStop();
        };
        process.on("SIGINT", onSignal);
        process.on("SIGTERM", onSignal);
      });
      const sub = t.subscribe(subject, (msg) => {
        const decoded = decode(msg.data, encodingOf(msg));
        const parsed = decoded.ok ? eventSchema.safeParse(decoded.value) : undefined;
        if (!parsed?.success) {
          const reason = decoded.ok ? "not a membership event" : decoded.message;
          process.stderr.write(`dvsctl: skipped a malformed message on ${subject}: ${reason}\n`);
          return;
        }
        process.stdout.write(`${g.json ? JSON.stringify(parsed.data) : formatEvent(parsed.data)}\n`);
      });
      await t.flush();
      process.stderr.write(`dvsctl: watching ${subject} (Ctrl-C stops)\n`);
      await stopped;
      sub.unsubscribe();
    });
  });

/** One readable line per event: time, observer, event, view, changed members, cause. */
function formatEvent(e: EventMessage): string {
  const changed = e.changed.map((m) => `${m.node}/${m.incarnation}`).join(",") || "-";
  return [
    new Date(e.at).toISOString(),
    `node ${e.node}/${e.incarnation}`,
    e.event.padEnd(10),
    `view ${e.view.id} [${e.view.members.join(",")}]`,
    `changed ${changed}`,
    `cause: ${e.cause}`,
  ].join("  ");
}

program
  .command("rqst")
  .description("send one request and print the reply")
  .argument("<type>", `request type: ${REQUEST_TYPES.join(", ")}`)
  .addOption(new Option("--node <id|all>", "destination node, or all").argParser(nodeTarget).default("ALL"))
  .option("--param <key=value...>", "a request parameter (repeatable; dotted keys nest)", [])
  .option("--params-json <json>", "all parameters as one JSON object")
  .addOption(new Option("--encoding <enc>", "wire encoding").choices(["cbor", "json"]).default("cbor"))
  .action(
    async (
      type: string,
      opts: { node: number | "ALL"; param: string[]; paramsJson?: string; encoding: "cbor" | "json" },
    ) => {
      const params = parseParams(opts.param, opts.paramsJson);
      await withConnection(async (t, g) => {
        const client = new DvsClient(t, {
          cluster: g.cluster,
          clientId: `dvsctl.${process.pid}`,
          encoding: opts.encoding,
        });
        const rply = await client.request(type.toUpperCase(), params, {
          dst: opts.node,
          timeoutMs: g.timeout,
        });
        printReplies(rply, g.json);
        process.exitCode = repliesOf(rply).some((r) => r.rcode < 0) ? EXIT.replyError : EXIT.ok;
      });
    },
  );

/** An ALL request answers one RPLY whose data holds one RPLY per node; a unicast answers one. */
function repliesOf(rply: Rply): Rply[] {
  if (
    Array.isArray(rply.data) &&
    rply.data.every((d) => typeof d === "object" && d !== null && "rcode" in d)
  ) {
    return rply.data as Rply[];
  }
  return [rply];
}

function printReplies(rply: Rply, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(rply)}\n`);
    return;
  }
  const rows = repliesOf(rply).map((r) => [
    r.src,
    r.type,
    r.seq,
    r.rcode < 0 ? `${errorName(r.rcode) ?? "E?"} (${r.rcode})` : r.rcode,
    r.count,
    JSON.stringify(r.data),
  ]);
  process.stdout.write(`${formatTable(["node", "type", "seq", "rcode", "count", "data"], rows)}\n`);
}

try {
  await program.parseAsync();
} catch (error) {
  const e = error as Error;
  if (e instanceof ParamError) {
    process.stderr.write(`dvsctl: ${e.message}\n`);
    process.exitCode = EXIT.usage;
  } else if (["ConnectError", "TimeoutError", "NoRespondersError", "TransportClosedError"].includes(e.name)) {
    process.stderr.write(`dvsctl: ${e.message}\n`);
    process.exitCode = EXIT.unreachable;
  } else {
    process.stderr.write(`dvsctl: ${e.stack ?? e.message}\n`);
    process.exitCode = EXIT.replyError;
  }
}
