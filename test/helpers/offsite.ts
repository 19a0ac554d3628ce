/**
 * What the offsite-repository integration files share: a cluster of their own with repo2, a small
 * template and one tenant in it, and waiting for WAL to reach a repository.
 */
import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Client } from "pg";
import { ensureClusterWithBackups } from "../../lib/backup/backups";
import { withPlainClient as withClient } from "../../lib/pg/client";
import {
  destroyCluster,
  localAdminDsn,
  localClusterLayout,
  type LocalClusterSpec,
} from "../../lib/pg/cluster";
import { dsnWithDatabase } from "../../lib/pg/dsn";
import type { OffsiteRepo } from "../../lib/pg/offsite";
import { mustRun } from "../../lib/process/run";
import type { RestoreTenantOptions } from "../../lib/restore";
import { createTenant, deleteTenant, type TenantSpec } from "../../lib/tenant/provision";
import { dropTemplate, ensureTemplate } from "../../lib/tenant/template";
import { throwawayClusterSpec } from "../../testkit/cluster";
import { randomTenantSpec } from "./tenants";

const SMALL_SQL = `
CREATE TABLE res_partner (id serial PRIMARY KEY, name text NOT NULL, email text);
CREATE TABLE res_users (id serial PRIMARY KEY, login text NOT NULL, password text, partner_id int REFERENCES res_partner(id));
INSERT INTO res_partner (name) VALUES ('company'), ('admin');
INSERT INTO res_users (id, login, partner_id) VALUES (1, '__system__', 1), (2, 'admin', 2);
`;

export interface OffsiteCluster {
  spec: LocalClusterSpec;
  admin: string;
  tenant: TenantSpec;
  /** A directory of the test's own (mode 0755). */
  work: string;
  inTenant<T>(fn: (c: Client) => Promise<T>): Promise<T>;
  /** Names in the tenant's res_partner. */
  partners(): Promise<string[]>;
  /** restoreTenant's options for the tenant. */
  restoreOptions(time: string, log: (m: string) => void): RestoreTenantOptions;
  destroy(): Promise<void>;
}

/** A cluster with `offsite` as repo2 (its first backups in both), a small template and one tenant. */
export async function offsiteCluster(name: string, offsite: (work: string) => Promise<OffsiteRepo>) {
  const work = await fs.mkdtemp(path.join(os.tmpdir(), `loomworks-${name}-it-`));
  await fs.chmod(work, 0o755);
  const spec = await throwawayClusterSpec(name, name, { archiveTimeoutSeconds: 5 });
  spec.offsite = await offsite(work);
  await ensureClusterWithBackups(spec);
  const admin = localAdminDsn(spec);
  const template = `loomworks_template_${name}_${randomBytes(3).toString("hex")}`;
  const small = path.join(work, "small.sql");
  await fs.writeFile(small, SMALL_SQL);
  await ensureTemplate(admin, { name: "small", database: template, fromDump: small, stateDir: work });
  const { paths } = localClusterLayout(spec);
  const tenant = randomTenantSpec(name.slice(0, 3), template, paths.filestoreDir);
  await createTenant(admin, tenant);
  const inTenant = <T>(fn: (c: Client) => Promise<T>) =>
    withClient(dsnWithDatabase(admin, tenant.database), fn);
  const cluster: OffsiteCluster = {
    spec,
    admin,
    tenant,
    work,
    inTenant,
    partners: () =>
      inTenant(async (c) =>
        (await c.query<{ name: string }>("SELECT name FROM res_partner ORDER BY id")).rows.map((r) => r.name),
      ),
    restoreOptions: (time, log) => ({
      adminDsn: admin,
      stateDir: spec.stateDir,
      stanza: spec.stanza,
      subdomain: tenant.subdomain,
      database: tenant.database,
      roleName: tenant.roleName,
      tenantState: "active",
      target: { time },
      filestoreRoot: paths.filestoreDir,
      log,
    }),
    async destroy() {
      await deleteTenant(admin, { ...tenant, forceDestroy: true }).catch(() => undefined);
      await dropTemplate(admin, template).catch(() => undefined);
      await destroyCluster(spec).catch(() => undefined);
      await fs.rm(spec.stateDir, { recursive: true, force: true });
      await fs.rm(work, { recursive: true, force: true });
    },
  };
  return cluster;
}

export async function waitFor(
  what: string,
  probe: () => Promise<boolean>,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Switches to a new WAL segment; the name of the one just finished. */
export async function switchWal(admin: string): Promise<string> {
  return withClient(admin, async (c) => {
    const r = await c.query<{ w: string }>("SELECT pg_walfile_name(pg_current_wal_lsn()) AS w");
    await c.query("SELECT pg_switch_wal()");
    return r.rows[0].w;
  });
}

/**
 * Writes `before`, takes the target time a second later, writes `after` a second after that, and
 * switches WAL: the target's WAL on its way to the repositories. Returns the target and the segment.
 */
export async function writeAroundTarget(
  c: OffsiteCluster,
  before: string,
  after: string,
): Promise<{ target: string; segment: string }> {
  await c.inTenant((db) => db.query("INSERT INTO res_partner (name) VALUES ($1)", [before]));
  await new Promise((r) => setTimeout(r, 1100));
  const target = new Date().toISOString();
  await new Promise((r) => setTimeout(r, 1100));
  await c.inTenant((db) => db.query("INSERT INTO res_partner (name) VALUES ($1)", [after]));
  return { target, segment: await switchWal(c.admin) };
}

/** Deletes repo1 entirely (an empty directory left, owned by postgres, as after losing its disk). */
export async function loseRepo1(spec: LocalClusterSpec): Promise<void> {
  const { paths } = localClusterLayout(spec);
  await fs.rm(paths.repoPath, { recursive: true, force: true });
  await fs.mkdir(paths.repoPath, { mode: 0o700 });
  await mustRun("chown", ["postgres:postgres", paths.repoPath]);
}
