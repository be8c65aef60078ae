// The process requests a node answers: SPAWN, SEND, GETPROCINFO, GETPRIV,
// SETPRIV, MIGRATE, PROCEND, GETPROXYINFO and GETPROXYSTS. A request about a
// process hosted elsewhere is relayed to its host.
import type { NodeId, RequestType, Rqst } from "../../protocol/messages.js";
import type { Privileges } from "../../protocol/processes.js";
import { ANY_ENDPOINT, UNRESTRICTED } from "../../protocol/processes.js";
import type { Clock } from "../../transport/clock.js";
import type { MachineRegistry } from "../machineRegistry.js";
import type { Outcome, RequestHandlers } from "../requestServer.js";
import type { Announcements } from "./announcements.js";
import type { ClientSenders } from "./clientSenders.js";
import { checkPlacement, checkRoom, type DcDirectory } from "./dcDirectory.js";
import { describe, fail } from "./failures.js";
import type { Forwarding } from "./forwarding.js";
import { entryOf, type Hosted, type HostedTable } from "./hosted.js";
import type { Hosting } from "./hosting.js";
import { procKey } from "./locations.js";
import type { Migrations } from "./migration.js";
import type { Persistence } from "./persistence.js";
import { normalizePrivileges } from "./privileges.js";
import { procUsrOf } from "./procInfo.js";
import type { Proxies, ProxyInfo, ProxyStats } from "./proxy.js";
import type { Router } from "./routing.js";

export interface ProcessRequestsOptions {
  readonly self: NodeId;
  readonly table: HostedTable;
  readonly clock: Clock;
  readonly registry: MachineRegistry;
  readonly dcs: DcDirectory;
  readonly hosting: Hosting;
  readonly router: Router;
  readonly migrations: Migrations;
  readonly announcements: Announcements;
  readonly persistence: Persistence;
  readonly forwarding: Forwarding;
  readonly clientSenders: ClientSenders;
  readonly proxies: Proxies;
  /** Whether `node` is this node or a member of its view. */
  readonly inView: (node: NodeId) => boolean;
  /** Whether the runtime runs (requests are refused with EAGAIN otherwise). */
  readonly running: () => boolean;
}

export class ProcessRequests {
  readonly #o: ProcessRequestsOptions;

  constructor(options: ProcessRequestsOptions) {
    this.#o = options;
  }

