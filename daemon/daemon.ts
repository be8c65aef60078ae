// `dvsd run`: one node daemon on a real NATS deployment. Wires the node runtime
// to the NATS transport, pino, the system clock and, when configured, its
// Prometheus metrics, and turns SIGINT/SIGTERM into a graceful stop bounded by
// `shutdown.graceMs`.
import { join } from "node:path";
import { registerService } from "../actors/discovery.js";
import { DiskReplicas } from "../actors/files/diskReplicas.js";
import { createLogger, type Logger, throttledWarn } from "../actors/logger.js";
import { endedByClosedLink, NodeRuntime } from "../actors/node.js";
import { nextIncarnation } from "../actors/stateDir.js";
import { defaultElectionTimings } from "../machines/electionTimings.js";
import { nodeClientName } from "../protocol/advisories.js";
import { inboxPrefixFor } from "../protocol/responder.js";
import { JetStreamActionLog } from "../transport/actionLogJetStream.js";
import { monotonicClock, systemClock } from "../transport/clock.js";
import { PermissionDeniedError } from "../transport/errors.js";
import { coordinatorBucketName, JetStreamCasStore } from "../transport/kvJetStream.js";
import { connectNats, type NatsTransport } from "../transport/nats.js";
import { membershipTimings, type NodeConfig } from "./config.js";
import { nodeUserName } from "./credentials.js";
import { MetricsListenError } from "./errors.js";
import { ownAddress } from "./hostAddress.js";
import { createHostHandlers, protectedPidsFromEnv } from "./hostRequests.js";
import { PrometheusMetrics } from "./metrics.js";
import { type MetricsServer, serveMetrics } from "./metricsServer.js";
import { ScriptRunner } from "./scripts.js";

export function createNatsNode(
  config: NodeConfig,
  logger: Logger,
  scripts?: ScriptRunner,
  metrics?: PrometheusMetrics,
): NodeRuntime<NatsTransport> {
  const incarnation = nextIncarnation(config.stateDir, systemClock.now());
  const refusedReply = throttledWarn(logger, systemClock);
  return new NodeRuntime<NatsTransport>(
    {
      node: config.node,
      cluster: config.cluster,
      incarnation,
      timings: membershipTimings(config),
      quorum: config.membership.quorum,
      minorityRefuses: config.membership.minorityRefuses,
      requestTimeoutMs: config.requests.timeoutMs,
      adminKeys: config.adminKeys,
      addr: ownAddress(config.address),
      election: {
        serverType: config.election.server,
        timings: defaultElectionTimings(config.election.leaseMs),
      },
      files: {
        replicationFactor: config.files.replicationFactor,
        maxSessions: config.files.maxSessions,
        maxFileBytes: config.files.maxFileMegabytes * 1024 * 1024,
        repairEveryMs: config.files.repairEveryMs,
      },
    },
    {
      // Leases and failure detection measure elapsed time: a monotonic clock.
      clock: monotonicClock,
      logger,
      pid: process.pid,
      stateDir: config.stateDir,
      ...(metrics ? { metrics } : {}),
      nextIncarnation: () => nextIncarnation(config.stateDir, systemClock.now()),
      ...(scripts ? { onViewChange: (event) => scripts.enqueue(event) } : {}),
      connect: (identity) =>
        connectNats({
          servers: config.nats.servers,
          // Names the node in the server's DISCONNECT advisories (actors/node/disconnects.ts).
          name: nodeClientName(identity.cluster, identity.node),
          reconnectWaitMs: config.nats.reconnectWaitMs,
          connectTimeoutMs: config.nats.connectTimeoutMs,
          randomize: config.nats.randomize,
          discover: config.nats.discover,
          // The node's replies arrive under its own inbox prefix, the only one
          // its identity may subscribe to (nats.conf), also when it logs in by nkey.
          inboxPrefix: inboxPrefixFor(config.nats.user ?? nodeUserName(config.node)),
          onHandlerError: (error, subject) =>
            error instanceof PermissionDeniedError
              ? logger.warn(
                  { err: error, subject },
                  "nats-server refused a subscription: its accounts may predate this dvsd (render them again: dvsd nats-accounts)",
                )
              : logger.error({ err: error, subject }, "handler failed"),
          ...(config.nats.user !== undefined ? { user: config.nats.user } : {}),
          ...(config.nats.pass !== undefined ? { pass: config.nats.pass } : {}),
          ...(config.nats.token !== undefined ? { token: config.nats.token } : {}),
          ...(config.nats.nkeySeedFile !== undefined ? { nkeySeedFile: config.nats.nkeySeedFile } : {}),
          ...(config.nats.tls !== undefined ? { tls: config.nats.tls } : {}),
        }),
      register: (transport, identity, endpoints) =>
        registerService(transport.connection, identity, {
          endpoints,
          onRefused: (reply) =>
            refusedReply(
              "srv-reply",
              { reply: reply.slice(0, 200) },
              "refused to answer a $SRV ping outside the inbox namespace",
            ),
        }),
      hostHandlers: createHostHandlers({
        clock: systemClock,
        logger,
        commands: config.commands,
        protectedPids: protectedPidsFromEnv(process.env),
      }),
      ...(config.election.enabled
        ? {
            coordinatorStore: (transport: NatsTransport) =>
              new JetStreamCasStore(transport.connection, {
                bucket: coordinatorBucketName(config.cluster),
                replicas: config.election.replicas,
                // A lease renewal that takes longer than the lease is no use.
                timeoutMs: Math.min(2_000, config.election.leaseMs),
              }),
          }
        : {}),
      ...(config.election.enabled && config.files.enabled
        ? {
            replicas: () =>
              new DiskReplicas({
                dir: config.files.dir ?? join(config.stateDir, "files"),
                logger: logger.child({ role: "replicas" }),
              }),
          }
        : {}),
      actionLog: (transport) => {
        const log = new JetStreamActionLog(transport.connection, {
          cluster: config.cluster,
          maxAgeMs: config.actions.maxAgeDays * 86_400_000,
          maxBytes: config.actions.maxMegabytes * 1024 * 1024,
          replicas: config.actions.replicas,
          logger: logger.child({ role: "actions" }),
        });
        return metrics ? metrics.timedActionLog(log) : log;
      },
    },
  );
}

