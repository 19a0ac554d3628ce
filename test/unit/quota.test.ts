import { promises as fsp } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  DEFAULT_BACKUP_SCHEDULE,
  platformJobs,
  validateScheduleFile,
} from "../../lib/backup/schedule-defaults";
import { DEFAULT_QUOTA_CHECK_SCHEDULE } from "../../lib/backup/schedule-defaults";
import { parseCron } from "../../lib/backup/cron";
import {
  AI_LIMIT_SQLSTATE,
  INSTALLED_VERSION_SQL,
  QUOTA_API_VERSION,
  USER_LIMIT_SQLSTATE,
  aiResetTime,
  decodeAiCounter,
  encodeAiCounter,
  quotaApiSql,
  quotaLimitsRow,
  storageGbToBytes,
  utcDayNumber,
} from "../../lib/quota/sql";
import {
  directoryBytes,
  formatBytes,
  readOnlyReason,
  storageEvents,
  storagePercent,
  storageState,
  type StorageState,
} from "../../lib/quota/storage";

describe("AI-operation counter encoding", () => {
  it("day numbers count UTC days since the epoch", () => {
    expect(utcDayNumber(new Date("1970-01-01T00:00:00Z"))).toBe(0);
    expect(utcDayNumber(new Date("1970-01-01T23:59:59.999Z"))).toBe(0);
    expect(utcDayNumber(new Date("1970-01-02T00:00:00Z"))).toBe(1);
    // a time zone offset does not move the UTC day
    expect(utcDayNumber(new Date("2026-11-26T23:30:00-05:00"))).toBe(
      utcDayNumber(new Date("2026-11-27T04:30:00Z")),
    );
    expect(utcDayNumber(new Date("2026-11-26T12:00:00Z"))).toBe(20_783);
  });

  it("value = day << 32 | count, and back", () => {
    expect(encodeAiCounter(20_783, 0)).toBe(20_783n * 4_294_967_296n);
    expect(encodeAiCounter(20_783, 7)).toBe(89_262_305_312_775n);
    expect(decodeAiCounter("89262305312775")).toEqual({ day: 20_783, count: 7 });
    expect(decodeAiCounter(0)).toEqual({ day: 0, count: 0 });
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2_000_000 }),
        fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        (day, count) => {
          const v = encodeAiCounter(day, count);
          expect(decodeAiCounter(v)).toEqual({ day, count });
          // later days always sort after earlier ones, whatever the counts
          expect(encodeAiCounter(day + 1, 0) > v).toBe(true);
        },
      ),
    );
    expect(() => encodeAiCounter(1, 2 ** 32)).toThrow("invalid count");
    expect(() => encodeAiCounter(-1, 0)).toThrow("invalid day number");
    expect(() => decodeAiCounter(-1n)).toThrow("invalid counter value");
  });

  it("the limit resets at the next midnight UTC", () => {
    expect(aiResetTime(new Date("2026-11-26T10:15:00Z")).toISOString()).toBe("2026-11-27T00:00:00.000Z");
    expect(aiResetTime(new Date("2026-11-26T00:00:00Z")).toISOString()).toBe("2026-11-27T00:00:00.000Z");
    expect(aiResetTime(new Date("2026-11-26T23:59:59.999Z")).toISOString()).toBe("2026-11-27T00:00:00.000Z");
    expect(aiResetTime(new Date("2026-12-31T20:00:00-08:00")).toISOString()).toBe("2027-01-02T00:00:00.000Z");
  });
});

describe("limits", () => {
  it("maxStorageGb is GiB, may be fractional, and is rounded to whole bytes", () => {
    expect(storageGbToBytes(5)).toBe(5 * 1024 ** 3);
    expect(storageGbToBytes(0.5)).toBe(536_870_912);
    expect(storageGbToBytes(0.001)).toBe(1_073_742);
    expect(storageGbToBytes(1e-12)).toBe(1);
    expect(() => storageGbToBytes(0)).toThrow("maxStorageGb must be a positive number (got 0)");
    expect(() => storageGbToBytes(Number.NaN)).toThrow("positive number");
    expect(() => storageGbToBytes(1e12)).toThrow("too large");
  });

  it("quotaLimitsRow converts and validates; maxSnapshots is the daily pre_ai restore point limit", () => {
    expect(
      quotaLimitsRow({
        subdomain: "acme",
        tier: "pro",
        limits: { maxUsers: 25, maxStorageGb: 1.5, maxAiOperationsDaily: 1000, maxSnapshots: 100 },
      }),
    ).toEqual({
      tenant: "acme",
      tier: "pro",
      maxUsers: 25,
      maxStorageBytes: 1_610_612_736,
      maxAiOperationsDaily: 1000,
      maxPreAiSnapshotsDaily: 100,
    });
    expect(
      quotaLimitsRow({
        subdomain: "acme",
        tier: "pro",
        limits: { maxUsers: 25, maxStorageGb: 1, maxAiOperationsDaily: 1000 },
      }).maxPreAiSnapshotsDaily,
    ).toBeNull();
    const v = {
      subdomain: "acme",
      tier: "pro",
      limits: { maxUsers: 1, maxStorageGb: 1, maxAiOperationsDaily: 1 },
    };
    expect(() => quotaLimitsRow({ ...v, limits: { ...v.limits, maxUsers: -1 } })).toThrow(
      "limits.maxUsers must be an integer from 0 to 2147483647 (got -1)",
    );
    expect(() => quotaLimitsRow({ ...v, limits: { ...v.limits, maxAiOperationsDaily: 2 ** 31 } })).toThrow(
      "limits.maxAiOperationsDaily must be an integer",
    );
    expect(() => quotaLimitsRow({ ...v, subdomain: "" })).toThrow("subdomain is required");
  });
});

