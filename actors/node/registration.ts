// The node's announcement for discovery (the NATS micro service `dvsd`, see
// actors/discovery.ts) as a subsystem: made at start, made again for each new
// incarnation (its metadata names the incarnation), withdrawn at stop.
import type { Transport } from "../../transport/transport.js";
import type { NodeIdentity, Registration } from "../discovery.js";
import type { Endpoints } from "../endpoints.js";
import type { Logger } from "../logger.js";
import type { Subsystem } from "../subsystem.js";

export interface ServiceRegistrationOptions<T extends Transport> {
  readonly transport: T;
  readonly identity: NodeIdentity;
  readonly logger: Logger;
  /** The public subjects the node serves: the announcement lists them, with their counters. */
  readonly endpoints: Endpoints;
  /** Announces the node (NodeComponents.register); nothing is announced when absent. */
  readonly register?: (transport: T, identity: NodeIdentity, endpoints: Endpoints) => Promise<Registration>;
}

export class ServiceRegistration<T extends Transport = Transport> implements Subsystem {
  readonly name = "registration";
  readonly #o: ServiceRegistrationOptions<T>;
  #registration: Registration | undefined;

  constructor(options: ServiceRegistrationOptions<T>) {
    this.#o = options;
  }

  async start(): Promise<void> {
    const { register, transport, identity, endpoints } = this.#o;
    if (register) this.#registration = await register(transport, identity, endpoints);
  }

  /** The node came back as a new incarnation: the announcement says so (a failure leaves it unannounced). */
  async renew(identity: NodeIdentity): Promise<void> {
    const { register, transport, logger, endpoints } = this.#o;
    if (!register || !this.#registration) return;
    await this.#registration.stop().catch(() => {});
    this.#registration = await register(transport, identity, endpoints).catch((error: unknown) => {
      logger.warn({ err: error }, "could not re-register the service");
      return undefined;
    });
  }

  async stop(): Promise<void> {
    await this.#registration?.stop().catch((error: unknown) => {
      this.#o.logger.warn({ err: error }, "could not deregister the service");
    });
  }
}
