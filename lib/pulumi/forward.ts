/**
 * Exports kept at a module's old path for the providers stored in existing stacks' state. Pulumi runs
 * a refresh, the diff of a resource the program did not touch and a delete with the provider text
 * saved at the resource's last update; that text requires `bin/lib/<module>` by path and calls a
 * function by name (test/integration/provider-state-compat.test.ts lists every such pair). The call is
 * forwarded to where the function lives now, loaded when it is called, so the old path imports
 * nothing new (and closes no cycle).
 */
export function forwardTo<M, K extends keyof M>(load: () => M, name: K): M[K] {
  const forwarded = (...args: unknown[]): unknown => (load()[name] as (...a: unknown[]) => unknown)(...args);
  return forwarded as M[K];
}
