/**
 * The selective scratch restore (lib/restore/selective.ts) against the real integration cluster:
 * real PostgreSQL 15 and pgBackRest 2.45 (zstd), no mocks.
 *
 * - Same result as `pgbackrest restore --db-include` on the same target (md5 of every table, and
 *   pg_amcheck), from a fraction of the files; a tenant created after the backup; other tenants
 *   changing meanwhile (VACUUM FULL of a mapped catalog, DROP, TRUNCATE, CREATE DATABASE with
 *   WAL_LOG and FILE_COPY).
 * - What PostgreSQL needs of the left-out databases: their directories, empty.
 * - Fallback to pgBackRest; the method switch.
 * The cost with more tenants in the cluster, both methods, is measured by bench/restore.ts.
 */
import { randomBytes } from "node:crypto";
import { existsSync, promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Client } from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { localClusterSpec, runBackup, type LocalClusterSpec } from "../../lib/pg/cluster";
// The test's own sessions are plain ones (a tenant's, or ad-hoc admin SQL): the platform's pinned
// search_path (lib/pg/client.ts withClient) is for the code under test.
import { quoteIdent, withPlainClient as withClient } from "../../lib/pg/client";
import { clusterPaths } from "../../lib/pg/paths";
import { waitForArchive } from "../../lib/restore";
import { newRestoreId, scratchDirectory } from "../../lib/restore/names";
import {
  amcheckScratch,
  configureScratch,
  freePort,
  pgbackrestRestore,
  plainRepositoryPath,
  prepareScratch,
  removeScratch,
  restoreSelectively,
  scratchClientConfig,
  scratchLayout,
  startScratch,
  type ScratchInstance,
  type ScratchMethod,
  type ScratchRestoreOptions,
  type ScratchRestoreResult,
} from "../../lib/restore/scratch";
import { pgbackrestTargetFor } from "../../lib/restore/target";
import { type TenantSpec } from "../../lib/tenant/provision";
import { dsnWithDatabase } from "../../lib/pg/dsn";
import { useFixtureTenants } from "../helpers/tenants";

const tenants = useFixtureTenants("sel", { setUpTimeoutMs: 180_000, tearDownTimeoutMs: 180_000 });
const pg = tenants.pg;
const ADMIN = pg.adminDsn;
const CLUSTER: LocalClusterSpec = localClusterSpec(pg);
const PGBR = pgbackrestTargetFor(pg.stateDir, pg.stanza);
const FIXTURE_TEMPLATE = tenants.template;
const run = randomBytes(3).toString("hex");
const restoreRoot = path.join(pg.stateDir, "restore");

const newTenant = (): Promise<TenantSpec> => tenants.create("s");
/** Deletes the tenants made so far, keeping later backups small. */
const deleteCreatedTenants = tenants.deleteCreated;

const admin = <T>(fn: (c: Client) => Promise<T>): Promise<T> => withClient(ADMIN, fn);
const inDb = <T>(db: string, fn: (c: Client) => Promise<T>): Promise<T> =>
  withClient(dsnWithDatabase(ADMIN, db), fn);

/** md5 of every table's rows in a stable order, in one round trip. */
async function digests(c: Client): Promise<Record<string, string>> {
  const r = await c.query<{ t: string; h: string }>(
    `SELECT format('%I.%I', schemaname, tablename) AS t,
            (xpath('/row/h/text()', query_to_xml(format(
               'SELECT md5(coalesce(string_agg(x::text, ''|'' ORDER BY x::text), '''')) AS h FROM %I.%I x',
               schemaname, tablename), false, true, '')))[1]::text AS h
     FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1`,
  );
  return Object.fromEntries(r.rows.map((x) => [x.t, x.h]));
}

async function lsnNow(): Promise<string> {
  return admin(
    async (c) => (await c.query<{ l: string }>("SELECT pg_current_wal_lsn()::text AS l")).rows[0].l,
  );
}

