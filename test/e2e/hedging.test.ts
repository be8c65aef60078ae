// A frozen member never swallows a request (SPEC 3.1): with one of three real
// `dvsd` processes SIGSTOPped (its NATS connection stays open, so NATS still
// hands it its share of the queue subject), 30 `dvsctl rqst GETDVSINFO --node
// all` in a row each answer within the request timeout + 1 s, each with an
// entry for the frozen node. dvsctl hedges: unacknowledged after the accept
// deadline, the request goes to a node that answers the $SRV ping.
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEV_USERS } from "../../client/credentials.js";
import { discoverNodes } from "../../client/discovery.js";
import { type Rply, rcode, rplySchema } from "../../protocol/messages.js";
import { dvsctlBin, isAlive, type Spawned, spawnNode, startLocalCluster } from "../support/cli.js";

const FROZEN = 3;
const TIMEOUT_MS = 3_000;
const REQUESTS = 30;

describe("requests to any node with a frozen member", () => {
  let up: Spawned;
  let url: string;
  let nc: NatsConnection;
  let frozenPid: number | undefined;

  beforeAll(async () => {
    const cluster = await startLocalCluster(3);
    up = cluster.up;
    url = cluster.url;
    nc = await connect({ servers: url, name: "e2e-hedging", ...DEV_USERS.admin });
    frozenPid = (await discoverNodes(nc, "dvs", 500)).find((n) => n.node === FROZEN)?.pid;
  }, 40_000);

  afterAll(async () => {
    if (frozenPid !== undefined && isAlive(frozenPid)) process.kill(frozenPid, "SIGCONT");
    await nc?.close();
    if (up && up.child.exitCode === null) {
      up.child.kill("SIGINT");
      await up.exited(20_000).catch(() => up.child.kill("SIGKILL"));
    }
  });

  it(`answers ${REQUESTS} dvsctl requests to all in a row, each within the timeout + 1 s and naming the frozen node`, async () => {
    expect(frozenPid).toBeGreaterThan(0);
    process.kill(frozenPid as number, "SIGSTOP");
    const slowest: number[] = [];
    try {
      for (let i = 0; i < REQUESTS; i++) {
        const started = performance.now();
        const p = spawnNode([
          dvsctlBin,
          "--nats",
          url,
          "--json",
          "--timeout",
          String(TIMEOUT_MS),
          "rqst",
          "GETDVSINFO",
          "--node",
          "all",
        ]);
        const code = await p.exited(TIMEOUT_MS + 10_000);
        const ms = performance.now() - started;
        slowest.push(ms);
        const line = p
          .output()
          .split("\n")
          .find((l) => l.startsWith("{"));
        expect(line, `request ${i + 1}: exit ${code}, output:\n${p.output()}`).toBeDefined();
        const rply = rplySchema.parse(JSON.parse(line as string));
        const entries = rply.data as Rply[];
        expect(entries.map((e) => e.src)).toEqual([1, 2, 3]);
        expect([rcode("ETIMEDOUT"), rcode("EHOSTDOWN")]).toContain(entries[2]?.rcode);
        // Exit 1: a node answered an error (the frozen one's entry); never 3 (nobody answered).
        expect(code).toBe(1);
        // The process's whole life (start, connect, hedge, answer) within the timeout + 1 s.
        expect(ms).toBeLessThan(TIMEOUT_MS + 1_000);
      }
    } finally {
      process.kill(frozenPid as number, "SIGCONT");
    }
    process.stderr.write(
      `hedging.test.ts: ${REQUESTS} dvsctl requests with node ${FROZEN} frozen, slowest ${Math.round(Math.max(...slowest))} ms\n`,
    );
  }, 240_000);
});
