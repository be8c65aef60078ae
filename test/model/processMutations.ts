// Planted bugs for the process message model: each must make it fail. A
// sender that never resends (what a lossy link loses stays lost, and SENDs
// time out), and a receiver that does not drop duplicates (neither its proxy,
// which hands every copy of a frame on, nor the process's mailbox).
import { enqueueActions } from "xstate";
import { Mailbox } from "../../actors/processes/mailbox.js";
import { proxyMachine, proxyStep, resendDue } from "../../machines/proxy.js";
import type { Envelope } from "../../protocol/processes.js";
import type { ProcessMutation } from "./processMessages.js";

/** Gives up on time but never publishes a frame twice. */
const noResend = proxyMachine.provide({
  actions: {
    step: enqueueActions(({ context, event, enqueue }) => {
      const step =
        event.type === "resend.tick"
          ? (() => {
              const s = resendDue(context, event.at);
              return { ...s, emitted: s.emitted.filter((e) => e.type !== "proxy.publish") };
            })()
          : proxyStep(context, event);
      if (step === undefined) return;
      enqueue.assign(step.context);
      for (const e of step.emitted) enqueue.emit(e);
    }),
  },
});

/** Hands every frame on, a resend as much as the first copy. */
const handsOnDuplicates = proxyMachine.provide({
  actions: {
    step: enqueueActions(({ context, event, enqueue }) => {
      const step = proxyStep(context, event);
      if (step === undefined) return;
      enqueue.assign(step.context);
      for (const e of step.emitted) enqueue.emit(e);
      const delivered = step.emitted.some((e) => e.type === "proxy.deliver");
      if (event.type === "frame.arrived" && !delivered) {
        enqueue.emit({ type: "proxy.deliver", epoch: event.epoch, pseq: event.pseq, msg: event.msg });
      }
    }),
  },
});

/** Delivers a message it already delivered once more. */
class DuplicatingMailbox extends Mailbox {
  override accept(msg: Envelope, now: number) {
    const accepted = super.accept(msg, now);
    if (accepted.duplicate && msg.seq <= this.deliveredFrom(msg.sender.key)) {
      return { ready: [msg], duplicate: false };
    }
    return accepted;
  }
}

export const processMutations: ReadonlyMap<string, ProcessMutation> = new Map<string, ProcessMutation>([
  ["no-resend", { proxyMachine: noResend }],
  [
    "duplicate-delivery",
    {
      proxyMachine: handsOnDuplicates,
      mailboxes: (state, now) => new DuplicatingMailbox(state, now),
    },
  ],
]);
