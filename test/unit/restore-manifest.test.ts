/**
 * Pure parts of the selective scratch restore (lib/restore/selective.ts): pgBackRest's
 * backup.manifest, the plan of what to restore, chunking, the recovery settings, the method switch.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { scratchMethodSetting } from "../../lib/restore/scratch";
import {
  SelectiveRestoreUnsupported,
  chunkFiles,
  parseBackupManifest,
  parseIni,
  planSelectiveRestore,
  recoveryAutoConf,
} from "../../lib/restore/selective";

const FULL = "20261126-011806F";
const INCR = "20261126-011806F_20261126-020000I";

/** A manifest shaped like pgBackRest 2.45's (zstd, incremental on top of a full backup). */
function manifest(extra: { sections?: string; files?: string[]; option?: string } = {}): string {
  const file = (name: string, size: number, more = ""): string =>
    `pg_data/${name}={"checksum":"${"a".repeat(40)}"${more},"repo-size":9,"size":${size},"timestamp":1795655884}`;
  return [
    "[backrest]",
    "backrest-format=5",
    'backrest-version="2.45"',
    "",
    "[backup]",
    'backup-label="' + INCR + '"',
    'backup-prior="' + FULL + '"',
    'backup-type="incr"',
    "",
    "[backup:db]",
    "db-id=1",
    'db-version="15"',
    "",
    "[backup:option]",
    "option-compress=true",
    extra.option ?? 'option-compress-type="zst"',
    "",
    "[backup:target]",
    'pg_data={"path":"/srv/pg/data","type":"path"}',
    "",
    "[db]",
    'acme={"db-id":16390,"db-last-system-id":16383}',
    'globex={"db-id":16400,"db-last-system-id":16383}',
    'postgres={"db-id":5,"db-last-system-id":16383}',
    'template0={"db-id":4,"db-last-system-id":16383}',
    'template1={"db-id":1,"db-last-system-id":16383}',
    ...(extra.sections ? ["", extra.sections] : []),
    "",
    "[target:file]",
    file("PG_VERSION", 3, `,"reference":"${FULL}"`),
    file("backup_label", 258),
    file("base/1/1259", 8192, `,"reference":"${FULL}"`),
    file("base/1/PG_VERSION", 3, `,"reference":"${FULL}"`),
    file("base/16390/1259", 16384),
    file("base/16390/16500", 73728),
    `pg_data/base/16390/16501={"repo-size":9,"size":0,"timestamp":1795655884}`,
    file("base/16390/PG_VERSION", 3),
    file("base/16400/1259", 16384),
    file("base/16400/PG_VERSION", 3),
    file("base/5/1259", 8192, `,"reference":"${FULL}"`),
    file("base/4/1259", 8192, `,"reference":"${FULL}"`),
    file("global/pg_control", 8192),
    file("global/1262", 8192, `,"mode":"0640"`),
    file("pg_xact/0000", 8192),
    file("postgresql.auto.conf", 88),
    file("standby.signal", 0),
    ...(extra.files ?? []),
    "",
    "[target:file:default]",
    'group="postgres"',
    'mode="0600"',
    'user="postgres"',
    "",
    "[target:path]",
    "pg_data={}",
    "pg_data/base={}",
    "pg_data/base/1={}",
    "pg_data/base/16390={}",
    "pg_data/base/16400={}",
    "pg_data/base/16400/sub={}",
    "pg_data/base/4={}",
    "pg_data/base/5={}",
    "pg_data/global={}",
    'pg_data/pg_wal={"mode":"0750"}',
    "pg_data/pg_wal/archive_status={}",
    "pg_data/pg_xact={}",
    "",
    "[target:path:default]",
    'group="postgres"',
    'mode="0700"',
    'user="postgres"',
    "",
    "[backrest]",
    'backrest-checksum="48889d03cb506f18fac6b01e72f4a7e7a095fc05"',
    "",
  ].join("\n");
}

