// The chaos test's real-network variant: three hosts in network namespaces, a
// nats-server and two dvsd nodes on each, and a partition that is a silent
// blackhole (frames dropped, no reset, no FIN) instead of a proxy closing
// sockets. Needs root and `ip netns`; without them it is skipped, saying why.
import { describe, expect, it } from "vitest";
import { agreeOnView, collectStatus } from "../../actors/clusterStatus.js";
import { DEV_USERS } from "../../actors/credentials.js";
import {
  type Answer,
  agreedCoordinator,
  type Coordinator,
  RegistryClient,
} from "../../actors/registryClient.js";
import { systemClock } from "../../transport/clock.js";
import { connectNats, type NatsTransport } from "../../transport/nats.js";
import { both, EventWatch, named } from "../support/eventWatch.js";
import { requireBuild } from "../support/processes.js";
import { crashLines } from "./history.js";
import { leftovers, netnsAvailable, startNetnsLab } from "./netns.js";

const CLUSTER = "dvs";
const EVERY_NODE = [1, 2, 3, 4, 5, 6];
/** Host 3 runs nodes 3 and 6. */
const CUT_HOST = 3;
const CUT_NODES = [3, 6];
const SURVIVORS = [1, 2, 4, 5];
const FORM_BOUND_MS = 60_000;
/** From the blackhole to the survivors' view without host 3's nodes. */
const DETECT_BOUND_MS = 10_000;
/** From the blackhole to one coordinator among the survivors: the lease and the JetStream re-election, with slack. */
const COORDINATOR_BOUND_MS = 10_000;
/** From the blackhole to DISCONNECT of host 3's nodes: downAfterMs (5 s) after PARTITION, with slack. */
const DISCONNECT_BOUND_MS = 15_000;
const HEAL_BOUND_MS = 30_000;

const available = netnsAvailable();
if (!available.ok) console.warn(`the real-network chaos test is skipped: ${available.reason}`);
const missingInCi =
  !available.ok && available.cause === "no-nats-server" && process.env.CI === "true"
    ? available.reason
    : undefined;

describe.runIf(missingInCi !== undefined)("the real-network chaos test in CI", () => {
  it("has the nats-server binary it needs", () => {
    expect.fail(`${missingInCi}: CI must install it, or the real-network chaos test never runs`);
  });
});

describe.skipIf(!available.ok)("chaos over a real network partition (network namespaces)", () => {
  it("a silently blackholed host drops out of the survivors' view, a coordinator stays among them, and after the heal all six nodes agree again", async () => {
    requireBuild();
    const prefix = `dvs${process.pid}`;
    const lab = await startNetnsLab({ servers: 3, prefix });
    const exits: string[] = [];
    let stopping = false;
    for (const n of lab.nodes) {
      n.child.once("exit", (code, signal) => {
        if (!stopping) exits.push(`node ${n.node} exited on its own (${signal ?? `code ${code}`})`);
      });
    }
    let admin: NatsTransport | undefined;
    let watch: EventWatch | undefined;
    let passed = false;
    try {
      const url = lab.urls[0] as string;
      admin = await connectNats({
        servers: [url],
        name: "netns-chaos",
        ...DEV_USERS.admin,
        reconnectWaitMs: 100,
      });
      watch = await EventWatch.start(url, CLUSTER);

      const formed = await settle(admin, EVERY_NODE, FORM_BOUND_MS);
      expect(formed.coordinator, `the cluster never formed: ${formed.last}`).toBeDefined();
      const before = formed.coordinator as Coordinator;

      const mark = watch.mark();
      const cutAt = performance.now();
      lab.blackhole(CUT_HOST);
      const withoutCut = (e: { view: { members: readonly number[] } }) =>
        !e.view.members.some((m) => CUT_NODES.includes(m));
      const dropped = await watch.fromEach(SURVIVORS, withoutCut, "a view without nodes 3 and 6", {
        from: mark,
        timeoutMs: DETECT_BOUND_MS,
      });
      const detectionMs = Math.max(...[...dropped.values()].map((e) => e.receivedAt)) - cutAt;
      const survivorsView = await pollUntil(async () => {
        const status = await collectStatus(admin as NatsTransport, { cluster: CLUSTER, timeoutMs: 600 });
        return agreeOnView(status.nodes, SURVIVORS) ? status : undefined;
      }, cutAt + DETECT_BOUND_MS);
      expect(survivorsView, "nodes 1, 2, 4 and 5 never answered one view of themselves").toBeDefined();

      const survivorsCoordinator = await pollUntil(async () => {
        const one = agreedCoordinator(await whoAll(admin as NatsTransport, SURVIVORS));
        return one && !CUT_NODES.includes(one.coordinator) ? one : undefined;
      }, cutAt + COORDINATOR_BOUND_MS);
      const coordinatorMs = performance.now() - cutAt;
      expect(
        survivorsCoordinator,
        "the survivors' registries never agreed on a coordinator among them",
      ).toBeDefined();

      // Held past downAfterMs, so the heal is a rejoin after being declared down, not a quick merge.
      const w = watch;
      const disconnectsBy = (survivor: number) =>
        w
          .select(both(named("DISCONNECT"), (e) => e.node === survivor), mark)
          .filter((e) => e.changed.some((m) => CUT_NODES.includes(m.node)));
      const sawEveryCutNodeDown = (survivor: number) =>
        CUT_NODES.every((c) => disconnectsBy(survivor).some((e) => e.changed.some((m) => m.node === c)));
      await watch.until(
        () => SURVIVORS.every(sawEveryCutNodeDown),
        () => `DISCONNECT of nodes 3 and 6 from nodes ${SURVIVORS.filter((s) => !sawEveryCutNodeDown(s)).join(", ")}`,
        { from: mark, timeoutMs: Math.max(0, cutAt + DISCONNECT_BOUND_MS - performance.now()) },
      );
      const disconnectMs = Math.max(...SURVIVORS.flatMap(disconnectsBy).map((e) => e.receivedAt)) - cutAt;
      const duringCut = watch.describe(mark);

      const healMark = watch.mark();
      const healAt = performance.now();
      lab.heal(CUT_HOST);
      const healed = await settle(admin, EVERY_NODE, HEAL_BOUND_MS);
      expect(
        healed.coordinator,
        `no single view and coordinator within ${HEAL_BOUND_MS} ms of the heal: ${healed.last}\n${watch.describe(healMark)}`,
      ).toBeDefined();
      const healMs = performance.now() - healAt;
      const rejoined = watch.select((e) => e.view.members.length === EVERY_NODE.length, healMark);
      const viewMs = (node: number) => {
        const first = rejoined.find((e) => e.node === node);
        return first === undefined ? "—" : `${Math.round(first.receivedAt - healAt)}`;
      };

      console.log(
        [
          `netns chaos: coordinator before the cut ${before.coordinator}@${before.epoch}`,
          `blackhole of host ${CUT_HOST} → survivors' view without nodes 3 and 6: ${Math.round(detectionMs)} ms`,
          `→ one coordinator among the survivors (${survivorsCoordinator?.coordinator}@${survivorsCoordinator?.epoch}): ${Math.round(coordinatorMs)} ms`,
          `→ DISCONNECT of nodes 3 and 6 from every survivor: ${Math.round(disconnectMs)} ms`,
          `heal → one view of all six and one coordinator (${healed.coordinator?.coordinator}@${healed.coordinator?.epoch}): ${Math.round(healMs)} ms`,
          `heal → each node's first view of all six (ms): ${EVERY_NODE.map((n) => `${n}: ${viewMs(n)}`).join(", ")}`,
          `coordinator events (ms since the cut):\n${coordinatorEvents(watch, cutAt)}`,
          `survivors' events during the cut:\n${duringCut}`,
          `events after the heal:\n${watch.describe(healMark)}`,
        ].join("\n"),
      );
      passed = true;
    } finally {
      stopping = true;
      await watch?.close().catch(() => {});
      await admin?.close().catch(() => {});
      await lab.close({ keepDir: !passed || process.env.DVS_NETNS_KEEP === "1" });
      if (!passed || process.env.DVS_NETNS_KEEP === "1") console.warn(`netns chaos: the logs, stores and node state are kept in ${lab.dir}`);
    }
    expect(leftovers(prefix), "namespaces or interfaces left behind").toEqual([]);
    const crashes = lab.nodes.flatMap((n) =>
      crashLines(n.output())
        .slice(0, 5)
        .map((line) => `node ${n.node}: ${line.slice(0, 400)}`),
    );
    expect(crashes).toEqual([]);
    expect(exits).toEqual([]);
  }, 150_000);
});