async function oidOf(db: string): Promise<number> {
  return admin(
    async (c) =>
      (await c.query<{ o: number }>("SELECT oid::int AS o FROM pg_database WHERE datname = $1", [db])).rows[0]
        .o,
  );
}

/** Every regular file under `dir` (relative paths). */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of await fs.readdir(d, { withFileTypes: true })) {
      const full = path.join(d, e.name);
      if (e.isDirectory()) await walk(full);
      else out.push(path.relative(dir, full));
    }
  };
  await walk(dir);
  return out;
}

interface ScratchOutcome {
  result: ScratchRestoreResult;
  digests: Record<string, string>;
  amcheck: { ok: boolean; output: string };
  restoreMs: number;
  recoveryMs: number;
  dataFiles: number;
  instance: ScratchInstance;
}

/**
 * A scratch instance restored by `method` and recovered to the target; `inspect` runs while it is
 * up; removed afterwards.
 */
async function scratchRestore(
  database: string,
  o: Omit<ScratchRestoreOptions, "database">,
  restore: (s: ScratchInstance) => Promise<ScratchRestoreResult> = (s) =>
    pgbackrestRestore(s, PGBR, { ...o, database }),
  inspect?: (s: ScratchInstance) => Promise<void>,
): Promise<ScratchOutcome> {
  const s = scratchLayout(scratchDirectory(pg.stateDir, newRestoreId()), await freePort());
  await prepareScratch(s);
  try {
    const t0 = Date.now();
    const result = await restore(s);
    const restoreMs = Date.now() - t0;
    const dataFiles = (await filesUnder(s.dataDir)).length;
    await configureScratch(s, PGBR);
    const t1 = Date.now();
    await startScratch(s, 10 * 60_000);
    const recoveryMs = Date.now() - t1;
    const d = await withClient(scratchClientConfig(s, database), digests);
    const amcheck = await amcheckScratch(s, database, false, 2);
    if (inspect) await inspect(s);
    return { result, digests: d, amcheck, restoreMs, recoveryMs, dataFiles, instance: s };
  } finally {
    await removeScratch(s);
  }
}

afterAll(async () => {
  await deleteCreatedTenants();
  expect(existsSync(restoreRoot) ? await fs.readdir(restoreRoot) : []).toEqual([]);
}, 180_000);

