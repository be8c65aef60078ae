// The NATS micro-service manager (`$SRV`) over one of our connections, for
// registering a node (actors/discovery.ts) and pinging every node (client/discovery.ts).
import { Svcm } from "@nats-io/services";
import type { NatsConnection } from "@nats-io/transport-node";

// @nats-io/services pins its own prerelease of nats-core; the connection is the
// same object at run time, only the declared types differ.
type ServiceConnection = ConstructorParameters<typeof Svcm>[0];

export const serviceManager = (nc: NatsConnection): Svcm => new Svcm(nc as unknown as ServiceConnection);
