/**
 * trimSdkOverhead (lib/pulumi/sdkOverhead.ts), which the program runs first: V8's own stack traces
 * instead of source-mapped ones, and the SDK's per-resource debug lines not sent to the engine;
 * LOOMWORKS_PULUMI_SDK_DEBUG=1 keeps both.
 */
import { afterEach, describe, expect, it } from "vitest";
import * as sdkLog from "@pulumi/pulumi/log";
import { SDK_DEBUG_ENV, trimSdkOverhead } from "../../lib/pulumi/sdkOverhead";

const originalDebug = sdkLog.debug;
const originalPrepare = Error.prepareStackTrace;
const mapped = (): string => "mapped through source maps";

afterEach(() => {
  (require("@pulumi/pulumi/log") as { debug: typeof originalDebug }).debug = originalDebug;
  Error.prepareStackTrace = originalPrepare;
});

describe("trimSdkOverhead", () => {
  it("drops a source-map stack formatter and the SDK's debug lines", async () => {
    Error.prepareStackTrace = mapped;
    expect(new Error("x").stack).toBe("mapped through source maps");
    expect(trimSdkOverhead({})).toEqual({ trimmed: true });
    expect(Error.prepareStackTrace).toBeUndefined();
    expect(new Error("boom").stack).toMatch(/^Error: boom\n\s+at /);
    const log = require("@pulumi/pulumi/log") as { debug: typeof originalDebug };
    expect(log.debug).not.toBe(originalDebug);
    await expect(log.debug("Registering resource: t=x")).resolves.toBeUndefined();
  });

  it(`keeps both with ${SDK_DEBUG_ENV}=1`, () => {
    Error.prepareStackTrace = mapped;
    expect(trimSdkOverhead({ [SDK_DEBUG_ENV]: "1" })).toEqual({ trimmed: false });
    expect(Error.prepareStackTrace).toBe(mapped);
    expect((require("@pulumi/pulumi/log") as { debug: typeof originalDebug }).debug).toBe(originalDebug);
  });
});