/** Runs the daemon until it ends; returns the process exit code. */
export async function runDaemon(config: NodeConfig): Promise<number> {
  const logger = createLogger({ level: config.log.level, node: config.node });
  const scripts = new ScriptRunner(config.scripts, { logger, clock: systemClock });
  const metrics =
    config.metrics.port > 0
      ? new PrometheusMetrics({ node: config.node, cluster: config.cluster, processMetrics: true })
      : undefined;
  const node = createNatsNode(config, logger, scripts, metrics);
  logExit(logger);
  metrics?.observe(node);
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, "second signal: exiting now");
      process.exit(130);
    }
    stopping = true;
    logger.info({ signal }, "shutting down");
    const timer = setTimeout(() => {
      logger.error({ graceMs: config.shutdown.graceMs }, "graceful shutdown took too long; exiting");
      process.exit(1);
    }, config.shutdown.graceMs);
    timer.unref();
    node.actor.send({ type: "node.stop", reason: signal });
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  watchParent(logger, () => onSignal("SIGTERM"));

  node.start();
  logger.info(
    {
      cluster: config.cluster,
      servers: config.nats.servers,
      stateDir: config.stateDir,
      incarnation: node.identity.incarnation,
    },
    "node starting",
  );
  const metricsServer = metrics ? await startMetrics(metrics, config, logger) : undefined;
  try {
    await node.running();
  } catch (error) {
    await metricsServer?.close();
    logger.flush();
    process.stderr.write(`dvsd: ${(error as Error).message}${causeOf(error)}\n`);
    return 1;
  }
  const reason = await node.ended();
  await metricsServer?.close();
  // Let the scripts of the last events finish, within what is left of the grace period.
  await scripts.drain(config.shutdown.graceMs / 2).catch((error: unknown) => {
    logger.warn({ err: error }, "event scripts still running at shutdown; stopping them");
  });
  await scripts.stop();
  // Ended without being asked to: the connection closed under it.
  const code = !stopping && endedByClosedLink(reason) ? 1 : 0;
  // Every exit leaves its reason in the log (a supervisor or a chaos run reads it there).
  if (stopping) logger.info({ reason, code }, "node stopped");
  else logger.error({ reason, code }, `node ended by itself: ${reason}`);
  logger.flush();
  return code;
}

/**
 * The last line of every daemon, whatever ends it (a return, process.exit, an
 * uncaught error after Node printed it): its exit code. pino writes to stdout
 * synchronously, so the line is out before the process is.
 */
export function logExit(logger: Logger): void {
  process.once("exit", (code) => logger.info({ code }, "dvsd exiting"));
}

/**
 * Serves the node's metrics. An address it cannot have is logged as an error
 * and the node runs on without them: exiting would only have a supervisor
 * restart it into the same error, and Prometheus reports the target down.
 */
async function startMetrics(
  metrics: PrometheusMetrics,
  config: NodeConfig,
  logger: Logger,
): Promise<MetricsServer | undefined> {
  const { host, port } = config.metrics;
  try {
    const server = await serveMetrics(metrics, host, port);
    logger.info({ url: server.url }, "serving metrics");
    return server;
  } catch (error) {
    if (!(error instanceof MetricsListenError)) throw error;
    logger.error({ err: error, host, port }, `${error.message}; running without metrics`);
    return undefined;
  }
}

/**
 * A node started by `dvsd up` stops by itself when the launcher is gone (even
 * if it was SIGKILLed), so no orphan daemons are left behind.
 */
function watchParent(logger: Logger, stop: () => void): void {
  const parent = Number(process.env.DVS_PARENT_PID);
  if (!Number.isInteger(parent) || parent <= 1) return;
  const timer = setInterval(() => {
    try {
      process.kill(parent, 0);
    } catch {
      clearInterval(timer);
      logger.warn({ parent }, "the launcher is gone; stopping");
      stop();
    }
  }, 1_000);
  timer.unref();
}

function causeOf(error: unknown): string {
  const snap = (error as { cause?: unknown }).cause;
  return snap instanceof Error ? `: ${snap.message}` : "";
}