  handlers(): RequestHandlers {
    const guard =
      <T extends RequestType>(handler: (rqst: Rqst<T>) => Outcome | Promise<Outcome>) =>
      (rqst: Rqst): Outcome | Promise<Outcome> =>
        this.#o.running() ? handler(rqst as Rqst<T>) : fail("EAGAIN", "the process runtime is not running");
    const { self, migrations } = this.#o;
    return {
      SPAWN: guard<"SPAWN">((r) => this.#spawn(r)),
      SEND: guard<"SEND">((r) => this.#send(r)),
      GETPROCINFO: guard<"GETPROCINFO">((r) =>
        this.#atHost(r, (h) => ({ rcode: 0, data: procUsrOf(h, self) })),
      ),
      GETPRIV: guard<"GETPRIV">((r) => this.#atHost(r, (h) => ({ rcode: 0, data: h.priv }))),
      SETPRIV: guard<"SETPRIV">((r) => this.#atHost(r, (h) => this.#setPriv(h, r.params.priv))),
      MIGRATE: guard<"MIGRATE">((r) => this.#atHost(r, (h) => migrations.migrate(h, r.params.to))),
      PROCEND: guard<"PROCEND">((r) => this.#atHost(r, (h) => this.#procEnd(h))),
      GETPROXYINFO: guard<"GETPROXYINFO">((r) => this.#proxyInfo(r.params.nodeid)),
      GETPROXYSTS: guard<"GETPROXYSTS">((r) => this.#proxyStats(r.params.nodeid)),
    };
  }

  #spawn(rqst: Rqst<"SPAWN">): Outcome {
    const { self, table, registry, hosting } = this.#o;
    const { dcid, machine, name, input } = rqst.params;
    const dc = checkPlacement(this.#o.dcs, self, dcid, self);
    if (dc) return dc;
    const logic = registry.get(machine);
    if (logic === undefined) {
      return fail("EINVAL", `no machine named ${machine} (known: ${registry.list().join(", ")})`);
    }
    const endpoint = rqst.params.endpoint ?? table.freeEndpoint(dcid);
    if (endpoint === ANY_ENDPOINT) return fail("EINVAL", `endpoint ${ANY_ENDPOINT} is reserved (ANY)`);
    const key = procKey(dcid, endpoint);
    if (table.hosted.has(key) || table.locations.taken(dcid, endpoint)) {
      return fail("EEXIST", `endpoint ${endpoint} of DC ${dcid} is taken`);
    }
    const full = checkRoom(this.#o.dcs, dcid, endpoint, table.locations.liveIn(dcid));
    if (full) return full;
    const epoch = (table.locations.get(dcid, endpoint)?.epoch ?? 0) + 1;
    const h = hosting.create({
      dcid,
      endpoint,
      name: name ?? `${machine}-${endpoint}`,
      machine,
      logic,
      epoch,
      gen: 0,
      priv: UNRESTRICTED,
      restored: false,
      cameFrom: undefined,
      spawnedAt: this.#o.clock.now(),
    });
    table.hosted.set(key, h);
    table.moved.delete(key);
    try {
      hosting.startActor(h, { input });
    } catch (error) {
      table.hosted.delete(key);
      h.lifecycle.stop();
      return fail("EINVAL", `machine ${machine} did not start: ${describe(error)}`);
    }
    // A machine that is final at once has ended already: no location to announce.
    if (!table.hosted.has(key)) return { rcode: Math.max(endpoint, 0), data: procUsrOf(h, self) };
    const entry = entryOf(h, self, false);
    table.locations.set(entry);
    this.#o.announcements.publish([entry]);
    this.#o.persistence.markDirty(h);
    return { rcode: Math.max(endpoint, 0), data: procUsrOf(h, self) };
  }

  /**
   * SEND from a requester: numbered per (this node's run, requester,
   * destination), answered once the message is durably in its process's
   * mailbox (or refused for good, ETIMEDOUT when the proxies gave up).
   */
  async #send(rqst: Rqst<"SEND">): Promise<Outcome> {
    const { dcid, endpoint, body } = rqst.params;
    const { sender, seqs } = this.#o.clientSenders.of(rqst.src);
    const sent = this.#o.router.sendFrom(sender, seqs, dcid, endpoint, body);
    if ("error" in sent) return sent;
    const error = await sent.settled;
    if (error !== undefined) {
      return fail(error, `message ${sent.seq} to ${dcid}:${endpoint} on node ${sent.node} was not delivered`);
    }
    return { rcode: 0, data: { seq: sent.seq, nodeid: sent.node } };
  }

  #setPriv(h: Hosted, priv: Privileges): Outcome {
    const normalized = normalizePrivileges(priv);
    if ("error" in normalized) return normalized;
    h.priv = normalized;
    this.#o.persistence.markDirty(h);
    return { rcode: 0, data: h.priv };
  }

  #procEnd(h: Hosted): Outcome {
    if (h.lifecycle.getSnapshot().matches("migrating") || h.provisional !== undefined) {
      return fail("EBUSY", `process ${h.key} is migrating`);
    }
    const info = procUsrOf(h, this.#o.self);
    this.#o.hosting.end(h, "PROCEND");
    return { rcode: 0, data: info };
  }

  #proxyInfo(peer: NodeId): Outcome {
    if (peer === this.#o.self)
      return fail("EINVAL", `node ${peer} is this node: a node has no proxy to itself`);
    const info: [ProxyInfo, ProxyInfo] | undefined = this.#o.proxies.info(peer);
    if (info === undefined) return fail("ENOENT", `no proxy pair toward node ${peer}`);
    return { rcode: 0, data: info };
  }

  #proxyStats(peer: NodeId | undefined): Outcome {
    const { proxies } = this.#o;
    if (peer === undefined) return { rcode: 0, data: proxies.allStats() };
    const stats: ProxyStats | undefined = proxies.stats(peer);
    if (stats === undefined) return fail("ENOENT", `no proxy pair toward node ${peer}`);
    return { rcode: 0, data: [stats] };
  }

  /**
   * Runs `local` on the host of the process the request names, or forwards the
   * request there. A request that was already forwarded follows forwarding
   * pointers only, so stale location tables cannot bounce it around.
   */
  #atHost(
    rqst: Rqst<"GETPROCINFO" | "GETPRIV" | "SETPRIV" | "MIGRATE" | "PROCEND">,
    local: (h: Hosted) => Outcome | Promise<Outcome>,
  ): Outcome | Promise<Outcome> {
    const { self, table, forwarding } = this.#o;
    const { dcid, endpoint } = rqst.params;
    const key = procKey(dcid, endpoint);
    const h = table.hosted.get(key);
    if (h !== undefined) return local(h);
    const target = forwarding.isRelayed(rqst) ? table.moved.get(key)?.to : table.nextHop(key);
    if (target === undefined || target === self) {
      return fail("ENOENT", `no process at endpoint ${endpoint} of DC ${dcid}`);
    }
    if (!this.#o.inView(target))
      return fail("EHOSTDOWN", `node ${target}, host of ${key}, is not in the view`);
    return forwarding.relay(rqst, target);
  }
}
