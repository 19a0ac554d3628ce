/**
 * Lazy module loading for dynamic providers. Pulumi serializes a provider with everything its
 * methods capture, and a local module captured by value is serialized whole (with pg, child
 * processes and all). So a provider captures only a loader holding an absolute path, and the
 * compiled lib module is required when a method runs: the serialized provider stays small, the
 * program does not load pg, and a provider kept in an old state runs against today's lib.
 */
import * as path from "node:path";

/**
 * A loader of `bin/lib/<relative>` (compiled), e.g. `libModule<typeof Provision>("tenant/provision")`
 * with `import type * as Provision from "../lib/tenant/provision"`. Call it at module level (the
 * path is resolved at program time); call the loader inside provider methods.
 */
export function libModule<M>(relative: string): () => M {
  const file = path.join(__dirname, "..", relative);
  return () => require(file) as M;
}

/** Pulumi's log, required inside the provider's process when a method runs. */
export function pulumiLog(): typeof import("@pulumi/pulumi").log {
  return (require("@pulumi/pulumi") as typeof import("@pulumi/pulumi")).log;
}

const stubs = new WeakMap<object, object>();

/**
 * What a resource hands Pulumi as its provider: a stub whose methods require the compiled module
 * that exports the provider (`file`: that module's `__filename`) when they run, and call the
 * provider's method of the same name. Pulumi serializes the provider into every resource's inputs
 * and outputs and the file backend rewrites the whole state after every step, so the provider's
 * text is paid per resource and per step: the stub is ~1 KB where the provider's own methods are
 * 3-6 KB (bench/scale.ts). The stub is made once per provider (Pulumi caches the serialized text by
 * object). Stored stubs call `<file>` and `exportName` by name: both stay (test/fixtures/provider-state-calls.json).
 */
export function providerStub<P extends object>(provider: P, file: string, exportName: string): P {
  const known = stubs.get(provider);
  if (known) return known as P;
  // One function holds the module's path (serialized once); each method names itself only.
  const call = (method: string, args: unknown[]): unknown =>
    (require(file) as Record<string, Record<string, (...a: unknown[]) => unknown>>)[exportName][method](
      ...args,
    );
  const stub: Record<string, unknown> = {};
  for (const method of Object.keys(provider)) {
    if (typeof (provider as Record<string, unknown>)[method] !== "function") continue;
    stub[method] = (...args: unknown[]): unknown => call(method, args);
  }
  stubs.set(provider, stub);
  return stub as P;
}
