// The node runtime: runs the node lifecycle machine as an actor and gives it
// its effects — connect the transport, register for discovery, serve requests,
// drain on stop. The same runtime runs over NATS (`dvsd run`) and over the
// simulated network (tests), since everything it touches is injected.
import { createActor, fromPromise, type SnapshotFrom, waitFor } from "xstate";
import { type NodeMachineInput, nodeMachine } from "../machines/node.js";
import type { Clock } from "../transport/clock.js";
import type { NodeId } from "../transport/protocol.js";
import { subjects } from "../transport/subjects.js";
import type { Transport } from "../transport/transport.js";
import type { NodeIdentity, Registration } from "./discovery.js";
import type { Logger } from "./logger.js";
import { type RequestHandlers, RequestServer } from "./requestServer.js";

export interface NodeComponents<T extends Transport = Transport> {
  readonly clock: Clock;
  readonly logger: Logger;
  /** Opens this node's connection. */
  readonly connect: (identity: NodeIdentity) => Promise<T>;
  /** Announces the node for discovery (NATS micro service); optional. */
  readonly register?: (transport: T, identity: NodeIdentity) => Promise<Registration>;
}

export interface NodeOptions {
  readonly node: NodeId;
  readonly cluster: string;
  readonly incarnation: number;
  readonly handlers?: RequestHandlers;
}

export type NodeSnapshot = SnapshotFrom<typeof nodeMachine>;

export class NodeRuntime<T extends Transport = Transport> {
  readonly actor;
  readonly identity: NodeIdentity;
  #transport: T | undefined;
  #requestServer: RequestServer | undefined;
  #registration: Registration | undefined;
  #stopStatus: (() => void) | undefined;
  #startError: unknown;

  constructor(
    options: NodeOptions,
    readonly components: NodeComponents<T>,
  ) {
    const { logger, clock } = components;
    this.identity = { node: options.node, cluster: options.cluster, incarnation: options.incarnation };
    const machine = nodeMachine.provide({
      actors: {
        connect: fromPromise(async () => {
          try {
            await this.#connect(options.handlers ?? {});
          } catch (error) {
            this.#startError = error;
            throw error;
          }
        }),
        drain: fromPromise(async () => this.#drain()),
      },
      actions: {
        reportRunning: () => logger.info({ incarnation: options.incarnation }, "node running"),
        reportIsolated: () => logger.warn("lost the NATS link; isolated until it comes back"),
        reportReconnected: () => logger.info("NATS link restored"),
        reportLeaving: ({ context }) => logger.info({ reason: context.reason }, "node leaving"),
        reportFailed: (_, params) => logger.error({ err: params.error }, "node failed"),
        reportEnded: ({ context }) => logger.info({ reason: context.reason }, "node ended"),
      },
    });
    const input: NodeMachineInput = this.identity;
    this.actor = createActor(machine, { input, clock });
  }

  get transport(): T | undefined {
    return this.#transport;
  }

  start(): this {
    this.actor.start();
    return this;
  }

  /** Resolves once the node serves requests; rejects with the start error if it ended first. */
  async running(timeoutMs = 30_000): Promise<void> {
    const snap = await waitFor(this.actor, (s) => s.matches("running") || s.status === "done", {
      timeout: timeoutMs,
    });
    if (snap.status !== "done") return;
    if (this.#startError instanceof Error) throw this.#startError;
    throw new Error(`node ${this.identity.node} ended before it ran: ${snap.context.reason}`);
  }

  /** Graceful stop: drains and closes; resolves when the node has ended. */
  async stop(reason = "stop", timeoutMs = 10_000): Promise<void> {
    this.actor.send({ type: "node.stop", reason });
    await this.ended(timeoutMs);
  }

  /** Resolves with the reason once the node has ended. */
  async ended(timeoutMs = Number.POSITIVE_INFINITY): Promise<string> {
    const snap = await waitFor(this.actor, (s) => s.status === "done", { timeout: timeoutMs });
    return snap.context.reason ?? "ended";
  }

  async #connect(handlers: RequestHandlers): Promise<void> {
    const { logger, clock } = this.components;
    const transport = await this.components.connect(this.identity);
    this.#transport = transport;
    this.#stopStatus = transport.onStatus((status) => {
      if (status.type === "disconnected") this.actor.send({ type: "link.down" });
      else if (status.type === "connected") this.actor.send({ type: "link.up" });
      else if (status.type === "closed")
        this.actor.send({
          type: "link.closed",
          reason: status.error ? `connection closed: ${status.error.message}` : "connection closed",
        });
    });
    this.#requestServer = new RequestServer({
      node: this.identity.node,
      subjects: subjects(this.identity.cluster),
      transport,
      clock,
      logger,
      handlers,
    });
    this.#requestServer.start();
    if (this.components.register)
      this.#registration = await this.components.register(transport, this.identity);
    await transport.flush();
  }

  async #drain(): Promise<void> {
    this.#requestServer?.stop();
    await this.#registration?.stop().catch((error: unknown) => {
      this.components.logger.warn({ err: error }, "could not deregister the service");
    });
    this.#stopStatus?.();
    await this.#transport?.close();
  }
}
