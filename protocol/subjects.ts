// Subject names of SPEC 3.3. Public subjects are documented in docs/protocol.md
// and stable; internal ones (prefixed `dvs.<c>._`) may change between versions.
import type { NodeId } from "./messages.js";

const CLUSTER_NAME = /^[A-Za-z0-9_-]{1,32}$/;

export function isClusterName(name: string): boolean {
  return CLUSTER_NAME.test(name);
}

/** All subjects of one cluster. */
export function subjects(cluster: string) {
  if (!isClusterName(cluster)) throw new RangeError(`invalid cluster name ${JSON.stringify(cluster)}`);
  const base = `dvs.${cluster}`;
  return {
    /** The request server of one node. */
    nodeRqst: (node: NodeId) => `${base}.node.${node}.rqst`,
    /** Any node answers (queue group `QUEUE_GROUP`). */
    anyRqst: `${base}.rqst`,
    /**
     * The read-only request subjects, for the `viewer` user: the same request
     * servers, but a mutating request type arriving here is EPERM.
     */
    roNodeRqst: (node: NodeId) => `${base}.ro.node.${node}.rqst`,
    roAnyRqst: `${base}.ro.rqst`,
    /**
     * Membership and lifecycle events of every node (subscribe here). Each node
     * publishes its own on `nodeEvents(node)`, a subject only it may publish to,
     * so the subject, not the body, says who saw the event.
     */
    events: `${base}.events.*`,
    /** The events node `node` observed. */
    nodeEvents: (node: NodeId) => `${base}.events.${node}`,
    /**
     * The same events as JSON (Content-Type application/json), for clients
     * without CBOR. One token longer, so `events` does not match the twins.
     */
    eventsJson: `${base}.events.json.*`,
    /** The JSON twin of `nodeEvents(node)`: the same events, published by node `node` only. */
    nodeEventsJson: (node: NodeId) => `${base}.events.json.${node}`,
    /** Registry: who is the coordinator (any node's registry answers, queue group `QUEUE_GROUP`). */
    dnsWho: `${base}.dns.who`,
    /** Registry: who node `node` takes for the coordinator. */
    nodeDnsWho: (node: NodeId) => `${base}.dns.node.${node}.who`,
    /** Registry: a client reports that the coordinator of an epoch does not answer. */
    dnsFailed: `${base}.dns.failed`,
    /** File store (SPEC 8): COMMIT, UPDATE and LS go to the coordinator (queue group `QUEUE_GROUP`). */
    fileCommit: `${base}.file.commit`,
    fileUpdate: `${base}.file.update`,
    fileLs: `${base}.file.ls`,
    /** File store: READ the bytes of a version node `node` holds. */
    fileRead: (node: NodeId) => `${base}.file.read.${node}`,
    /** File store: a committing client serves its bytes here (READ) until it has the answer. */
    fileSource: (commit: string) => `${base}.file.src.${commit}`,
    /** Internal: node `node`'s heartbeats, heard by its observers (each subscribes to the nodes it watches). */
    heartbeat: (node: NodeId) => `${base}._hb.${node}`,
    /**
     * Internal: membership broadcasts of node `node` — hello when it starts,
     * leave, its observers' alerts, and its component leader's beacon. Every
     * node hears every node's; heartbeats (`heartbeat`) reach only the
     * node's observers.
     */
    membership: (node: NodeId) => `${base}._ms.${node}`,
    memberships: `${base}._ms.*`,
    /** Internal: a late peer is probed here; "no responders" means it is gone. */
    probe: (node: NodeId) => `${base}._probe.${node}`,
    /** Internal: every node answers with its status (dvsctl members). */
    status: `${base}._status`,
    /** Internal: `dst: ALL` requests, multicast by a replication server to every node. */
    multicast: `${base}._mcast`,
    /** Internal: a request another node passes on to node `node` (its requester's role travels in the RQST). */
    forward: (node: NodeId) => `${base}._fwd.${node}`,
    /** Internal: where the members' answers to one node's multicasts come back. */
    gather: (node: NodeId) => `${base}._gather.${node}`,
    /** Internal: DC tables offered to a node that joined the view. */
    dcSync: (node: NodeId) => `${base}._dcsync.${node}`,
    /** Internal: the proxy receiver of node `to` (process traffic between nodes). */
    proxy: (to: NodeId) => `${base}._px.${to}`,
    /** Internal: process locations announced on spawn, migration and end. */
    procLocation: `${base}._loc`,
    /** Internal: the servers' SERVER, ALIVE, STATUS, ELECTION and ELECTED broadcasts. */
    servers: `${base}._srv.all`,
    /** Internal: PING to one server (answered with ALIVE). */
    serverPing: (node: NodeId) => `${base}._srv.ping.${node}`,
    /** Internal: the file store's COMMIT, REPLICA, UPDATE and REPAIR to one server. */
    filePeer: (node: NodeId) => `${base}._file.${node}`,
    /** Internal: COMMITTED, from the coordinator to every server. */
    fileCommitted: `${base}._file.all`,
    /** Internal: a migrating process's snapshot, sent to its new node. */
    migrate: (to: NodeId) => `${base}._migr.${to}`,
  } as const;
}

export type Subjects = ReturnType<typeof subjects>;

/** Queue group of the `dvs.<c>.rqst` subject. */
export const QUEUE_GROUP = "dvsd";

/** NATS micro service name every node registers (`nats micro ls`, `$SRV.PING.dvsd`). */
export const SERVICE_NAME = "dvsd";