describe("backup.manifest", () => {
  it("parses pgBackRest's INI: sections (a repeated one merged), key=value split at the first =", () => {
    const ini = parseIni('[a]\nk=v=w\r\n\n[b]\nx={"y":1}\n[a]\nz=1\n');
    expect(Object.fromEntries(ini.get("a") ?? [])).toEqual({ k: "v=w", z: "1" });
    expect(ini.get("b")?.get("x")).toBe('{"y":1}');
    expect(() => parseIni("k=v\n")).toThrow(SelectiveRestoreUnsupported);
  });

  it("reads label, databases, files with their source backup and mode, directories, compression", () => {
    const m = parseBackupManifest(manifest());
    expect(m).toMatchObject({ label: INCR, type: "incr", compressExt: "zst", unsupported: [] });
    expect(m.databases).toContainEqual({ name: "acme", oid: 16390 });
    expect(m.databases.map((d) => d.oid).sort((a, b) => a - b)).toEqual([1, 4, 5, 16390, 16400]);
    const byName = Object.fromEntries(m.files.map((f) => [f.name, f]));
    expect(byName["PG_VERSION"]).toMatchObject({ label: FULL, size: 3, mode: 0o600 });
    expect(byName["base/16390/1259"]).toMatchObject({ label: INCR, size: 16384, checksum: "a".repeat(40) });
    expect(byName["base/16390/16501"]).toMatchObject({ size: 0, checksum: undefined });
    expect(byName["global/1262"].mode).toBe(0o640);
    expect(m.paths).toContainEqual({ name: "", mode: 0o700 });
    expect(m.paths).toContainEqual({ name: "pg_wal", mode: 0o750 });
    expect(parseBackupManifest(manifest({ option: 'option-compress-type="none"' })).compressExt).toBe("");
  });

  it("refuses what is not a manifest (an encrypted one is ciphertext) and unsafe paths", () => {
    expect(() => parseBackupManifest("Salted__\u0001\u0002garbage")).toThrow(SelectiveRestoreUnsupported);
    expect(() => parseBackupManifest(manifest().replace("backrest-format=5", "backrest-format=4"))).toThrow(
      /format 4/,
    );
    expect(() =>
      parseBackupManifest(
        manifest({ files: ['pg_data/base/../../etc/x={"size":1,"checksum":"' + "b".repeat(40) + '"}'] }),
      ),
    ).toThrow(/unsafe path/);
    expect(() => parseBackupManifest(manifest().replace(/^pg_data\/global\/pg_control=.*$/m, ""))).toThrow(
      /pg_control/,
    );
  });

  it("lists what the selective path cannot restore: other compression, links, tablespaces, bundles, block incremental", () => {
    const unsupported = (m: string) => parseBackupManifest(m).unsupported.join("; ");
    expect(unsupported(manifest({ option: 'option-compress-type="lz4"' }))).toMatch(/compression "lz4"/);
    expect(
      unsupported(manifest({ sections: '[target:link]\npg_data/pg_wal={"destination":"/wal"}' })),
    ).toMatch(/symlinks/);
    expect(
      unsupported(
        manifest().replace(
          "[backup:target]\n",
          '[backup:target]\npg_tblspc/16385={"path":"/ts","tablespace-id":"16385","type":"link"}\n',
        ),
      ),
    ).toMatch(/tablespaces/);
    expect(
      unsupported(
        manifest({ files: ['pg_data/base/16390/9={"bundle-id":1,"bundle-offset":0,"size":8192}'] }),
      ),
    ).toMatch(/bundled/);
    expect(
      unsupported(manifest({ files: ['pg_data/base/16390/9={"bi":1,"bim":8192,"size":8192}'] })),
    ).toMatch(/block-incremental/);
    expect(() =>
      planSelectiveRestore(parseBackupManifest(manifest({ option: 'option-compress-type="gz"' })), "acme"),
    ).toThrow(SelectiveRestoreUnsupported);
  });
});

describe("the plan", () => {
  const m = parseBackupManifest(manifest());

  it("restores everything outside base/, the system databases and the tenant; none of the others' files", () => {
    const plan = planSelectiveRestore(m, "acme");
    const names = plan.files.map((f) => f.name).sort();
    expect(names).toEqual(
      [
        "PG_VERSION",
        "backup_label",
        "base/1/1259",
        "base/1/PG_VERSION",
        "base/16390/1259",
        "base/16390/16500",
        "base/16390/16501",
        "base/16390/PG_VERSION",
        "base/4/1259",
        "base/5/1259",
        "global/1262",
        "global/pg_control",
        "pg_xact/0000",
        "postgresql.auto.conf",
      ].sort(),
    );
    expect(names).not.toContain("standby.signal"); // the restore writes recovery.signal itself
    expect(plan).toMatchObject({
      databaseOid: 16390,
      includedOids: [1, 4, 5, 16390],
      excludedOids: [16400],
      skippedFiles: 2,
      emptyFiles: 1,
    });
    expect(plan.bytes).toBe(plan.files.reduce((n, f) => n + f.size, 0));
  });

  it("keeps the left-out databases' directories, empty, parents first", () => {
    const plan = planSelectiveRestore(m, "acme");
    const dirs = plan.paths.map((p) => p.name);
    expect(dirs[0]).toBe("");
    expect(dirs).toContain("base/16400");
    expect(dirs).not.toContain("base/16400/sub");
    for (const [i, d] of dirs.entries()) {
      if (d.includes("/")) expect(dirs.slice(0, i)).toContain(d.slice(0, d.lastIndexOf("/")));
    }
    const without = planSelectiveRestore(m, "acme", { emptyExcludedDirectories: false }).paths.map(
      (p) => p.name,
    );
    expect(without).not.toContain("base/16400");
    expect(without).toContain("base/16390");
  });

  it("a tenant the backup does not have (created after it): only the system databases, it comes from WAL", () => {
    const plan = planSelectiveRestore(m, "initech");
    expect(plan.databaseOid).toBeUndefined();
    expect(plan.includedOids).toEqual([1, 4, 5]);
    expect(plan.excludedOids).toEqual([16390, 16400]);
    expect(plan.files.some((f) => f.name.startsWith("base/16390/"))).toBe(false);
  });

  it("a tenant the backup lists under a former name (the spare it was claimed from): that database's files", () => {
    const plan = planSelectiveRestore(m, "initech", { formerNames: ["globex"] });
    expect(plan.databaseOid).toBe(16400);
    expect(plan.includedOids).toEqual([1, 4, 5, 16400]);
    expect(plan.excludedOids).toEqual([16390]);
    expect(plan.files.map((f) => f.name)).toContain("base/16400/1259");
  });
});

