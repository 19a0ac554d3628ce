import { promises as fsp } from "node:fs";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PgBackRestBackup, PgBackRestStanzaInfo } from "../../lib/pg/pgbackrest";
import { checkSnapshotInputs, diffSnapshot } from "../../lib/snapshot/provider";
import { linkCopyTree } from "../../bench/snapshot-baseline";
import {
  MAX_RESTORE_POINT_BYTES,
  backupForLsn,
  parseLsn,
  restorePointName,
  snapshotFilestorePath,
} from "../../lib/snapshot/snapshot";
import {
  DEFAULT_MAX_SNAPSHOTS,
  snapshotApiSql,
  autoSnapshotName,
  maxSnapshotsFrom,
  preAiSnapshotName,
  selectSnapshotsToPrune,
  type PruneCandidate,
} from "../../lib/snapshot/runtime";

const ID = "0f1e2d3c-4b5a-4978-8877-665544332211";

describe("restorePointName", () => {
  it("is lw:<label>:<12 hex digits of the id>", () => {
    expect(restorePointName("acme", ID)).toBe("lw:acme:0f1e2d3c4b5a");
    expect(restorePointName("acme", ID.toUpperCase())).toBe("lw:acme:0f1e2d3c4b5a");
  });

  it("stays within 63 bytes, shortening the label and keeping the id part", () => {
    const long = "a".repeat(63);
    const name = restorePointName(long, ID);
    expect(Buffer.byteLength(name)).toBe(MAX_RESTORE_POINT_BYTES);
    expect(name).toBe(`lw:${"a".repeat(47)}:0f1e2d3c4b5a`);
    fc.assert(
      fc.property(fc.string({ minLength: 0, maxLength: 80 }), fc.uuid(), (label, id) => {
        const n = restorePointName(label, id);
        expect(Buffer.byteLength(n)).toBeLessThanOrEqual(MAX_RESTORE_POINT_BYTES);
        expect(n.endsWith(`:${id.replace(/-/g, "").slice(0, 12).toLowerCase()}`)).toBe(true);
      }),
    );
  });

  it("matches the SQL API's naming rule (lw:<left(database, 47)>:<12 hex>)", () => {
    expect(snapshotApiSql()).toContain(
      "'lw:' || left(current_database()::text, 47) || ':' || left(replace(rid::text, '-', ''), 12)",
    );
  });

  it("refuses an id that is not a uuid", () => {
    expect(() => restorePointName("acme", "nope")).toThrow(/not a uuid/);
  });
});

describe("LSNs and the backup set", () => {
  it("parses X/Y and orders LSNs numerically", () => {
    expect(parseLsn("0/0")).toBe(0n);
    expect(parseLsn("1/0")).toBe(1n << 32n);
    expect(parseLsn("0/5A3B2C10")).toBe(0x5a3b2c10n);
    expect(parseLsn("0/FFFFFFFF") < parseLsn("1/0")).toBe(true);
    expect(() => parseLsn("5A3B2C10")).toThrow(/not an LSN/);
  });

  const backup = (label: string, stop: string, t: number, extra: Partial<PgBackRestBackup> = {}) =>
    ({
      label,
      type: "full",
      prior: null,
      timestamp: { start: t - 10, stop: t },
      archive: { start: null, stop: null },
      lsn: { start: "0/1", stop },
      ...extra,
    }) as PgBackRestBackup;
  const info = (backups: PgBackRestBackup[]): PgBackRestStanzaInfo =>
    ({
      name: "s",
      status: { code: 0, message: "ok" },
      cipher: "none",
      db: [],
      backup: backups,
      archive: [],
    }) as PgBackRestStanzaInfo;

  it("picks the newest backup ending at or before the LSN, skipping failed ones", () => {
    const i = info([
      backup("F1", "0/2000000", 100),
      backup("D1", "0/9000000", 300),
      backup("D0", "0/5000000", 200),
      backup("BAD", "0/8000000", 250, { error: true }),
    ]);
    expect(backupForLsn(i, "0/1000000")).toBeNull();
    expect(backupForLsn(i, "0/2000000")).toBe("F1");
    expect(backupForLsn(i, "0/8800000")).toBe("D0");
    expect(backupForLsn(i, "1/0")).toBe("D1");
  });

  it("compares WAL files when an answer has no LSNs (strictly earlier segment only)", () => {
    const noLsn = (label: string, stop: string, t: number) =>
      backup(label, "", t, { lsn: undefined, archive: { start: null, stop } });
    const i = info([noLsn("F1", "000000010000000000000002", 1), noLsn("F2", "000000010000000000000005", 2)]);
    expect(backupForLsn(i, "0/5000100", "000000010000000000000005")).toBe("F1");
    expect(backupForLsn(i, "0/6000100", "000000010000000000000006")).toBe("F2");
    expect(backupForLsn(i, "0/6000100")).toBeNull();
  });
});