describe("storage states", () => {
  it("ok below 80 %, warning from 80 %, read_only from 100 %; no limit is ok", () => {
    expect(storageState(79, 100)).toBe("ok");
    expect(storageState(80, 100)).toBe("warning");
    expect(storageState(99, 100)).toBe("warning");
    expect(storageState(100, 100)).toBe("read_only");
    expect(storageState(5_000, 100)).toBe("read_only");
    expect(storageState(5_000, null)).toBe("ok");
    expect(storageState(89, 100, 90)).toBe("ok");
    expect(storageState(90, 100, 90)).toBe("warning");
    // exact at large sizes (no floating point drift at the threshold)
    const max = 500 * 1024 ** 3;
    expect(storageState(max * 0.8, max)).toBe("warning");
    expect(storageState(max * 0.8 - 1, max)).toBe("ok");
    expect(storageState(max - 1, max)).toBe("warning");
  });

  it("percent with 2 decimals", () => {
    expect(storagePercent(1, 3)).toBe(33.33);
    expect(storagePercent(2, 3)).toBe(66.67);
    expect(storagePercent(150, 100)).toBe(150);
    expect(storagePercent(1, null)).toBeNull();
  });

  it("events on transitions only: once per crossing", () => {
    const cases: Array<[StorageState | null, StorageState, string[]]> = [
      [null, "ok", []],
      ["ok", "ok", []],
      [null, "warning", ["storage_warning"]],
      ["ok", "warning", ["storage_warning"]],
      ["warning", "warning", []],
      ["warning", "ok", ["storage_ok"]],
      ["ok", "read_only", ["storage_read_only"]],
      ["warning", "read_only", ["storage_read_only"]],
      ["read_only", "read_only", []],
      ["read_only", "warning", ["storage_writable"]],
      ["read_only", "ok", ["storage_writable"]],
    ];
    for (const [from, to, events] of cases)
      expect(storageEvents(from, to), `${from} -> ${to}`).toEqual(events);
  });

  it("bytes for people, and the read-only reason", () => {
    expect(formatBytes(0)).toBe("0 bytes");
    expect(formatBytes(1023)).toBe("1023 bytes");
    expect(formatBytes(1536)).toBe("1.5 KB");
    expect(formatBytes(5 * 1024 ** 3)).toBe("5 GB");
    expect(formatBytes(5.2134 * 1024 ** 3)).toBe("5.21 GB");
    expect(formatBytes(3 * 1024 ** 4)).toBe("3 TB");
    expect(readOnlyReason(5.5 * 1024 ** 3, 5 * 1024 ** 3, "basic")).toBe(
      "storage limit reached: 5.5 GB of 5 GB used (tier basic, limits.maxStorageGb); " +
        "writes are refused until usage is back under the limit or the limit is raised",
    );
  });

  it("directoryBytes sums regular files, counts hard links once, ignores symlinks; missing is 0", async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), "quota-unit-"));
    try {
      expect(await directoryBytes(path.join(dir, "missing"))).toBe(0);
      await fsp.mkdir(path.join(dir, "fs", "ab", "deep"), { recursive: true });
      await fsp.writeFile(path.join(dir, "fs", "ab", "one"), Buffer.alloc(1000));
      await fsp.writeFile(path.join(dir, "fs", "ab", "deep", "two"), Buffer.alloc(234));
      await fsp.link(path.join(dir, "fs", "ab", "one"), path.join(dir, "fs", "ab", "one-again"));
      await fsp.writeFile(path.join(dir, "outside"), Buffer.alloc(99_999));
      await fsp.symlink(path.join(dir, "outside"), path.join(dir, "fs", "link"));
      expect(await directoryBytes(path.join(dir, "fs"))).toBe(1234);
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });
});

