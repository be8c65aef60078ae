// dvsctl's commands about the cluster itself rather than a request type:
// `nodes` (NATS micro discovery), `members` (every node's status and view) and
// `watch` (membership events as they happen).
import type { Command } from "commander";
import { collectStatus, formatMembers } from "../../client/clusterStatus.js";
import { systemClock } from "../../client/connection.js";
import { discoverNodes } from "../../client/discovery.js";
import { watchEvents } from "../../client/events.js";
import { type Answer, RegistryClient } from "../../client/registryClient.js";
import { formatTable } from "../../client/table.js";
import type { ClusterEvent } from "../../client/wire.js";
import { nodeId, unsigned } from "./args.js";
import { EXIT, withConnection } from "./session.js";

export function addClusterCommands(program: Command): void {
  addWhoCommand(program);
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
    .description(
      "print membership and COORDINATOR events (dvs.<c>.events.<node>) as they happen, until Ctrl-C",
    )
    .addHelpText(
      "after",
      "\nOne line per event and observing node: time, observer node/incarnation, event, view id, members, changed, cause.\nWith --json, one JSON object per line.\n\nExample:\n  $ dvsctl watch --json",
    )
    .action(async (_opts: unknown, cmd: Command) => {
      await withConnection(cmd, async (t, g) => {
        const stopped = new Promise<void>((resolveStop) => {
          const onSignal = () => {
            process.off("SIGINT", onSignal);
            process.off("SIGTERM", onSignal);
            resolveStop();
          };
          process.on("SIGINT", onSignal);
          process.on("SIGTERM", onSignal);
        });
        const watch = watchEvents(
          t,
          g.cluster,
          (event) => process.stdout.write(`${g.json ? JSON.stringify(event) : formatEvent(event)}\n`),
          (reason) => process.stderr.write(`dvsctl: skipped ${reason}\n`),
        );
        await t.flush();
        process.stderr.write(`dvsctl: watching ${watch.subject} (Ctrl-C stops)\n`);
        await stopped;
        watch.subscription.unsubscribe();
      });
    });
}

/** One readable line per event: time, observer, event, then the view and changed members, or the coordinator. */
function formatEvent(e: ClusterEvent): string {
  const head = [new Date(e.at).toISOString(), `node ${e.node}/${e.incarnation}`, e.event.padEnd(11)];
  if (e.event === "COORDINATOR") {
    const who = e.coordinator === null ? "none (stepped down)" : `node ${e.coordinator}`;
    return [...head, `coordinator ${who}`, `epoch ${e.epoch}`, `cause: ${e.cause}`].join("  ");
  }
  const changed = e.changed.map((m) => `${m.node}/${m.incarnation}`).join(",") || "-";
  return [
    ...head,
    `view ${e.view.id} [${e.view.members.join(",")}]`,
    `changed ${changed}`,
    `cause: ${e.cause}`,
  ].join("  ");
}

function formatAnswer(answer: Answer): string {
  return answer.type === "OK"
    ? `coordinator ${answer.coordinator}  epoch ${answer.epoch}`
    : "NOTHING (no coordinator)";
}

function addWhoCommand(program: Command): void {
  program
    .command("who")
    .description("who the coordinator is, with its epoch (the registry on dvs.<c>.dns.who)")
    .option("--node <id>", "ask node ID's registry instead of any node's", nodeId)
    .option("--wait <ms>", "on NOTHING, ask again with backoff for up to this long", unsigned, 0)
    .addHelpText(
      "after",
      [
        "",
        "Prints `coordinator N  epoch E`, or NOTHING while an election is on. With --json, the answer as JSON:",
        '{"v":1,"type":"OK","coordinator":3,"epoch":57} or {"v":1,"type":"NOTHING"}.',
        "Exit status 1 on NOTHING, 3 when no registry answers.",
        "",
        "Examples:",
        "  $ dvsctl who",
        "  $ dvsctl who --node 2 --json",
        "  $ dvsctl who --wait 5000",
      ].join("\n"),
    )
    .action(async (opts: { node?: number; wait: number }, cmd: Command) => {
      await withConnection(cmd, async (t, g) => {
        const client = new RegistryClient({
          cluster: g.cluster,
          transport: t,
          clock: systemClock,
          timeoutMs: g.timeout,
        });
        let answer = await client.who(opts.node);
        if (answer.type === "NOTHING" && opts.wait > 0 && opts.node === undefined) {
          answer = await client.coordinator(opts.wait).then(
            (c) => ({ v: 1, type: "OK", ...c }) as const,
            () => answer,
          );
        }
        process.stdout.write(`${g.json ? JSON.stringify(answer) : formatAnswer(answer)}\n`);
        if (answer.type === "NOTHING") process.exitCode = EXIT.replyError;
      });
    });
}
