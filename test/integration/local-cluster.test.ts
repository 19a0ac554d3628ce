import { randomBytes } from "node:crypto";
import { existsSync, promises as fs } from "node:fs";
import * as path from "node:path";
import { afterAll, describe, expect, inject, it } from "vitest";
// The test's own sessions are plain ones (a tenant's, or ad-hoc admin SQL): the platform's pinned
// search_path (lib/pg/client.ts withClient) is for the code under test.
import { adminDsn, quoteIdent, quoteLiteral, withPlainClient as withClient } from "../../lib/pg/client";
import {
  clusterStatus,
  destroyCluster,
  localAdminDsn,
  localClusterLayout,
  localClusterSpec,
  runBackup,
  stopCluster,
  type LocalClusterSpec,
} from "../../lib/pg/cluster";
import { ensureCluster } from "../../lib/pg/ensureCluster";
import { stanzaInfo } from "../../lib/pg/pgbackrest";
import { findFreePort, makeStateDir } from "../../testkit/cluster";

const pg = inject("pg");
const spec: LocalClusterSpec = localClusterSpec(pg);
const { paths, pgbackrest } = localClusterLayout(spec);

const sql = <T extends Record<string, unknown>>(text: string, dsn = pg.adminDsn): Promise<T[]> =>
  withClient(dsn, async (c) => (await c.query<T>(text)).rows);

async function setting(name: string): Promise<string> {
  return (await sql<{ v: string }>(`SELECT current_setting(${quoteLiteral(name)}) AS v`))[0].v;
}

async function systemIdentifier(): Promise<string> {
  return (await sql<{ id: string }>("SELECT system_identifier::text AS id FROM pg_control_system()"))[0].id;
}

async function fullBackups(): Promise<number> {
  return (await stanzaInfo(pgbackrest)).backup.filter((b) => b.type === "full").length;
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
}

