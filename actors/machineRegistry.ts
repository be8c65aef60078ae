// The machines processes can be spawned from (SPAWN `machine`), by name. One
// registry per runtime, never a module-level one: a node is given its own, and
// `defaultRegistry()` builds a fresh one holding the example machines.
import type { AnyStateMachine } from "xstate";
import { counterMachine } from "../machines/examples/counter.js";
import { kvCellMachine } from "../machines/examples/kvCell.js";
import { MachineRegistrationError } from "./errors.js";

export class MachineRegistry {
  readonly #machines = new Map<string, AnyStateMachine>();

  /** Registers `machine` under `name`; a name is registered once (MachineRegistrationError). */
  register(name: string, machine: AnyStateMachine): this {
    if (name.length < 1 || name.length > 64) throw new MachineRegistrationError(name, "invalid name");
    if (this.#machines.has(name)) throw new MachineRegistrationError(name, "duplicate");
    this.#machines.set(name, machine);
    return this;
  }

  get(name: string): AnyStateMachine | undefined {
    return this.#machines.get(name);
  }

  has(name: string): boolean {
    return this.#machines.has(name);
  }

  /** Registered names, sorted. */
  list(): string[] {
    return [...this.#machines.keys()].sort();
  }
}

/** A new registry with the example machines: `counter` and `kvCell`. */
export function defaultRegistry(): MachineRegistry {
  return new MachineRegistry().register("counter", counterMachine).register("kvCell", kvCellMachine);
}