describe("installation SQL", () => {
  const sql = quotaApiSql();

  it("every function has a safe search_path; SECURITY DEFINER unless it runs as the DDL's or the check's role; then every function is the guard role's", () => {
    const fns = [
      ...sql.matchAll(/CREATE OR REPLACE FUNCTION "loomworks_quota"\.(\w+)\(([^)]*)\) ([\s\S]*?)AS \$fn\$/g),
    ];
    expect(fns.map((m) => m[1]).sort()).toEqual([
      "active_internal_users",
      "ai_operations_today",
      "apply_read_only",
      "count_today",
      "enforce_user_limit",
      "next_in_day",
      "on_ddl_end",
      "pre_ai_snapshots_today",
      "refuse_write",
      "remaining_user_slots",
      "status",
      "storage_read_only",
      "take_ai_operation",
      "take_pre_ai_snapshot",
    ]);
    const invoker = new Set(["apply_read_only", "on_ddl_end"]);
    for (const [, name, , header] of fns) {
      if (invoker.has(name)) expect(header, name).not.toContain("SECURITY DEFINER");
      else expect(header, name).toContain("SECURITY DEFINER");
      expect(header, name).toContain("SET search_path = pg_catalog, pg_temp");
    }
    // after the last function, before the grants: every function of the schema the owner's, none PUBLIC's
    const own = sql.slice(sql.indexOf("DO $own$"), sql.indexOf("$own$;"));
    expect(own).toContain("p.pronamespace = 'loomworks_quota'::regnamespace");
    expect(own).toContain(`'ALTER FUNCTION %s OWNER TO "loomworks_guard_owner"'`);
    expect(own).toContain("'REVOKE ALL ON FUNCTION %s FROM PUBLIC'");
    expect(sql.indexOf("DO $own$")).toBeGreaterThan(fns.at(-1)?.index ?? Infinity);
    expect(sql.indexOf("DO $grants$")).toBeGreaterThan(sql.indexOf("DO $own$"));
    expect(sql).not.toMatch(/TO PUBLIC/i);
    // the tenant may call the read functions only
    expect(sql).toContain(
      "GRANT EXECUTE ON FUNCTION loomworks_quota.status(), loomworks_quota.remaining_user_slots(), loomworks_quota.ai_operations_today(), loomworks_quota.pre_ai_snapshots_today(), loomworks_quota.storage_read_only() TO %I",
    );
    expect(sql).toContain(`USING ERRCODE = '${USER_LIMIT_SQLSTATE}'`);
    expect(sql).toContain(`USING ERRCODE = '${AI_LIMIT_SQLSTATE}'`);
    expect(sql).toContain(
      `COMMENT ON SCHEMA "loomworks_quota" IS 'loomworks quota api v${QUOTA_API_VERSION}';`,
    );
  });

  it("is re-runnable: creates only when missing", () => {
    // the event trigger's tag list names commands; it and the read-only triggers are replaced on purpose
    const statements = sql
      .replace(/WHEN TAG IN \([^)]*\)/g, "")
      .replace("DROP EVENT TRIGGER IF EXISTS loomworks_quota_ddl;", "")
      .replace("'DROP TRIGGER loomworks_quota_read_only ON %s'", "");
    expect(statements).not.toMatch(/CREATE (TABLE|SEQUENCE|SCHEMA|INDEX) (?!IF NOT EXISTS)/);
    expect(statements).not.toMatch(/CREATE FUNCTION/);
    expect(statements).not.toMatch(/DROP /);
  });

  it("migrations run only on databases installed before their version", () => {
    const migrations = [...sql.matchAll(/DO \$migrate\$\nBEGIN\n {4}IF (.*) < (\d+) THEN\n/g)];
    expect(migrations.map((m) => Number(m[2]))).toEqual([2]);
    for (const m of migrations) expect(m[1]).toBe(INSTALLED_VERSION_SQL);
    expect(Math.max(...migrations.map((m) => Number(m[2])))).toBeLessThanOrEqual(QUOTA_API_VERSION);
  });
});

describe("the quota-check job", () => {
  it("is scheduled every 10 minutes by default, with the undo log retention when given", () => {
    expect(DEFAULT_QUOTA_CHECK_SCHEDULE).toBe("*/10 * * * *");
    expect(() => parseCron(DEFAULT_QUOTA_CHECK_SCHEDULE)).not.toThrow();
    const base = {
      stateDir: "/srv/lw",
      schedule: DEFAULT_BACKUP_SCHEDULE,
      jobsScript: "/app/jobs.js",
      node: "/n",
    };
    expect(platformJobs(base).at(-1)).toEqual({
      name: "quota-check",
      cron: "*/10 * * * *",
      command: ["/n", "/app/jobs.js", "quota-check", "--state-dir", "/srv/lw"],
      timeoutMinutes: 30,
    });
    const jobs = platformJobs({ ...base, quotaCheck: "*/5 * * * *", undoRetentionDays: 14 });
    expect(jobs.at(-1)).toEqual({
      name: "quota-check",
      cron: "*/5 * * * *",
      command: ["/n", "/app/jobs.js", "quota-check", "--undo-retention-days", "14", "--state-dir", "/srv/lw"],
      timeoutMinutes: 30,
    });
    expect(validateScheduleFile({ version: 1, jobs }).jobs).toEqual(jobs);
  });
});
