import { describe, expect, it } from "vitest";
import { parseEngineLog, urnTypeName } from "../../bench/engine-log";

const urn = (type: string, name: string): string =>
  `urn:pulumi:bench::loomworks::loomworks:platform:LoomworksPlatform$loomworks:tenant:Tenant$${type}::${name}`;
const line = (time: string, msg: string): string => JSON.stringify({ time, level: "INFO", msg, v: 7 });

describe("the CLI log's breakdown (bench/engine-log.ts)", () => {
  it("names a resource type by the last segment of its URN", () => {
    expect(urnTypeName(urn("loomworks:index:TenantDatabase", "acme"))).toBe("TenantDatabase");
  });

  it("pairs provider calls, merges overlapping ones and leaves the rest to the engine", () => {
    const a = urn("loomworks:index:TenantDatabase", "a");
    const b = urn("loomworks:index:TenantDatabase", "b");
    const text = [
      line("2026-12-07T20:00:00.000000Z", "ResourceMonitor.RegisterResource received: t=x, name=a"),
      line(
        "2026-12-07T20:00:00.100000Z",
        `Provider[pulumi-nodejs, 0xc0].Check(${a}) executing (#olds=1,#news=2)`,
      ),
      line(
        "2026-12-07T20:00:00.150000Z",
        `Provider[pulumi-nodejs, 0xc0].Check(${b}) executing (#olds=1,#news=2)`,
      ),
      line(
        "2026-12-07T20:00:00.300000Z",
        `Provider[pulumi-nodejs, 0xc0].Check(${a}) success: inputs=#2 failures=#0`,
      ),
      line(
        "2026-12-07T20:00:00.400000Z",
        `Provider[pulumi-nodejs, 0xc0].Check(${b}) success: inputs=#2 failures=#0`,
      ),
      line(
        "2026-12-07T20:00:00.500000Z",
        `Provider[pulumi-nodejs, 0xc0].Diff(${a},loomworks-tenant:a): executing (#oldInputs=1#oldOutputs=2,#newInputs=1)`,
      ),
      line(
        "2026-12-07T20:00:00.550000Z",
        `Provider[pulumi-nodejs, 0xc0].Diff(${a},loomworks-tenant:a) failed: boom`,
      ),
      line("2026-12-07T20:00:00.600000Z", "Saved stack bench checkpoint to: /x (backup=/y)"),
      "not json",
      line("2026-12-07T20:00:01.000000Z", "ResourceMonitor.RegisterResource received: t=x, name=b"),
    ].join("\n");
    const r = parseEngineLog(text);
    expect(r.logSpanMs).toBeCloseTo(1000, 6);
    expect(r.registrations).toEqual({ count: 2, firstMs: 0, lastMs: 1000 });
    expect(r.calls["TenantDatabase.Check"]).toMatchObject({
      count: 2,
      maxMs: expect.closeTo(250, 6) as number,
    });
    expect(r.calls["TenantDatabase.Check"].sumMs).toBeCloseTo(450, 6);
    expect(r.calls["TenantDatabase.Check"].busyMs).toBeCloseTo(300, 6);
    expect(r.calls["TenantDatabase.Diff"].count).toBe(1);
    expect(r.providerBusyMs).toBeCloseTo(350, 6);
    expect(r.engineOnlyMs).toBeCloseTo(650, 6);
    expect(r.checkpoints).toBe(1);
  });
});
