/**
 * Pure parts of the point-in-time restore (lib/restore): names, targets and the recovery window,
 * backup-set choice, provider input checks and diff, SQL and configuration builders.
 */
import { describe, expect, it } from "vitest";
import { splitSchemaList } from "../../lib/restore/copy";
import type { PgBackRestBackup } from "../../lib/pg/pgbackrest";
import { UNKNOWN as UNKNOWN_INPUT } from "../../lib/pulumi/unknown";
import {
  checkPitrRestore,
  checkPitrRestoreInputs,
  pitrRestoreChangedKeys,
  pitrRestoreOutputs,
  pitrRestoreReplaces,
} from "../../lib/restore/provider";
import {
  RestoreTargetError,
  compareLsn,
  formatLsn,
  isRestoreLeftoverOf,
  newRestoreId,
  parseLsn,
  parseTargetTime,
  pgTimestamp,
  planRestoreTarget,
  preRestoreDatabaseName,
  restoreDatabaseName,
  restoreDbPart,
  restoreFilestorePath,
  sameTarget,
  scratchDirectory,
  scratchSettings,
  selectiveRestoreOptions,
  setClause,
  splitByLoader,
  splitGucList,
  targetKind,
} from "../../lib/restore";
import { isForeignKeyEntry, isScratchOnlyEntry } from "../../lib/restore/copy";
import { restorePipelineSetting } from "../../lib/restore/pipeline";
import { settleAll } from "../../lib/process/settleAll";

const sec = (iso: string): number => Math.floor(Date.parse(iso) / 1000);

function backup(
  label: string,
  start: string,
  stop: string,
  lsnStart: string,
  lsnStop: string,
): PgBackRestBackup {
  return {
    label,
    type: label.endsWith("F") ? "full" : "incr",
    prior: null,
    error: false,
    timestamp: { start: sec(start), stop: sec(stop) },
    archive: { start: null, stop: null },
    lsn: { start: lsnStart, stop: lsnStop },
  };
}

const BACKUPS = [
  backup("20261126-100000F", "2026-11-26T10:00:00Z", "2026-11-26T10:01:00Z", "0/2000028", "0/3000050"),
  backup(
    "20261126-100000F_20261126-120000I",
    "2026-11-26T12:00:00Z",
    "2026-11-26T12:00:30Z",
    "0/9000028",
    "0/9000200",
  ),
];
const NOW = new Date("2026-11-26T13:00:00Z");
const plan = (target: Record<string, string>, extra: { snapshotLsn?: string; currentLsn?: string } = {}) =>
  planRestoreTarget({
    subdomain: "acme",
    target,
    snapshotLsn: extra.snapshotLsn,
    now: NOW,
    currentLsn: extra.currentLsn ?? "0/F000000",
    backups: BACKUPS,
  });

