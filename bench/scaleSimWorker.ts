// One size of the simulated half of `npm run scale`, in a process of its own
// (forked by bench/scale.ts), so that its heap is its alone and running out of
// memory fails that size, not the run. Options arrive as JSON in argv[2];
// progress lines and the result go back over IPC.
import { runSimScale, type SimScaleResult } from "./scaleSim.js";

export interface SimWorkerOptions {
  readonly nodes: number;
  readonly simSeconds: number;
  readonly seed: number;
  readonly budgetMs: number;
}

export type SimWorkerMessage =
  | { readonly type: "progress"; readonly message: string }
  | { readonly type: "result"; readonly result: SimScaleResult }
  | { readonly type: "error"; readonly name: string; readonly message: string };

const send = (message: SimWorkerMessage) =>
  new Promise<void>((resolve) => (process.send ? process.send(message, () => resolve()) : resolve()));

const options = JSON.parse(process.argv[2] ?? "{}") as SimWorkerOptions;
const controller = new AbortController();
// The parent went away (interrupted, or killed): stop at the next timer.
process.on("disconnect", () => controller.abort(new Error("the scale run went away")));
try {
  const result = await runSimScale({
    ...options,
    signal: controller.signal,
    progress: (message) => void send({ type: "progress", message }),
  });
  await send({ type: "result", result });
} catch (error) {
  const e = error instanceof Error ? error : new Error(String(error));
  await send({ type: "error", name: e.name, message: e.message });
  process.exitCode = 1;
} finally {
  process.disconnect?.();
}
