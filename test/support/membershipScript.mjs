// A membership event script for the e2e tests: appends one JSON line per run
// to the file named by its first argument, holding the DVS_* environment and
// the event read from stdin, so the test can check both against the bus.
import { appendFileSync } from "node:fs";

const [, , out] = process.argv;
if (!out) {
  process.stderr.write("usage: membershipScript.mjs <output file>\n");
  process.exit(2);
}
let stdin = "";
process.stdin.setEncoding("utf8");
for await (const chunk of process.stdin) stdin += chunk;
const env = {};
for (const name of [
  "DVS_EVENT",
  "DVS_NODE",
  "DVS_INCARNATION",
  "DVS_VIEW_ID",
  "DVS_MEMBERS",
  "DVS_CHANGED",
]) {
  env[name] = process.env[name];
}
appendFileSync(out, `${JSON.stringify({ env, stdin: JSON.parse(stdin) })}\n`);