/** The COORDINATOR events a watch saw, one line each, timed from `since`. */
function coordinatorEvents(watch: EventWatch, since: number): string {
  return watch.coordinator
    .map(
      (e) =>
        `  ${Math.round(e.receivedAt - since)} ms node ${e.node}/${e.incarnation}: ${e.coordinator ?? "none"}@${e.epoch} (${e.cause})`,
    )
    .join("\n");
}

/** Every node's registry, asked through one connection. */
async function whoAll(transport: NatsTransport, nodes: readonly number[]): Promise<(Answer | Error)[]> {
  const registry = new RegistryClient({ cluster: CLUSTER, transport, clock: systemClock, timeoutMs: 600 });
  return Promise.all(
    nodes.map((n) => registry.who(n).catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))))),
  );
}

/** Polls until `nodes` answer one view of exactly themselves and their registries one coordinator. */
async function settle(
  transport: NatsTransport,
  nodes: readonly number[],
  boundMs: number,
): Promise<{ coordinator: Coordinator | undefined; last: string }> {
  let last = "nothing asked yet";
  const coordinator = await pollUntil(async () => {
    const status = await collectStatus(transport, { cluster: CLUSTER, timeoutMs: 600 });
    if (!agreeOnView(status.nodes, nodes)) {
      last = status.nodes.map((s) => `${s.node}[${s.view.members.join(",")}]`).join(" ") || "no answer";
      return undefined;
    }
    const answers = await whoAll(transport, nodes);
    const one = agreedCoordinator(answers);
    if (!one) {
      last = `one view; WHO answers: ${answers
        .map(
          (a, i) =>
            `${nodes[i]}→${a instanceof Error ? a.name : a.type === "OK" ? `${a.coordinator}@${a.epoch}` : a.type}`,
        )
        .join(" ")}`;
    }
    return one;
  }, performance.now() + boundMs);
  return { coordinator, last };
}

/** Calls `probe` every 200 ms until it returns something or the deadline (performance.now()) passes. */
async function pollUntil<T>(probe: () => Promise<T | undefined>, deadline: number): Promise<T | undefined> {
  while (performance.now() < deadline) {
    const got = await probe().catch(() => undefined);
    if (got !== undefined) return got;
    await new Promise((r) => setTimeout(r, 200));
  }
  return undefined;
}