describe("chunks of files to decompress", () => {
  it("spreads files over about `parts` chunks of similar size, each file once, at most maxPerChunk per chunk", () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat({ max: 1 << 20 }), { maxLength: 400 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 50 }),
        (sizes, parts, max) => {
          const files = sizes.map((size, i) => ({ size, i }));
          const chunks = chunkFiles(files, parts, max);
          expect(
            chunks
              .flat()
              .map((f) => f.i)
              .sort((a, b) => a - b),
          ).toEqual(files.map((f) => f.i));
          for (const c of chunks) expect(c.length).toBeGreaterThan(0);
          for (const c of chunks) expect(c.length).toBeLessThanOrEqual(max);
          if (files.length >= parts) expect(chunks.length).toBeGreaterThanOrEqual(parts);
        },
      ),
    );
    const sizes = chunkFiles(
      [9, 8, 7, 6, 5, 4, 3, 2, 1].map((size) => ({ size })),
      2,
    ).map((c) => c.reduce((n, f) => n + f.size, 0));
    expect(Math.abs(sizes[0] - sizes[1])).toBeLessThanOrEqual(1);
  });
});

describe("recovery settings", () => {
  const when = new Date("2026-11-26T10:00:00Z");
  const existing =
    "# Do not edit this file manually!\nwork_mem = '8MB'\nrestore_command = 'old'\n  recovery_target_time = '2026-01-01'\narchive_mode = on\n";

  it("comments out earlier recovery settings and appends the target, promote and archive_mode off", () => {
    const conf = recoveryAutoConf(
      existing,
      'pgbackrest archive-get %f "%p"',
      {
        type: "lsn",
        value: "0/5A3B2C10",
        exclusive: true,
      },
      when,
    );
    expect(conf).toMatch(/^work_mem = '8MB'$/m);
    expect(conf).toMatch(/^# Removed by Loomworks selective restore on .* # restore_command = 'old'$/m);
    expect(conf).toMatch(/^# Removed by .* # {3}recovery_target_time = '2026-01-01'$/m);
    expect(conf).toMatch(/^# Removed by .* # archive_mode = on$/m);
    const active = conf.split("\n").filter((l) => /^[a-z_]+ = /.test(l));
    expect(active).toEqual([
      "work_mem = '8MB'",
      `restore_command = 'pgbackrest archive-get %f "%p"'`,
      "recovery_target_lsn = '0/5A3B2C10'",
      "recovery_target_inclusive = 'false'",
      "recovery_target_action = 'promote'",
      "archive_mode = 'off'",
    ]);
  });

  it("time targets; inclusive by default; refuses quotes in values; works without an earlier file", () => {
    const conf = recoveryAutoConf(
      "",
      "cmd",
      { type: "time", value: "2026-11-26 10:00:00+00", exclusive: false },
      when,
    );
    expect(conf).toMatch(/^recovery_target_time = '2026-11-26 10:00:00\+00'$/m);
    expect(conf).not.toMatch(/recovery_target_inclusive/);
    expect(() => recoveryAutoConf("", "cmd", { type: "time", value: "x' y", exclusive: false })).toThrow(
      /unsafe/,
    );
  });
});

describe("method switch", () => {
  it("LOOMWORKS_RESTORE_METHOD: auto by default, pgbackrest or selective, anything else refused", () => {
    expect(scratchMethodSetting({})).toBe("auto");
    expect(scratchMethodSetting({ LOOMWORKS_RESTORE_METHOD: "auto" })).toBe("auto");
    expect(scratchMethodSetting({ LOOMWORKS_RESTORE_METHOD: "pgbackrest" })).toBe("pgbackrest");
    expect(scratchMethodSetting({ LOOMWORKS_RESTORE_METHOD: " Selective " })).toBe("selective");
    expect(() => scratchMethodSetting({ LOOMWORKS_RESTORE_METHOD: "zfs" })).toThrow(
      /auto, selective or pgbackrest/,
    );
  });
});
