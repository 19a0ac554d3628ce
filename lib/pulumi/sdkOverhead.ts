/**
 * Two costs of the Node SDK that a `pulumi up` pays per resource and nobody reads on this
 * platform, removed from the program (BENCHMARKS.md, "A stack with 500 tenants": together about
 * 40 % of a no-change `up`'s wall time at 150 tenants).
 *
 *  - Stack traces: the SDK reads `new Error().stack` for every promise it makes and every
 *    resource it registers, and its runner installs source-map-support, which maps every frame of
 *    each of them through the source maps. The program's stack traces are V8's own instead
 *    (positions in bin/'s JavaScript); errors still carry them.
 *  - Debug lines: three per registered resource, each one RPC to the engine, sent one after the
 *    other, which the engine writes to its own log file; `pulumi up` shows them only with
 *    `--debug`.
 *
 * `LOOMWORKS_PULUMI_SDK_DEBUG=1` keeps both, for debugging the program.
 */
export const SDK_DEBUG_ENV = "LOOMWORKS_PULUMI_SDK_DEBUG";

export function trimSdkOverhead(env: NodeJS.ProcessEnv = process.env): { trimmed: boolean } {
  if (env[SDK_DEBUG_ENV] === "1") return { trimmed: false };
  Reflect.deleteProperty(Error, "prepareStackTrace");
  // The SDK's modules call `log.debug` through this module object, so replacing the export is
  // enough; an SDK whose export cannot be replaced keeps its debug lines (and their cost).
  const sdkLog = require("@pulumi/pulumi/log") as { debug: (...args: unknown[]) => Promise<void> };
  const quiet = (): Promise<void> => Promise.resolve();
  try {
    sdkLog.debug = quiet;
  } catch {
    // read-only export
  }
  return { trimmed: sdkLog.debug === quiet };
}