describe("local cluster (shared integration cluster)", () => {
  it("runs PostgreSQL 15 with data checksums, replica WAL and pgBackRest archiving", async () => {
    expect(await setting("server_version_num")).toMatch(/^15/);
    expect(await setting("data_checksums")).toBe("on");
    expect(await setting("wal_level")).toBe("replica");
    expect(await setting("archive_mode")).toBe("on");
    const archiveCommand = await setting("archive_command");
    expect(archiveCommand).toContain("pgbackrest");
    expect(archiveCommand).toContain(`--config=${paths.pgbackrestConf}`);
    expect(archiveCommand).toContain(`--stanza=${pg.stanza}`);
    expect(archiveCommand).toMatch(/archive-push %p$/);
    expect(await setting("archive_timeout")).toBe(`${pg.archiveTimeoutSeconds}s`);
    expect(await setting("unix_socket_directories")).toBe(paths.socketDir);
    expect(await setting("log_directory")).toBe(paths.logDir);
    expect(await setting("password_encryption")).toBe("scram-sha-256");
  });

  it("archives a switched WAL segment to the repository (zstd)", async () => {
    await sql("SELECT txid_current()"); // make sure the current segment is not empty
    const [{ wal }] = await sql<{ wal: string }>("SELECT pg_walfile_name(pg_switch_wal()) AS wal");
    const deadline = Date.now() + 30_000;
    let last = "";
    while (Date.now() < deadline) {
      const [row] = await sql<{ last: string | null }>(
        "SELECT last_archived_wal AS last FROM pg_stat_archiver",
      );
      last = row.last ?? "";
      if (last >= wal) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(last >= wal, `last archived ${last}, waiting for ${wal}`).toBe(true);
    const archived = await filesUnder(path.join(paths.repoPath, "archive", pg.stanza));
    expect(archived.some((f) => path.basename(f).startsWith(`${wal}-`) && f.endsWith(".zst"))).toBe(true);
  });

  it("pgbackrest info shows the stanza with at least one full backup", async () => {
    const info = await stanzaInfo(pgbackrest);
    expect(info.status.code).toBe(0);
    expect(info.cipher).toBe("none");
    expect(info.backup.some((b) => b.type === "full")).toBe(true);
    expect(info.archive.length).toBeGreaterThan(0);
  });

  it("clusterStatus reports a running, backed-up cluster", async () => {
    const status = await clusterStatus(spec);
    expect(status).toMatchObject({ initialized: true, running: true, port: pg.port, stanzaOk: true });
    expect(status.backups).toBeGreaterThanOrEqual(1);
  });

  it("runBackup takes an incremental backup and returns its label", async () => {
    const { label } = await runBackup(spec, "incr");
    expect(label).toMatch(/^\d{8}-\d{6}F_\d{8}-\d{6}I$/);
    expect((await stanzaInfo(pgbackrest)).backup.map((b) => b.label)).toContain(label);
  });

  it("quoteIdent, quoteLiteral and adminDsn round-trip through the server", async () => {
    const weird = `we"ird 'na\\me' ü`;
    const [row] = await sql<{ v: string }>(`SELECT ${quoteLiteral(weird)}::text AS v`);
    expect(row.v).toBe(weird);
    await withClient(pg.adminDsn, async (c) => {
      await c.query(`CREATE TEMP TABLE ${quoteIdent(weird)} (${quoteIdent("Col")} int)`);
      const r = await c.query<{ t: string }>("SELECT relname AS t FROM pg_class WHERE relname = $1", [weird]);
      expect(r.rows).toEqual([{ t: weird }]);
    });
    const dsn = adminDsn({
      host: "127.0.0.1",
      port: 5432,
      user: "u@x",
      password: "p/:@?#%'",
      database: "d b",
    });
    const url = new URL(dsn);
    expect(decodeURIComponent(url.username)).toBe("u@x");
    expect(decodeURIComponent(url.password)).toBe("p/:@?#%'");
    expect(decodeURIComponent(url.pathname.slice(1))).toBe("d b");
    expect([url.hostname, url.port]).toEqual(["127.0.0.1", "5432"]);
    expect(() => quoteIdent("a\0b")).toThrow();
  });

  it("a stopped cluster is reported and ensureCluster starts it again without initdb or a new full backup", async () => {
    const systemId = await systemIdentifier();
    const fulls = await fullBackups();
    await stopCluster(spec);
    await stopCluster(spec); // already stopped: no error
    expect(await clusterStatus(spec)).toMatchObject({ initialized: true, running: false });

    const messages: string[] = [];
    await ensureCluster(spec, (m) => messages.push(m));
    expect(messages.some((m) => m.startsWith("starting PostgreSQL"))).toBe(true);
    expect(messages.some((m) => /initdb|first full backup|stanza-create/.test(m))).toBe(false);
    expect(await clusterStatus(spec)).toMatchObject({ running: true, port: pg.port });
    expect(await systemIdentifier()).toBe(systemId);
    expect(await fullBackups()).toBe(fulls);

    // and a rerun on a running cluster is a no-op apart from the archive check
    const again: string[] = [];
    await ensureCluster(spec, (m) => again.push(m));
    expect(again.some((m) => /starting|restarting|initdb|full backup/.test(m))).toBe(false);
  });
});

describe("a second cluster with an encrypted repository", () => {
  let encrypted: LocalClusterSpec | undefined;
  let dir: string | undefined;

  afterAll(async () => {
    if (encrypted) await destroyCluster(encrypted).catch(() => undefined);
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  it("writes the cipher into pgbackrest.conf, encrypts the repository and never logs the passphrase", async () => {
    dir = await makeStateDir("loomworks-it-enc-");
    const passphrase = `pass-${randomBytes(24).toString("hex")}`;
    encrypted = {
      stateDir: dir,
      port: await findFreePort(pg.port + 1),
      archiveTimeoutSeconds: 30,
      superuserPassword: randomBytes(12).toString("hex"),
      stanza: "enc",
      retentionFull: 1,
      encryptionPassphrase: passphrase,
    };
    const messages: string[] = [];
    await ensureCluster(encrypted, (m) => messages.push(m));
    const layout = localClusterLayout(encrypted);

    const conf = await fs.readFile(layout.paths.pgbackrestConf, "utf8");
    expect(conf).toMatch(/^repo1-cipher-type=aes-256-cbc$/m);
    expect(conf).toContain("cipher");
    expect((await fs.stat(layout.paths.pgbackrestConf)).mode & 0o077).toBe(0);

    const info = await stanzaInfo(layout.pgbackrest);
    expect(info.cipher).toBe("aes-256-cbc");
    expect(info.backup.filter((b) => b.type === "full")).toHaveLength(1);
    const backupInfo = await fs.readFile(path.join(layout.paths.repoPath, "backup", "enc", "backup.info"));
    expect(backupInfo.subarray(0, 9).toString()).not.toBe("[backrest");

    // a new superuser password is applied in place
    encrypted = { ...encrypted, superuserPassword: randomBytes(12).toString("hex") };
    await ensureCluster(encrypted, (m) => messages.push(m));
    const [row] = await sql<{ ok: number }>("SELECT 1 AS ok", localAdminDsn(encrypted));
    expect(row.ok).toBe(1);

    const logFiles = [
      ...(await filesUnder(layout.paths.logDir)),
      ...(await filesUnder(layout.paths.pgbackrestLogPath)),
    ];
    expect(logFiles.length).toBeGreaterThan(0);
    for (const file of logFiles) {
      expect(await fs.readFile(file, "utf8"), file).not.toContain(passphrase);
    }
    expect(messages.join("\n")).not.toContain(passphrase);

    await destroyCluster(encrypted);
    expect(existsSync(layout.paths.postgresDir)).toBe(false);
    expect(existsSync(layout.paths.pgbackrestDir)).toBe(false);
    expect(existsSync(layout.paths.filestoreDir)).toBe(false);
    expect((await clusterStatus(encrypted)).initialized).toBe(false);
    await destroyCluster(encrypted); // idempotent
  });
});