describe("names", () => {
  it("are <db>__restore_<id> and <db>__pre_<id> when they fit in 63 bytes", () => {
    expect(restoreDatabaseName("acme", "0123abcd")).toBe("acme__restore_0123abcd");
    expect(preRestoreDatabaseName("acme", "0123abcd")).toBe("acme__pre_0123abcd");
    expect(restoreDbPart("a".repeat(45))).toBe("a".repeat(45));
  });

  it("cut long database names deterministically (63 bytes max), distinct per database", () => {
    const long = `${"x".repeat(50)}-abc`;
    const other = `${"x".repeat(50)}-abd`;
    const name = restoreDatabaseName(long, "0123abcd");
    expect(Buffer.byteLength(name)).toBeLessThanOrEqual(63);
    expect(restoreDatabaseName(long, "0123abcd")).toBe(name);
    expect(restoreDbPart(long)).not.toBe(restoreDbPart(other));
    expect(restoreDbPart(long)).toMatch(/^x{36}-[0-9a-f]{8}$/);
    expect(Buffer.byteLength(preRestoreDatabaseName(long, "ffffffff"))).toBeLessThanOrEqual(63);
  });

  it("recognise a tenant's leftovers (and only its own), also for cut names", () => {
    expect(isRestoreLeftoverOf("acme", "acme__pre_0123abcd")).toBe(true);
    expect(isRestoreLeftoverOf("acme", "acme__restore_0123abcd")).toBe(true);
    expect(isRestoreLeftoverOf("acme", "acme2__pre_0123abcd")).toBe(false);
    expect(isRestoreLeftoverOf("acme", "acme")).toBe(false);
    const long = "y".repeat(53);
    expect(isRestoreLeftoverOf(long, preRestoreDatabaseName(long, "0123abcd"))).toBe(true);
    expect(isRestoreLeftoverOf("y".repeat(52), preRestoreDatabaseName(long, "0123abcd"))).toBe(false);
  });

  it("refuse malformed ids and paths escaping the filestore root", () => {
    expect(newRestoreId()).toMatch(/^[0-9a-f]{8}$/);
    expect(() => restoreDatabaseName("acme", "../x")).toThrow(/restore id/);
    expect(() => restoreFilestorePath("/srv/fs", "../etc")).toThrow();
    expect(restoreFilestorePath("/srv/fs", "acme__pre_0123abcd")).toBe("/srv/fs/acme__pre_0123abcd");
    expect(scratchDirectory("/srv/state", "0123abcd")).toBe("/srv/state/restore/0123abcd");
  });
});

describe("LSNs and times", () => {
  it("parse, format and compare LSNs", () => {
    expect(parseLsn("1/0")).toBe(1n << 32n);
    expect(formatLsn(parseLsn("0/5a3b2c10"))).toBe("0/5A3B2C10");
    expect(compareLsn("0/FF", "1/0")).toBe(-1);
    expect(compareLsn("A/10", "a/10")).toBe(0);
    expect(() => parseLsn("5A3B2C10")).toThrow(/not an LSN/);
  });

  it("accept ISO 8601 times with a zone only", () => {
    expect(parseTargetTime("2026-11-26T10:00:00Z")).toBe(Date.parse("2026-11-26T10:00:00Z"));
    expect(parseTargetTime("2026-11-26T11:00:00+01:00")).toBe(Date.parse("2026-11-26T10:00:00Z"));
    expect(parseTargetTime("2026-11-26 10:00:00.250Z")).toBe(Date.parse("2026-11-26T10:00:00.250Z"));
    expect(parseTargetTime("2026-11-26T10:00:00")).toBeUndefined();
    expect(parseTargetTime("yesterday")).toBeUndefined();
    expect(pgTimestamp(Date.parse("2026-11-26T10:00:00.250Z"))).toBe("2026-11-26 10:00:00.250+00");
  });

  it("compare targets (a snapshot with another LSN is another target)", () => {
    expect(sameTarget({ lsn: "0/10" }, { lsn: "0/10" })).toBe(true);
    expect(sameTarget({ lsn: "0/10" }, { time: "2026-11-26T10:00:00Z" })).toBe(false);
    expect(sameTarget({ snapshot: "a" }, { snapshot: "a" }, "0/10", "0/10")).toBe(true);
    expect(sameTarget({ snapshot: "a" }, { snapshot: "a" }, "0/10", "0/20")).toBe(false);
  });
});

