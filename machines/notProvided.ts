// Default implementations for a machine's effects: they throw, so a runtime
// that forgets to wire one fails at once instead of doing nothing.

export class NotProvidedError extends Error {
  override name = "NotProvidedError";
  constructor(readonly what: string) {
    super(`${what} was not provided to the machine`);
  }
}

export function notProvided(what: string): () => never {
  return () => {
    throw new NotProvidedError(what);
  };
}