describe("selective scratch restore against pgBackRest --db-include, same target", () => {
  afterAll(async () => {
    await deleteCreatedTenants();
    await admin((cl) => cl.query(`DROP DATABASE IF EXISTS ${quoteIdent(fileCopy)}`));
  }, 180_000);

  let a: TenantSpec;
  let b: TenantSpec;
  let c: TenantSpec;
  let templateOid: number;
  const fileCopy = `loomworks_sel_fc_${run}`;
  let label: string;
  let target: Omit<ScratchRestoreOptions, "database">;
  let atTarget: Record<string, string>;
  let cAtTarget: Record<string, string>;
  const outcomes: Partial<Record<ScratchMethod, ScratchOutcome>> = {};

  beforeAll(async () => {
    [a, b] = [await newTenant(), await newTenant()];
    await inDb(a.database, async (cl) => {
      await cl.query("CREATE TABLE x_probe (id int PRIMARY KEY, v text)");
      await cl.query("INSERT INTO x_probe SELECT g, md5(g::text) FROM generate_series(1, 2000) g");
    });
    // A and B are in this backup (their files in its directory, the rest referenced from earlier sets).
    label = (await runBackup(CLUSTER, "incr")).label;

    // After the backup: the tenant changes; the neighbour rewrites mapped catalogs (relmap update),
    // drops, truncates and creates; a third tenant is created (not in the backup: WAL only).
    await inDb(a.database, async (cl) => {
      await cl.query("UPDATE res_partner SET name = 'at target', email = 'target@example.com'");
      await cl.query("DELETE FROM x_probe WHERE id % 3 = 0");
      await cl.query("INSERT INTO x_probe SELECT g, 'new ' || g FROM generate_series(5001, 7000) g");
      await cl.query("CREATE TABLE x_after_backup AS SELECT g AS id FROM generate_series(1, 500) g");
      await cl.query("DROP TABLE mail_message CASCADE");
    });
    await inDb(b.database, async (cl) => {
      await cl.query("VACUUM FULL pg_class");
      await cl.query("VACUUM FULL res_partner");
      await cl.query("TRUNCATE ir_attachment");
      await cl.query("CREATE TABLE nb AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 5000) g");
      await cl.query("DROP TABLE sale_order CASCADE");
    });
    templateOid = await oidOf(FIXTURE_TEMPLATE);
    await admin((cl) =>
      cl.query(
        `CREATE DATABASE ${quoteIdent(fileCopy)} TEMPLATE ${quoteIdent(FIXTURE_TEMPLATE)} STRATEGY FILE_COPY`,
      ),
    );
    c = await newTenant();
    await inDb(c.database, (cl) => cl.query("UPDATE res_partner SET name = 'c at target' WHERE id = 1"));
    atTarget = await inDb(a.database, digests);
    cAtTarget = await inDb(c.database, digests);
    const lsn = await lsnNow();
    target = { backupLabel: label, type: "lsn", value: lsn, exclusive: false };
    // Later: not in the restored state.
    await inDb(a.database, (cl) => cl.query("UPDATE res_partner SET name = 'after the target'"));
    await inDb(c.database, (cl) => cl.query("UPDATE res_partner SET name = 'after the target'"));
    await admin((cl) => waitForArchive(cl, 60_000));

    for (const method of ["pgbackrest", "selective"] as const) {
      outcomes[method] = await scratchRestore(a.database, { ...target, method });
    }
  }, 600_000);

  it("restores the tenant exactly as pgBackRest does: md5 of every table, pg_amcheck clean", () => {
    const pgbr = outcomes.pgbackrest as ScratchOutcome;
    const sel = outcomes.selective as ScratchOutcome;
    expect(pgbr.result.method).toBe("pgbackrest");
    expect(sel.result.method).toBe("selective");
    expect(sel.result.fallbackReason).toBeUndefined();
    expect(Object.keys(atTarget).length).toBeGreaterThan(400);
    expect(pgbr.digests).toEqual(atTarget);
    expect(sel.digests).toEqual(pgbr.digests);
    expect(pgbr.amcheck.ok, pgbr.amcheck.output).toBe(true);
    expect(sel.amcheck.ok, sel.amcheck.output).toBe(true);
    expect(sel.result.selection).toEqual(pgbr.result.selection);
    expect(sel.result.selection).toEqual([`--db-include=${a.database}`]);
  });

  it("reads the set's own directory and the ones it references, and writes none of the other tenants' files", async () => {
    const stats = outcomes.selective?.result.selective;
    expect(stats).toBeDefined();
    if (!stats) return;
    expect(stats.labels).toContain(label);
    expect(stats.labels.length).toBeGreaterThan(1); // system files unchanged since the full backup
    expect(stats.verify).toBe("checksum");
    expect(stats.databaseOid).toBe(await oidOf(a.database));
    expect(stats.excludedOids).toContain(await oidOf(b.database));
    expect(stats.includedOids.filter((o) => o >= 16384)).toEqual([stats.databaseOid]);
    expect(stats.skippedFiles).toBeGreaterThan(1000);
    // pgBackRest writes the other tenants' files (zeroed); the selective restore does not.
    const pgbrFiles = outcomes.pgbackrest?.dataFiles ?? 0;
    const selFiles = outcomes.selective?.dataFiles ?? 0;
    expect(pgbrFiles - selFiles).toBeGreaterThanOrEqual(stats.skippedFiles);
  });

  it("restores a tenant created after the backup from WAL alone", async () => {
    const o = await scratchRestore(c.database, { ...target, method: "selective" });
    expect(o.result.method).toBe("selective");
    expect(o.result.selective?.databaseOid).toBeUndefined();
    expect(o.result.selection).toEqual(
      expect.arrayContaining([`--db-exclude=${a.database}`, `--db-exclude=${b.database}`]),
    );
    expect(o.digests).toEqual(cAtTarget);
    expect(o.amcheck.ok, o.amcheck.output).toBe(true);
  });

  it("keeps the left-out databases' directories, empty: FILE_COPY from one of them is replayed", async () => {
    // After the backup, a database was created with STRATEGY FILE_COPY from the (left-out) fixture
    // template: redo copies the template's directory. Without it, recovery stops.
    const missing = scratchRestore(a.database, { ...target, method: "selective" }, (s) =>
      restoreSelectively(
        s,
        PGBR,
        { ...target, database: a.database },
        { emptyExcludedDirectories: false },
      ).then((stats) => ({ selection: [], method: "selective" as const, selective: stats })),
    );
    const error = await missing.then(
      () => undefined,
      (err: Error) => err,
    );
    // Whether PostgreSQL stops here depends on what else redo touched first (seen: PANIC "missing
    // directory"; not in every run), so it is printed, not asserted; the default path below is.
    const why = error?.message.split("\n").find((l) => l.includes(`base/${templateOid}`));
    console.log(
      `[selective] without the left-out databases' directories: ${error ? (why ?? error.message) : "recovered anyway"}`,
    );
    // With them (the default): the neighbour's directory holds only what redo wrote into it.
    await scratchRestore(a.database, { ...target, method: "selective" }, undefined, async (s) => {
      const bDir = path.join(s.dataDir, "base", String(await oidOf(b.database)));
      const files = await fs.readdir(bDir);
      console.log(`[selective] base/<neighbour> after recovery: ${files.length} files`);
      expect(files).not.toContain("PG_VERSION");
      // Nothing of the left-out template was copied from the backup (redo may still write relation files).
      expect(await fs.readdir(path.join(s.dataDir, "base", String(templateOid)))).not.toContain("PG_VERSION");
    });
  });

  it("falls back to pgBackRest when the selective copy fails, and leaves no partial directory behind", async () => {
    const before = process.env.LOOMWORKS_ZSTD;
    process.env.LOOMWORKS_ZSTD = "/bin/false";
    try {
      const o = await scratchRestore(a.database, { ...target, method: "auto" });
      expect(o.result.method).toBe("pgbackrest");
      expect(o.result.fallbackReason).toMatch(/zstd/);
      expect(o.digests).toEqual(atTarget);
    } finally {
      if (before === undefined) delete process.env.LOOMWORKS_ZSTD;
      else process.env.LOOMWORKS_ZSTD = before;
    }
    await expect(
      scratchRestore(a.database, { ...target, backupLabel: "20000101-000000F", method: "selective" }),
    ).rejects.toThrow(/cannot read its manifest/);
  });

  it("does not read an encrypted repository (files are ciphertext): pgBackRest's repo1-cipher-type decides", async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "loomworks-selective-conf-"));
    try {
      await fs.chmod(dir, 0o755);
      const conf = path.join(dir, "pgbackrest.conf");
      const original = await fs.readFile(PGBR.config, "utf8");
      await fs.writeFile(
        conf,
        original.replace(
          "[global]\n",
          "[global]\nrepo1-cipher-type=aes-256-cbc\nrepo1-cipher-pass=not-used-here\n",
        ),
        { mode: 0o644 },
      );
      const encrypted = { ...PGBR, config: conf };
      await expect(plainRepositoryPath(encrypted)).rejects.toThrow(
        /encrypted \(repo1-cipher-type=aes-256-cbc\)/,
      );
      expect(await plainRepositoryPath(PGBR)).toBe(clusterPaths(pg.stateDir).repoPath);
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