describe("paths", () => {
  it("puts copies at <snapshotRoot>/<subdomain>/<id>/filestore", () => {
    expect(snapshotFilestorePath("/srv/snap", "acme", ID)).toBe(`/srv/snap/acme/${ID}/filestore`);
    expect(() => snapshotFilestorePath("/srv/snap", "../x", ID)).toThrow(/invalid/);
    expect(() => snapshotFilestorePath("/srv/snap", "acme", "../../x")).toThrow(/uuid/);
    expect(() => snapshotFilestorePath("snap", "acme", ID)).toThrow(/absolute/);
  });
});

describe("linkCopyTree (the benchmark's baseline: the copy snapshots made before issue 16)", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), "lw-snap-unit-"));
  });
  afterAll(async () => {
    await fsp.rm(dir, { recursive: true, force: true });
  });

  it("links every file of a nested tree (same inodes), sums sizes, keeps symlinks", async () => {
    const src = path.join(dir, "src");
    await fsp.mkdir(path.join(src, "ab"), { recursive: true });
    await fsp.mkdir(path.join(src, "cd", "deep"), { recursive: true });
    await fsp.writeFile(path.join(src, "ab", "ab12"), "hello");
    await fsp.writeFile(path.join(src, "cd", "deep", "cd34"), "world!!");
    await fsp.symlink("ab/ab12", path.join(src, "link"));
    const dst = path.join(dir, "dst", "filestore");
    const r = linkCopyTree(src, dst);
    expect(r).toEqual({ files: 2, bytes: 12, copied: 0 });
    const a = fs.statSync(path.join(src, "ab", "ab12"));
    const b = fs.statSync(path.join(dst, "ab", "ab12"));
    expect(b.ino).toBe(a.ino);
    expect(b.nlink).toBe(2);
    expect(fs.readlinkSync(path.join(dst, "link"))).toBe("ab/ab12");
    expect(fs.readFileSync(path.join(dst, "cd", "deep", "cd34"), "utf8")).toBe("world!!");
  });

  it("gives an empty copy of a missing filestore", () => {
    const dst = path.join(dir, "empty", "filestore");
    expect(linkCopyTree(path.join(dir, "missing"), dst)).toEqual({ files: 0, bytes: 0, copied: 0 });
    expect(fs.readdirSync(dst)).toEqual([]);
  });
});

