// Interest by subject, as nats-server's sublist: which subscriptions a published
// subject reaches. Literal subjects sit in a map, wildcard ones in a token trie,
// and each subject's answer is cached until a subscription that could match it
// comes or goes, so a fleet's heartbeats cost one map look-up per publish. An
// answer drawn from one set of subscriptions (everyone's `dvs.<c>._ms.*`) is one
// list shared by every subject it answers, so a fleet's broadcasts cost no
// memory per subject.
import type { SimSub } from "./transport.js";

/** The subscriptions a subject reaches, in subscription order. Shared: callers must not change it. */
export interface Interest {
  readonly subs: readonly SimSub[];
  /** Whether one of them belongs to a queue group (the server then picks one member per group). */
  readonly queued: boolean;
}

class WildNode {
  readonly children = new Map<string, WildNode>();
  /** Subscriptions ending exactly here. */
  readonly subs = new Set<SimSub>();
  /** Subscriptions ending in `>` here. */
  readonly tails = new Set<SimSub>();

  get empty(): boolean {
    return this.children.size === 0 && this.subs.size === 0 && this.tails.size === 0;
  }
}

const nobody: Interest = { subs: [], queued: false };

/** An answer merged from several sets is cached only up to this size; a larger one costs less to redo than its deliveries. */
const largestMerged = 256;

function interest(subs: SimSub[]): Interest {
  return { subs, queued: subs.some((sub) => sub.queue !== undefined) };
}

export class InterestIndex {
  readonly #literal = new Map<string, Set<SimSub>>();
  readonly #root = new WildNode();
  readonly #cache = new Map<string, Interest>();
  /** The answer of each set of subscriptions that alone answers some subject (in sid order, as added). */
  readonly #bySet = new Map<Set<SimSub>, Interest>();
  #size = 0;

  add(sub: SimSub): void {
    this.#size++;
    if (!isWildcard(sub.subject)) {
      let set = this.#literal.get(sub.subject);
      if (set === undefined) {
        set = new Set();
        this.#literal.set(sub.subject, set);
      }
      set.add(sub);
      // A literal subscription changes the answer for its own subject only.
      this.#bySet.delete(set);
      this.#cache.delete(sub.subject);
      return;
    }
    this.#forgetAll();
    let node = this.#root;
    for (const token of sub.subject.split(".")) {
      if (token === ">") {
        node.tails.add(sub);
        return;
      }
      let child = node.children.get(token);
      if (child === undefined) {
        child = new WildNode();
        node.children.set(token, child);
      }
      node = child;
    }
    node.subs.add(sub);
  }

  remove(sub: SimSub): void {
    if (!isWildcard(sub.subject)) {
      const set = this.#literal.get(sub.subject);
      if (!set?.delete(sub)) return;
      this.#size--;
      if (set.size === 0) this.#literal.delete(sub.subject);
      this.#bySet.delete(set);
      this.#cache.delete(sub.subject);
      return;
    }
    const tokens = sub.subject.split(".");
    const path: WildNode[] = [this.#root];
    let node = this.#root;
    let removed = false;
    for (const token of tokens) {
      if (token === ">") {
        removed = node.tails.delete(sub);
        break;
      }
      const child = node.children.get(token);
      if (child === undefined) return;
      node = child;
      path.push(node);
    }
    if (!removed) removed = node.subs.delete(sub);
    if (!removed) return;
    this.#size--;
    this.#forgetAll();
    // Prune so that churn (restarts, per-request patterns) does not grow the trie forever.
    for (let i = path.length - 1; i > 0; i--) {
      if (!path[i]!.empty) break;
      path[i - 1]!.children.delete(tokens[i - 1]!);
    }
  }

  /** Who `subject` reaches; cached until interest that could match it changes. */
  match(subject: string): Interest {
    const cached = this.#cache.get(subject);
    if (cached !== undefined) return cached;
    const { found, keep } = this.#find(subject);
    if (!keep) return found;
    // Subjects published once (replies to inboxes) would pile up: start afresh past a bound.
    if (this.#cache.size > 2 * this.#size + 1024) this.#cache.clear();
    this.#cache.set(subject, found);
    return found;
  }

  /** The sets of subscriptions `subject` reaches, merged into one list in sid order; whether to cache it. */
  #find(subject: string): { found: Interest; keep: boolean } {
    const sets: Set<SimSub>[] = [];
    const literal = this.#literal.get(subject);
    if (literal !== undefined) sets.push(literal);
    if (!this.#root.empty) {
      const tokens = subject.split(".");
      const visit = (node: WildNode, i: number): void => {
        if (i < tokens.length && node.tails.size > 0) sets.push(node.tails);
        if (i === tokens.length) {
          if (node.subs.size > 0) sets.push(node.subs);
          return;
        }
        const exact = node.children.get(tokens[i]!);
        if (exact !== undefined) visit(exact, i + 1);
        const star = node.children.get("*");
        if (star !== undefined) visit(star, i + 1);
      };
      visit(this.#root, 0);
    }
    if (sets.length === 0) return { found: nobody, keep: true };
    if (sets.length === 1) {
      // Subscriptions are added in sid order, so one set is already in order.
      const set = sets[0]!;
      let shared = this.#bySet.get(set);
      if (shared === undefined) {
        shared = interest([...set]);
        this.#bySet.set(set, shared);
      }
      return { found: shared, keep: true };
    }
    const out: SimSub[] = [];
    for (const set of sets) for (const sub of set) out.push(sub);
    return { found: interest(out.sort(bySid)), keep: out.length <= largestMerged };
  }

  #forgetAll(): void {
    this.#cache.clear();
    this.#bySet.clear();
  }
}

export function bySid(a: SimSub, b: SimSub): number {
  return a.sid - b.sid;
}

/** A `*` or `>` token anywhere. */
const wildcardToken = /(?:^|\.)[*>](?:\.|$)/;

function isWildcard(subject: string): boolean {
  return wildcardToken.test(subject);
}
