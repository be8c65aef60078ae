// `npm run chaos:stop -- --minutes M --seed S`: SIGSTOP/SIGCONT, and nothing
// else, on real `dvsd run` processes, over and over, to reproduce a daemon
// that dies by itself after being stopped (issue: "no silent death"). Three
// nodes on one nats-server; each round stops one node (seeded) for 1–6 s,
// resumes it and waits 0.5–2 s. Any exit is reported at once with its code or
// signal and the last lines of that node's log (kept in the run directory).
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleepMs } from "node:timers/promises";
import { parseArgs } from "node:util";
import { randomInt, seededRandom } from "../../transport/clock.js";
import { requireBuild } from "../support/cli.js";
import { DvsdNode } from "../support/dvsdProcess.js";
import { startTestNatsServer } from "../support/natsServer.js";

const usage = `usage: npm run chaos:stop -- [--minutes M] [--seed S] [--nodes N] [--keep]
  --minutes M  how long to keep stopping nodes (default 10)
  --seed S     the schedule's seed (default 2)
  --nodes N    how many nodes (default 3)
  --keep       keep the run directory (node logs) even when nobody died`;

interface Death {
  readonly node: number;
  readonly round: number;
  readonly how: string;
  readonly log: string;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      minutes: { type: "string", default: "10" },
      seed: { type: "string", default: "2" },
      nodes: { type: "string", default: "3" },
      keep: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  const minutes = Number(values.minutes);
  const seed = Number(values.seed);
  const count = Number(values.nodes);
  if (!(minutes > 0 && minutes <= 1_440) || !Number.isInteger(seed) || !(count >= 2 && count <= 16)) {
    process.stderr.write(`bad options\n${usage}\n`);
    return 2;
  }
  requireBuild();
  const dir = mkdtempSync(join(tmpdir(), "dvs-stoploop-"));
  process.stdout.write(`run directory ${dir}\n`);
  const server = await startTestNatsServer();
  const deaths: Death[] = [];
  const nodes: DvsdNode[] = [];
  let round = 0;
  let expected = false;
  for (let id = 1; id <= count; id++) {
    const logFile = join(dir, `node-${id}.log`);
    const n = new DvsdNode({
      node: id,
      dir,
      natsUrl: server.url,
      logFile,
      config: { log: { level: "info" } },
    });
    nodes.push(n);
    n.start().child.once("exit", (code, signal) => {
      if (expected) return;
      const how = signal ?? `code ${code}`;
      const log = readFileSync(logFile, "utf8").split("\n").slice(-30).join("\n");
      deaths.push({ node: id, round, how, log });
      process.stdout.write(`node ${id} exited on its own (${how}) in round ${round}\n${log}\n`);
    });
  }
  const random = seededRandom(seed);
  const ends = performance.now() + minutes * 60_000;
  await sleepMs(3_000);
  try {
    while (performance.now() < ends && deaths.length === 0) {
      round++;
      const victim = nodes[randomInt(random, count)] as DvsdNode;
      const holdMs = 1_000 + randomInt(random, 5_001);
      victim.signal("SIGSTOP");
      await sleepMs(holdMs);
      victim.signal("SIGCONT");
      appendFileSync(join(dir, "rounds.log"), `${round} node ${victim.node} stopped ${holdMs} ms\n`);
      await sleepMs(500 + randomInt(random, 1_501));
    }
    // A death may come a moment after the last SIGCONT.
    await sleepMs(5_000);
  } finally {
    expected = true;
    for (const n of nodes) if (n.running) n.signal("SIGCONT");
    await Promise.all(nodes.map((n) => n.kill()));
    await server.stop();
  }
  process.stdout.write(
    `${round} rounds of SIGSTOP/SIGCONT over ${count} nodes (seed ${seed}): ${deaths.length} node(s) died on their own\n`,
  );
  if (deaths.length === 0 && !values.keep) rmSync(dir, { recursive: true, force: true });
  else process.stdout.write(`logs kept in ${dir}\n`);
  return deaths.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`chaos:stop: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
