// dvsctl's commands about the cluster itself rather than a request type:
// `nodes` (NATS micro discovery), `members` (every node's status and view) and
// `watch` (membership events as they happen).
import type { Command } from "commander";
import { collectStatus, formatMembers } from "../../actors/clusterStatus.js";
import { discoverNodes } from "../../actors/discovery.js";
import { formatTable } from "../../actors/table.js";
import { decode, encodingOf } from "../../transport/codec.js";
import { type EventMessage, eventSchema } from "../../transport/protocol.js";
import { subjects } from "../../transport/subjects.js";
import { EXIT, withConnection } from "./session.js";

export function addClusterCommands(program: Command): void {
  program
    .command("nodes")
    .description("list the nodes that answer discovery ($SRV.PING.dvsd)")
    .addHelpText(
      "after",
      "\nExample:\n  $ dvsctl nodes\n\nExit status 3 when no node of the cluster answers.",
    )
    .action(async (_opts: unknown, cmd: Command) => {
      await withConnection(cmd, async (t, g) => {
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
      "\nWaits until every node named in an answer's view has answered, at most --timeout (here 1000 ms unless given).\nExit status 3 when no node answers.\n\nExample:\n  $ dvsctl members --json",
    )
    .action(async (_opts: unknown, cmd: Command) => {
      await withConnection(cmd, async (t, g) => {
        const timeoutMs = cmd.getOptionValueSourceWithGlobals("timeout") === "default" ? 1_000 : g.timeout;
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
      "\nOne line per event and observing node: time, observer node/incarnation, event, view id, members, changed, cause.\nWith --json, one JSON object per line.\n\nExample:\n  $ dvsctl watch --json",
    )
    .action(async (_opts: unknown, cmd: Command) => {
      await withConnection(cmd, async (t, g) => {
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
}

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