describe("planRestoreTarget: recovery window and backup set", () => {
  it("requires exactly one kind", () => {
    expect(() => targetKind("acme", {})).toThrow(
      'tenant "acme": key "restore": must name exactly one of snapshot, time, lsn',
    );
    expect(() => targetKind("acme", { lsn: "0/1", time: "x" })).toThrow(/exactly one/);
  });

  it("refuses a time before the window, naming tenant, key and the window's start", () => {
    expect(() => plan({ time: "2026-11-26T09:59:59Z" })).toThrow(
      'tenant "acme": key "restore.time": 2026-11-26T09:59:59.000Z is before the recovery window, which starts at 2026-11-26T10:00:00.000Z',
    );
    expect(() => plan({ time: "2026-11-26T09:59:59Z" })).toThrow(RestoreTargetError);
  });

  it("refuses a time in the future", () => {
    expect(() => plan({ time: "2026-11-26T13:00:01Z" })).toThrow(
      /key "restore\.time": 2026-11-26T13:00:01\.000Z is in the future \(now 2026-11-26T13:00:00\.000Z\)/,
    );
  });

  it("refuses a time inside the first backup, giving the earliest restorable time", () => {
    expect(() => plan({ time: "2026-11-26T10:00:30Z" })).toThrow(
      /earliest restorable time is 2026-11-26T10:01:01/,
    );
  });

  it("picks the newest backup that ended before a time target", () => {
    expect(plan({ time: "2026-11-26T11:00:00Z" })).toMatchObject({
      type: "time",
      value: "2026-11-26 11:00:00.000+00",
      exclusive: false,
      backup: { label: "20261126-100000F" },
    });
    expect(plan({ time: "2026-11-26T12:30:00Z" }).backup.label).toBe("20261126-100000F_20261126-120000I");
    // 12:00:30 is the incremental's (truncated) stop second: still the full backup.
    expect(plan({ time: "2026-11-26T12:00:30.500Z" }).backup.label).toBe("20261126-100000F");
  });

  it("uses LSN targets exclusively and picks the newest backup by stop LSN", () => {
    expect(plan({ lsn: "0/9000200" })).toMatchObject({
      type: "lsn",
      value: "0/9000200",
      exclusive: true,
      lsn: "0/9000200",
      backup: { label: "20261126-100000F_20261126-120000I" },
    });
    expect(plan({ lsn: "0/9000100" }).backup.label).toBe("20261126-100000F");
    expect(() => plan({ lsn: "0/1000000" })).toThrow(
      'tenant "acme": key "restore.lsn": 0/1000000 is before the recovery window, which starts at 2026-11-26T10:00:00.000Z (LSN 0/2000028)',
    );
    expect(() => plan({ lsn: "0/F000001" })).toThrow(
      /is in the future \(the cluster's current WAL position is 0\/F000000\)/,
    );
    expect(() => plan({ lsn: "nope" })).toThrow(/key "restore\.lsn": "nope" is not an LSN/);
  });

  it("resolves a snapshot through its LSN", () => {
    expect(plan({ snapshot: "before-upgrade" }, { snapshotLsn: "0/A000000" })).toMatchObject({
      kind: "snapshot",
      key: "restore.snapshot",
      type: "lsn",
      lsn: "0/A000000",
      backup: { label: "20261126-100000F_20261126-120000I" },
    });
    expect(() => plan({ snapshot: "old" }, { snapshotLsn: "0/100" })).toThrow(
      /key "restore\.snapshot": snapshot "old" \(LSN 0\/100\) is before the recovery window/,
    );
    expect(() => plan({ snapshot: "pending" })).toThrow(/snapshot "pending" has no recorded LSN/);
  });

  it("refuses everything when the repository holds no backup", () => {
    expect(() =>
      planRestoreTarget({
        subdomain: "acme",
        target: { lsn: "0/1" },
        now: NOW,
        currentLsn: "0/2",
        backups: [],
      }),
    ).toThrow(/holds no backup yet/);
  });
});

describe("scratch instance", () => {
  it("includes the tenant by name, or excludes every other user database when the backup predates it", () => {
    const inBackup = [
      { name: "postgres", oid: 5 },
      { name: "acme", oid: 16384 },
      { name: "globex", oid: 16390 },
      { name: "loomworks_mgmt", oid: 16400 },
    ];
    expect(selectiveRestoreOptions("acme", inBackup)).toEqual(["--db-include=acme"]);
    expect(selectiveRestoreOptions("initech", inBackup)).toEqual([
      "--db-exclude=acme",
      "--db-exclude=globex",
      "--db-exclude=loomworks_mgmt",
    ]);
  });

  it("also includes the database under a former name (the spare it was claimed from) when the backup lists it", () => {
    const inBackup = [
      { name: "acme", oid: 16384 },
      { name: "loomworks_spare_16300_0a1b2c3d", oid: 16390 },
    ];
    expect(selectiveRestoreOptions("initech", inBackup, ["loomworks_spare_16300_0a1b2c3d"])).toEqual([
      "--db-include=loomworks_spare_16300_0a1b2c3d",
    ]);
    expect(selectiveRestoreOptions("acme", inBackup, ["loomworks_spare_16300_0a1b2c3d"])).toEqual([
      "--db-include=acme",
      "--db-include=loomworks_spare_16300_0a1b2c3d",
    ]);
    expect(selectiveRestoreOptions("initech", inBackup, ["loomworks_spare_gone"])).toEqual([
      "--db-exclude=acme",
      "--db-exclude=loomworks_spare_16300_0a1b2c3d",
    ]);
  });

  it("runs on a private socket, never archives, tolerates zeroed pages, fetches WAL synchronously", () => {
    const conf = scratchSettings(
      {
        dir: "/s/restore/0123abcd",
        dataDir: "/s/restore/0123abcd/data",
        runDir: "/s/restore/0123abcd/run",
        logDir: "/s/restore/0123abcd/log",
        logFile: "/s/restore/0123abcd/log/postgres.log",
        schemaDumpDir: "/s/restore/0123abcd/schema",
        dumpDir: "/s/restore/0123abcd/dump",
        port: 40123,
      },
      { config: "/s/pgbackrest/pgbackrest.conf", stanza: "main" },
    );
    expect(conf).toMatch(/^port = 40123$/m);
    expect(conf).toMatch(/^listen_addresses = ''$/m);
    expect(conf).toMatch(/^unix_socket_directories = '\/s\/restore\/0123abcd\/run'$/m);
    expect(conf).toMatch(/^archive_mode = off$/m);
    expect(conf).toMatch(/^ignore_invalid_pages = on$/m);
    expect(conf).toMatch(
      /^restore_command = '.*pgbackrest --config=\/s\/pgbackrest\/pgbackrest.conf --stanza=main --pg1-path=\/s\/restore\/0123abcd\/data --no-archive-async archive-get %f "%p"'$/m,
    );
  });
});

describe("data load split", () => {
  it("gives the load role what the tenant owns and the ownerless BLOBS, the superuser the platform's", () => {
    const listing = [
      ";",
      "; Archive created at 2026-12-07 11:00:00 UTC",
      "4001; 0 16500 TABLE DATA public res_partner ac-1",
      "4002; 0 16501 TABLE DATA public my table postgres ac-1",
      "4003; 0 16502 SEQUENCE SET public res_partner_id_seq ac-1",
      "4004; 0 16600 TABLE DATA loomworks_undo change_log loomworks_guard_owner",
      "4005; 0 16601 TABLE DATA loomworks_snapshot requests loomworks_snapshot_owner",
      "4006; 0 0 BLOBS - BLOBS ",
      "4007; 0 16503 TABLE DATA public ac-1 postgres",
      "",
    ].join("\n");
    expect(splitByLoader(listing, "ac-1")).toEqual({
      tenant: [
        "4001; 0 16500 TABLE DATA public res_partner ac-1",
        "4002; 0 16501 TABLE DATA public my table postgres ac-1",
        "4003; 0 16502 SEQUENCE SET public res_partner_id_seq ac-1",
        "4006; 0 0 BLOBS - BLOBS ",
      ],
      platform: [
        "4004; 0 16600 TABLE DATA loomworks_undo change_log loomworks_guard_owner",
        "4005; 0 16601 TABLE DATA loomworks_snapshot requests loomworks_snapshot_owner",
        "4007; 0 16503 TABLE DATA public ac-1 postgres",
      ],
    });
  });
});

describe("overlapped pipeline", () => {
  it("leaves out only the amcheck extension the verify step installed, and its comment", () => {
    expect(isScratchOnlyEntry("3; 3079 16385 EXTENSION - amcheck ")).toBe(true);
    expect(isScratchOnlyEntry("3; 3079 16385 EXTENSION - amcheck")).toBe(true);
    expect(isScratchOnlyEntry("4242; 0 0 COMMENT - EXTENSION amcheck ")).toBe(true);
    expect(isScratchOnlyEntry("3; 3079 16385 EXTENSION - amcheck_next ")).toBe(false);
    expect(isScratchOnlyEntry("4001; 1259 16500 TABLE public amcheck ac-1")).toBe(false);
    // a tenant's table named like the entry is the tenant's
    expect(isScratchOnlyEntry("4002; 0 16501 TABLE DATA public EXTENSION - amcheck ac-1")).toBe(false);
  });

  it("tells foreign keys from the other post-data entries", () => {
    expect(isForeignKeyEntry("5001; 2606 17000 FK CONSTRAINT public x x_partner_id_fkey ac-1")).toBe(true);
    expect(isForeignKeyEntry("5002; 2606 17001 CONSTRAINT public x x_pkey ac-1")).toBe(false);
    expect(isForeignKeyEntry("5003; 1259 17002 INDEX public x_partner_id_index ac-1")).toBe(false);
    expect(isForeignKeyEntry("5004; 1259 17003 INDEX public FK CONSTRAINT ac-1")).toBe(false);
  });

  it("reads LOOMWORKS_RESTORE_PIPELINE: overlapped by default, sequential on request, anything else refused", () => {
    expect(restorePipelineSetting({})).toBe("overlapped");
    expect(restorePipelineSetting({ LOOMWORKS_RESTORE_PIPELINE: " Sequential " })).toBe("sequential");
    expect(restorePipelineSetting({ LOOMWORKS_RESTORE_PIPELINE: "overlapped" })).toBe("overlapped");
    expect(() => restorePipelineSetting({ LOOMWORKS_RESTORE_PIPELINE: "fast" })).toThrow(
      /overlapped or sequential/,
    );
  });

  it("settleAll waits for every task before it rejects with the first failure", async () => {
    let slowDone = false;
    const slow = new Promise<number>((resolve) =>
      setTimeout(() => {
        slowDone = true;
        resolve(1);
      }, 30),
    );
    await expect(settleAll([Promise.reject(new Error("first")), slow])).rejects.toThrow("first");
    expect(slowDone).toBe(true);
    await expect(settleAll([Promise.resolve("a"), slow])).resolves.toEqual(["a", 1]);
  });
});

describe("database settings", () => {
  it("split flattened GUC lists", () => {
    expect(splitGucList('"$user", public')).toEqual(["$user", "public"]);
    expect(splitGucList('a, "b,c", "d""e"')).toEqual(["a", "b,c", 'd"e']);
  });

  it("write ALTER DATABASE SET clauses with quoted names and values", () => {
    expect(setClause("statement_timeout=30s")).toBe(`SET "statement_timeout" TO '30s'`);
    expect(setClause('search_path="$user", public')).toBe(`SET "search_path" TO '$user', 'public'`);
    expect(setClause("loomworks.note=it's")).toBe(`SET "loomworks.note" TO 'it''s'`);
    expect(() => setClause("broken")).toThrow(/malformed/);
  });
});

describe("PitrRestore provider helpers", () => {
  const inputs = {
    adminDsn: "postgres://postgres:pw@127.0.0.1:15432/postgres",
    stateDir: "/srv/state",
    stanza: "main",
    subdomain: "acme",
    database: "acme",
    roleName: "acme",
    tenantState: "active",
    target: { snapshot: "before-upgrade" },
    snapshotLsn: "0/A000000",
    filestoreRoot: "/srv/state/filestore",
  };

  it("replaces on a new target or snapshot LSN; other inputs change nothing", () => {
    expect(pitrRestoreReplaces(inputs, { ...inputs, target: { time: "2026-11-26T10:00:00Z" } })).toBe(true);
    expect(pitrRestoreReplaces(inputs, { ...inputs, snapshotLsn: "0/B000000" })).toBe(true);
    expect(pitrRestoreReplaces(inputs, { ...inputs, tenantState: "suspended" })).toBe(false);
    expect(pitrRestoreChangedKeys(inputs, { ...inputs, tenantState: "suspended" })).toEqual(["tenantState"]);
    expect(pitrRestoreReplaces(inputs, { ...inputs, target: { snapshot: "before-upgrade" } })).toBe(false);
    // The LSN of a snapshot being updated is unknown in a preview: an update, re-diffed by `up`.
    expect(pitrRestoreReplaces(inputs, { ...inputs, snapshotLsn: UNKNOWN_INPUT })).toBe(false);
    expect(pitrRestoreChangedKeys(inputs, { ...inputs, snapshotLsn: UNKNOWN_INPUT })).toEqual([
      "snapshotLsn",
    ]);
  });

  it("checks shapes, naming tenant and key", () => {
    expect(checkPitrRestoreInputs(inputs)).toEqual([]);
    expect(checkPitrRestoreInputs({ ...inputs, target: { time: "soon" } })).toEqual([
      {
        property: "target",
        reason: 'tenant "acme": key "restore.time": "soon" is not an ISO 8601 timestamp with a time zone',
      },
    ]);
    expect(
      checkPitrRestoreInputs({ ...inputs, target: { lsn: "0/1", time: "2026-11-26T10:00:00Z" } })[0].reason,
    ).toMatch(/must name exactly one/);
    expect(checkPitrRestoreInputs({ ...inputs, filestoreRoot: "fs" })[0].property).toBe("filestoreRoot");
  });

  it("validates the target only when it is new or changed and every input is known", async () => {
    // These return before any connection is attempted (the DSN points nowhere).
    const offline = { ...inputs, adminDsn: "postgres://x:y@127.0.0.1:1/postgres" };
    expect(await checkPitrRestore(offline, { ...offline })).toEqual({ failures: [], validated: false });
    expect(await checkPitrRestore({}, { ...offline, adminDsn: UNKNOWN_INPUT })).toEqual({
      failures: [],
      validated: false,
    });
    expect(await checkPitrRestore({}, { ...offline, snapshotLsn: UNKNOWN_INPUT })).toEqual({
      failures: [],
      validated: false,
    });
    const bad = await checkPitrRestore({}, { ...offline, target: { lsn: "x" } });
    expect(bad.failures[0].reason).toMatch(/key "restore\.lsn": "x" is not an LSN/);
  });

  it("outputs the restore's id, target LSN, backup, state, pre-restore database and timings", () => {
    const outs = pitrRestoreOutputs(inputs, {
      id: "0123abcd",
      subdomain: "acme",
      target: inputs.target,
      targetLsn: "0/A000000",
      backup: "20261126-100000F",
      state: "done",
      restoreDatabase: "acme__restore_0123abcd",
      preRestoreDatabase: "acme__pre_0123abcd",
      timings: { totalMs: 1234, unavailableMs: 12 },
    });
    expect(outs).toMatchObject({
      restoreId: "0123abcd",
      targetLsn: "0/A000000",
      backup: "20261126-100000F",
      state: "done",
      preRestoreDatabase: "acme__pre_0123abcd",
      timings: { totalMs: 1234, unavailableMs: 12 },
    });
  });
});

describe("splitSchemaList (the definitions loaded by parallel sessions)", () => {
  it("splits the listing: what precedes the first table, the tables dealt out, the rest in order", () => {
    const lines = [
      "10; 2615 1 SCHEMA - app owner",
      "11; 1247 2 TYPE public mood owner",
      "12; 1259 3 TABLE public a owner",
      "13; 1259 4 SEQUENCE public a_id_seq owner",
      "14; 1259 5 TABLE public b owner",
      "15; 1259 6 TABLE public c owner",
      "16; 0 0 COMMENT public TABLE c owner",
      "17; 1259 7 VIEW public v owner",
    ];
    expect(splitSchemaList(lines, 2)).toEqual({
      before: lines.slice(0, 2),
      tables: [[lines[2], lines[5]], [lines[4]]],
      after: [lines[3], lines[6], lines[7]],
    });
    expect(splitSchemaList(lines.slice(0, 2), 4)).toEqual({
      before: lines.slice(0, 2),
      tables: [],
      after: [],
    });
  });
});
