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