describe("retention", () => {
  const now = new Date("2026-06-01T12:00:00Z");
  const daysAgo = (d: number) => new Date(now.getTime() - d * 86_400_000);
  const snap = (
    id: string,
    kind: PruneCandidate["kind"],
    ageDays: number,
    state: PruneCandidate["state"] = "ready",
  ) => ({
    id,
    kind,
    state,
    createdAt: daysAgo(ageDays),
  });

  it("keeps the newest maxSnapshots runtime snapshots (auto and pre_ai together)", () => {
    const rows = [
      snap("a1", "auto", 5),
      snap("p1", "pre_ai", 4),
      snap("a2", "auto", 3),
      snap("p2", "pre_ai", 2),
      snap("a3", "auto", 1),
    ];
    expect(selectSnapshotsToPrune(rows, { maxSnapshots: 3, maxAgeDays: 30, now }).sort()).toEqual([
      "a1",
      "p1",
    ]);
    expect(selectSnapshotsToPrune(rows, { maxSnapshots: 0, maxAgeDays: 30, now })).toHaveLength(5);
    expect(selectSnapshotsToPrune(rows, { maxSnapshots: 10, maxAgeDays: 30, now })).toEqual([]);
  });

  it("never selects or counts manual snapshots", () => {
    const rows = [
      snap("m1", "manual", 400),
      snap("m2", "manual", 0),
      snap("a1", "auto", 1),
      snap("a2", "auto", 2),
    ];
    expect(selectSnapshotsToPrune(rows, { maxSnapshots: 2, maxAgeDays: 30, now })).toEqual([]);
    expect(selectSnapshotsToPrune(rows, { maxSnapshots: 1, maxAgeDays: 30, now })).toEqual(["a2"]);
  });

  it("forgets runtime snapshots older than maxAgeDays even under the count", () => {
    const rows = [snap("old", "auto", 31), snap("edge", "pre_ai", 29.9), snap("new", "auto", 0)];
    expect(selectSnapshotsToPrune(rows, { maxSnapshots: 20, maxAgeDays: 30, now })).toEqual(["old"]);
    expect(selectSnapshotsToPrune(rows, { maxSnapshots: 20, maxAgeDays: 7, now }).sort()).toEqual([
      "edge",
      "old",
    ]);
  });

  it("removes crash leftovers: stale pending and half-forgotten rows; young pending ones are left alone", () => {
    const rows = [
      { ...snap("young", "auto", 0, "pending"), createdAt: new Date(now.getTime() - 60_000) },
      { ...snap("stale", "auto", 0, "pending"), createdAt: new Date(now.getTime() - 3_600_000) },
      snap("half", "pre_ai", 1, "forgetting"),
      snap("ok", "auto", 1),
    ];
    expect(selectSnapshotsToPrune(rows, { maxSnapshots: 1, maxAgeDays: 30, now }).sort()).toEqual([
      "half",
      "stale",
    ]);
  });

  it("always keeps exactly min(count, maxSnapshots) young ready runtime snapshots", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom("auto", "pre_ai", "manual"), fc.integer({ min: 0, max: 60 })), {
          maxLength: 40,
        }),
        fc.integer({ min: 0, max: 25 }),
        (spec, max) => {
          const rows = spec.map(([kind, age], i) => snap(`s${i}`, kind as PruneCandidate["kind"], age));
          const pruned = new Set(selectSnapshotsToPrune(rows, { maxSnapshots: max, maxAgeDays: 30, now }));
          const young = rows.filter(
            (r) => r.kind !== "manual" && r.createdAt.getTime() >= daysAgo(30).getTime(),
          );
          const kept = young.filter((r) => !pruned.has(r.id));
          expect(kept.length).toBe(Math.min(young.length, max));
          expect(rows.filter((r) => r.kind === "manual").some((r) => pruned.has(r.id))).toBe(false);
        },
      ),
    );
  });

  it("reads maxSnapshots from the registry limits", () => {
    expect(maxSnapshotsFrom({ maxSnapshots: 7, maxUsers: 3 })).toBe(7);
    expect(maxSnapshotsFrom({ maxSnapshots: 0 })).toBe(0);
    expect(maxSnapshotsFrom({})).toBe(DEFAULT_MAX_SNAPSHOTS);
    expect(maxSnapshotsFrom(null)).toBe(DEFAULT_MAX_SNAPSHOTS);
  });

  it("names runtime snapshots by time", () => {
    expect(autoSnapshotName(new Date("2026-06-01T12:34:56.789Z"))).toBe("auto-20260601t123456z");
    expect(preAiSnapshotName(new Date("2026-06-01T12:34:56Z"), null)).toBe("pre-ai-20260601t123456z");
    expect(preAiSnapshotName(new Date("2026-06-01T12:34:56Z"), "  delete\n drafts ")).toBe(
      "pre-ai-20260601t123456z: delete drafts",
    );
  });
});

describe("Snapshot provider inputs", () => {
  const inputs = {
    adminDsn: "postgres://postgres:x@127.0.0.1:5432/postgres",
    subdomain: "acme",
    database: "acme",
    name: "before-upgrade",
    filestoreRoot: "/srv/fs",
    snapshotRoot: "/srv/snap",
  };

  it("accepts valid inputs and names the bad ones", () => {
    expect(checkSnapshotInputs(inputs)).toEqual([]);
    const bad = checkSnapshotInputs({
      ...inputs,
      name: "Before_Upgrade",
      database: "pg_x",
      snapshotRoot: "rel",
    });
    expect(bad.map((f) => f.property).sort()).toEqual(["database", "name", "snapshotRoot"]);
    expect(checkSnapshotInputs({ ...inputs, name: undefined }).map((f) => f.property)).toEqual(["name"]);
  });

  it("replaces on subdomain or name; anything else is an update without effect", () => {
    expect(diffSnapshot(inputs, { ...inputs })).toEqual({
      changes: false,
      replaces: [],
      changed: [],
      deleteBeforeReplace: false,
    });
    expect(diffSnapshot(inputs, { ...inputs, name: "other" }).replaces).toEqual(["name"]);
    expect(diffSnapshot(inputs, { ...inputs, subdomain: "b" }).replaces).toEqual(["subdomain"]);
    const d = diffSnapshot(inputs, { ...inputs, adminDsn: "postgres://y", snapshotRoot: "/elsewhere" });
    expect(d).toMatchObject({ changes: true, replaces: [], changed: ["adminDsn", "snapshotRoot"] });
  });
});
